"""irctest controller for rookery.

irctest (https://github.com/progval/irctest) starts one server per test
through this module: it asks for a listener on a host and port, maybe a
connection password or TLS, and expects an operator `operuser` with the
password `operpassword`. `tests/irctest/run.sh` puts this directory on
PYTHONPATH and passes `--controller rookery_controller`.

The binary is $ROOKERY_BIN, or `rookery` on PATH.
"""

import glob
import json
import os
from pathlib import Path
import subprocess
import time
from typing import Optional, Set, Type

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.cases import BaseServerTestCase
from irctest.specifications import Capabilities, OptionalBehaviors

OPER_NAME = "operuser"
OPER_PASSWORD = "operpassword"


def toml_string(text: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's, as long as characters
    outside ASCII are written as themselves (TOML has no surrogate pairs)."""
    return json.dumps(text, ensure_ascii=False)


def listen_address(hostname: str, port: int) -> str:
    """The address to listen on for what irctest hands out. irctest gives
    0.0.0.0 (what it bound to find a free port) and connects to it, which
    reaches loopback; the server itself listens on loopback only."""
    if hostname in ("", "0.0.0.0"):
        hostname = "127.0.0.1"
    elif hostname == "::":
        hostname = "::1"
    return f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"


def toml_bool(value: bool) -> str:
    return "true" if value else "false"


def group_is_running(group: int) -> bool:
    """Whether a live (not zombie) process of process group `group` exists."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fd:
                stat = fd.read()
        except OSError:
            continue
        # The command name may hold spaces: the fields after it are split.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


def libfaketime() -> Optional[str]:
    """The libfaketime library (Debian's libfaketime), if installed."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    found += sorted(glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return found[0] if found else None


def rookery_binary() -> str:
    return os.environ.get("ROOKERY_BIN") or "rookery"


_oper_hash: Optional[str] = None


def oper_password_hash() -> str:
    """The argon2id hash of OPER_PASSWORD, made by `rookery passwd` the first
    time it is needed and kept for the other tests of this process."""
    global _oper_hash
    if _oper_hash is None:
        out = subprocess.run(
            [rookery_binary(), "passwd"],
            input=OPER_PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert out.startswith("$argon2id$"), f"unexpected `rookery passwd` output: {out!r}"
        _oper_hash = out
    return _oper_hash


CONFIG_TEMPLATE = """\
{http_root}
[server]
name = "My.Little.Server"
network = "rookeryTest"
description = "test server"
{password_line}
# K-lines and D-lines stay in this test's directory.
bans_file = {bans_file}
# irctest's UTF8ONLY tests run only when the server advertises it; with it
# on, the other tests see the behaviour a UTF-8-only network gets.
utf8_only = true

[[listen]]
address = {address}
{tls_line}
{http_block}

[limits]
# irctest opens many connections from 127.0.0.1 in a few seconds (each
# test connects several clients, and waits for the port by connecting and
# quitting), so the per-IP count and rate would refuse it partway through
# a test. Loopback is exempt here.
exempt_ips = ["127.0.0.1", "::1"]
# The nick lengths irctest's tests use fit the default of 30.

[flood]
# irctest sends bursts (many lines per test, some tests send hundreds) and
# waits a fixed time for the answers; fake lag at a human's rate would
# make it time out. The limiter stays on, with room for those bursts, so
# its code path still runs.
enabled = true
lines_per_second = 1000.0
burst = 1000
max_backlog = 1000

[timeouts]
{timeouts}

[[oper]]
name = "{oper_name}"
password_hash = {oper_hash}
hosts = []

[history]
enabled = true
path = {history_path}
# irctest reads private conversations back (the private_chathistory tests).
private_messages = true

[accounts]
# draft/account-registration as the test asks (irctest's defaults: no
# before-connect, no email).
registration_before_connect = {before_connect}
registration_requires_email = {requires_email}

[accounts.smtp]
# Required with registration_requires_email; the tests that turn it on
# never get as far as sending mail.
{smtp_lines}

[log]
level = {log_level}
"""


class RookeryController(BaseServerController, DirectoryBasedController):
    software_name = "rookery"
    _port_wait_interval = 0.01
    # What AUTHENTICATE accepts (the `sasl` capability's value) on the
    # plaintext listeners irctest connects to; EXTERNAL is offered on TLS.
    supported_sasl_mechanisms: Set[str] = {"PLAIN", "SCRAM-SHA-256"}
    # rookery offers `sts` when server.sts_port is set; irctest reads this
    # flag only in its client tests.
    supports_sts = True
    # The letter of the mute extban (`~m:mask`). The mute tests read EXTBAN
    # from 005 and skip while the server does not advertise it.
    extban_mute_char = "m"

    # Capabilities the server offers: a NAK for one of these fails the test
    # instead of skipping it.
    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_NOTIFY,
            Capabilities.ACCOUNT_TAG,
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.EXTENDED_MONITOR,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
            Capabilities.SETNAME,
        )
    )

    # Optional behaviours the server has: a test that finds one missing
    # fails instead of skipping. Add a behaviour here when it is built, so
    # that losing it again is a failure.
    optional_behaviors = frozenset(
        (
            OptionalBehaviors.BAN_EXCEPTION_MODE,
            OptionalBehaviors.CAP_REQ_MINUS,
            OptionalBehaviors.ELIST_C,
            OptionalBehaviors.ELIST_M,
            OptionalBehaviors.ELIST_N,
            OptionalBehaviors.ELIST_T,
            OptionalBehaviors.ELIST_U,
            OptionalBehaviors.INVITE_EXCEPTION_MODE,
            OptionalBehaviors.INVITE_LIST,
            OptionalBehaviors.INVITE_OVERRIDES_LIMIT,
            OptionalBehaviors.MULTI_JOIN,
            OptionalBehaviors.MULTI_KICK,
            OptionalBehaviors.MULTI_NAMES_COMMAND,
            OptionalBehaviors.MULTI_PRIVMSG,
            OptionalBehaviors.NO_CTCP,
            # AUTHENTICATE works after registration, and again once logged
            # in (sasl 3.2 re-authentication: a success replaces the
            # account, a failure keeps it).
            OptionalBehaviors.SASL_AFTER_REGISTRATION,
            OptionalBehaviors.SASL_REAUTHENTICATION,
        )
    )

    # 005 tokens the configuration below must produce (isupport.py's
    # testValues checks them).
    isupport = {
        "BOT": "B",
        "CASEMAPPING": "ascii",
        "CHANTYPES": "#&",
        # At least M, N and U; more filters may come.
        "ELIST": patma.StrRe("(?=.*M)(?=.*N)(?=.*U)[A-Z]+"),
        "EXCEPTS": "e",
        "INVEX": "I",
        "MONITOR": patma.ANYSTR,
        "MSGREFTYPES": "msgid,timestamp",
        "NETWORK": "rookeryTest",
        "NICKLEN": "30",
        "PREFIX": "(ov)@+",
        "STATUSMSG": "@+",
        "TARGMAX": patma.ANYSTR,
        "UTF8ONLY": None,
        "WHOX": None,
    }

    def create_config(self) -> None:
        super().create_config()
        with self.open_file("rookery.toml"):
            pass

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        # Accounts and NickServ are built in: `run_services` needs nothing
        # more than the history database the configuration always has.
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory

        address = listen_address(hostname, port)
        # irctest's WebSocket tests ask for an [[http]] listener; the
        # others get none, so no test takes the default port 8080.
        http_root = "http = []"
        http_block = ""
        if websocket_port is not None:
            http_root = ""
            http_block = "[[http]]\naddress = {}\n".format(
                toml_string(listen_address(websocket_hostname or "", websocket_port))
            )

        tls_line = ""
        if ssl:
            self.gen_ssl()
            self.reissue_cert_as_v3()
            tls_line = "tls = {{ cert = {}, key = {} }}".format(
                toml_string(str(self.pem_path)), toml_string(str(self.key_path))
            )

        faketime_env = {}
        library = libfaketime()
        if faketime and library:
            # libfaketime preloaded directly, not through the faketime
            # wrapper: the wrapper keeps shared memory named by its PID,
            # leaks it when the process group is killed, and later fails
            # to start (exit 1) when a PID comes round again.
            faketime_env = {"LD_PRELOAD": library, "FAKETIME": faketime}
            self.faketime_enabled = True
            # faketime speeds the server's clock up (up to 30 times), and its
            # timers with it: keep idle clients from being pinged out while a
            # test waits in real time.
            timeouts = "registration = 36000\nping_interval = 36000\nping_timeout = 36000"
        else:
            timeouts = "# the defaults"

        config = CONFIG_TEMPLATE.format(
            password_line=(
                f"password = {toml_string(password)}" if password is not None else ""
            ),
            bans_file=toml_string(str(self.directory / "bans.toml")),
            address=toml_string(address),
            tls_line=tls_line,
            http_root=http_root,
            http_block=http_block,
            timeouts=timeouts,
            oper_name=OPER_NAME,
            oper_hash=toml_string(oper_password_hash()),
            history_path=toml_string(str(self.directory / "history.db")),
            before_connect=toml_bool(self.test_config.account_registration_before_connect),
            requires_email=toml_bool(self.test_config.account_registration_requires_email),
            smtp_lines=(
                'relay = "127.0.0.1:25"\nfrom = "irc@example.org"'
                if self.test_config.account_registration_requires_email
                else ""
            ),
            log_level=toml_string("debug" if self.debug_mode else "warn"),
        )
        with self.open_file("rookery.toml", "w") as fd:
            fd.write(config)

        env = dict(os.environ)
        # The config's log level applies, not the caller's RUST_LOG.
        env.pop("RUST_LOG", None)
        env.update(faketime_env)
        # The server's log goes to a file that outlives the test's
        # directory, so the runner can show why a server stopped.
        log_dir = os.environ.get("ROOKERY_IRCTEST_LOGS")
        output = {}
        if log_dir and not self.debug_mode:
            log = open(Path(log_dir) / f"server-{os.getpid()}-{port}.log", "ab")
            output = {"stdout": log, "stderr": log}
        self.proc = self.execute(
            [
                rookery_binary(),
                "--config",
                Path(self.directory) / "rookery.toml",
            ],
            proc_name="rookery",
            cwd=self.directory,
            env=env,
            **output,
        )
        for stream in output.values():
            stream.close()


    def wait_for_services(self) -> None:
        """The services are the server itself: up once its port is."""

    def registerUser(
        self,
        case: BaseServerTestCase,
        username: str,
        password: Optional[str] = None,
    ) -> None:
        """Creates the account `username` while the server runs, as a user
        would: connect with that nick and `NS REGISTER <password>`."""
        assert password
        client = case.addClient(show_io=False)
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        case.sendLine(client, "NS REGISTER " + password)
        while True:
            msg = case.getMessage(client)
            if msg.command == "NOTICE" and "created" in msg.params[-1]:
                break
            # 900, then MODE +r, come before NickServ's notice.
            assert msg.command in ("900", "MODE"), f"REGISTER failed: {msg}"
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)

    def kill_proc(self) -> None:
        """Stops the server, then waits until no process of its group is
        left. Under faketime the wrapper exits before the server has closed
        its database, and irctest removes the directory right after this."""
        assert self.proc
        group = self.proc.pid  # execute() starts a new session: pgid == pid
        super().kill_proc()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and group_is_running(group):
            time.sleep(0.02)

    def reissue_cert_as_v3(self) -> None:
        """gen_ssl signs its request without extensions, which makes an
        X.509 version 1 certificate; rustls accepts version 3 only. Sign the
        same request and key again, with extensions, as version 3."""
        assert self.directory
        ext_path = self.directory / "ssl.ext"
        with ext_path.open("w") as fd:
            fd.write("basicConstraints = CA:FALSE\n")
            fd.write("subjectAltName = DNS:My.Little.Server, IP:127.0.0.1\n")
        subprocess.check_output(
            [
                self.openssl_bin,
                "x509",
                "-req",
                "-in",
                self.csr_path,
                "-signkey",
                self.key_path,
                "-extfile",
                ext_path,
                "-out",
                self.pem_path,
            ],
            stderr=subprocess.DEVNULL,
        )


def get_irctest_controller_class() -> Type[RookeryController]:
    return RookeryController
