//! A throwaway PostgreSQL cluster on loopback for tests: `initdb` in a
//! temporary directory, `postgres` on a free port with trust
//! authentication, stopped and removed on drop.
//!
//! The binaries come from `ROOKERY_PG_BIN`, else Debian's newest
//! `/usr/lib/postgresql/*/bin`, else the directory of `initdb` on `PATH`.
//! PostgreSQL refuses to run as root, so as root the server runs as
//! `nobody` (through `setpriv`), owning the temporary directory.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The pause between two looks at a condition being waited for.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The superuser `initdb` creates, named in [`Postgres::url`].
const USER: &str = "rookery";

/// The unprivileged account the server runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// How many times a fresh port is tried when another process bound the
/// reserved one first.
const START_ATTEMPTS: usize = 3;

/// How much of the server's log a failure message shows.
const LOG_TAIL_BYTES: usize = 4000;

/// A running throwaway PostgreSQL server. Dropping it stops the server
/// (immediate mode) and removes its data.
pub struct Postgres {
    bin: PathBuf,
    /// The account it runs as, when the tests run as root.
    run_as: Option<Account>,
    port: u16,
    process: Option<Child>,
    /// Declared last: removed after the server stopped.
    dir: TempDir,
}

/// A user's numeric ids, for `chown` and `setpriv`.
#[derive(Clone, Copy)]
struct Account {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Creates a cluster and starts it; returns once it answers on its
    /// port. Panics with the log when it does not, or saying how to
    /// install PostgreSQL when it is missing.
    pub fn start() -> Postgres {
        let bin = pg_bin_dir();
        if !bin.join("initdb").is_file() {
            panic!(
                "PostgreSQL not found: no initdb in {} (install it with apt-get install \
                 postgresql, or set ROOKERY_PG_BIN to the directory holding initdb and postgres)",
                bin.display()
            );
        }
        let run_as = unprivileged_account();
        let dir = TempDir::new("postgres");
        if let Some(account) = run_as
            && let Err(error) =
                std::os::unix::fs::chown(&dir.0, Some(account.uid), Some(account.gid))
        {
            panic!("give {:?} to {UNPRIVILEGED}: {error}", dir.0);
        }
        let mut postgres = Postgres {
            bin,
            run_as,
            port: 0,
            process: None,
            dir,
        };
        postgres.initdb();
        for _ in 0..START_ATTEMPTS {
            if postgres.try_start() {
                return postgres;
            }
        }
        panic!(
            "PostgreSQL found its port taken {START_ATTEMPTS} times; log:\n{}",
            postgres.log_tail()
        );
    }

    /// `postgres://rookery@127.0.0.1:PORT/postgres`: trust authentication,
    /// no password.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` through `psql` over TCP and returns its unaligned,
    /// tuples-only output, trimmed; panics with psql's errors.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER, "-d", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output();
        let output = match output {
            Ok(output) => output,
            Err(error) => panic!("run psql from {}: {error}", self.bin.display()),
        };
        if !output.status.success() {
            panic!("psql {sql:?} failed: {}", describe(&output));
        }
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// A command for the PostgreSQL binary `name`, run as the
    /// unprivileged account when the tests run as root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match self.run_as {
            None => Command::new(program),
            Some(account) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={}", account.uid))
                    .arg(format!("--regid={}", account.gid))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                command
            }
        }
    }

    /// Creates the cluster: UTF-8, C locale, trust authentication, no
    /// fsync (the data is thrown away).
    fn initdb(&self) {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", USER, "--auth=trust", "--no-sync"])
            .args(["-E", "UTF8", "--locale=C"])
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!("initdb failed: {}", describe(&output)),
            Err(error) => panic!(
                "run initdb from {}: {error} (install PostgreSQL or set ROOKERY_PG_BIN)",
                self.bin.display()
            ),
        }
    }

    /// Starts the server on a fresh port and waits until it answers;
    /// false when the port was taken meanwhile.
    fn try_start(&mut self) -> bool {
        self.port = match free_port() {
            Ok(port) => port,
            Err(error) => panic!("reserve a loopback port: {error}"),
        };
        let log = match OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
        {
            Ok(log) => log,
            Err(error) => panic!("open the PostgreSQL log: {error}"),
        };
        let stderr = match log.try_clone() {
            Ok(stderr) => stderr,
            Err(error) => panic!("clone the PostgreSQL log: {error}"),
        };
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir.0)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn();
        match child {
            Ok(child) => self.process = Some(child),
            Err(error) => panic!("start postgres from {}: {error}", self.bin.display()),
        }
        self.wait_ready()
    }

    /// Polls until a TCP connect and `pg_isready` succeed; false when the
    /// server exited because its port was taken.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                self.process = None;
                let log = self.log_tail();
                if log.contains("could not bind") || log.contains("already in use") {
                    return false;
                }
                panic!("postgres exited ({status}) before it was ready; log:\n{log}");
            }
            if self.accepts() {
                return true;
            }
            if Instant::now() > deadline {
                panic!(
                    "postgres not ready on port {} in {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// True when the port takes a TCP connection and `pg_isready` says
    /// the server accepts sessions.
    fn accepts(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            return false;
        }
        Command::new(self.bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                USER,
                "-d",
                "postgres",
                "-t",
                "2",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// The exit status if the server has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.as_mut()?.try_wait().ok().flatten()
    }

    /// The last [`LOG_TAIL_BYTES`] of the server's log.
    fn log_tail(&self) -> String {
        let mut text = Vec::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let _ = file.read_to_end(&mut text);
        }
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let stopped = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let _ = process.kill();
        }
        let _ = process.wait();
    }
}

/// `ROOKERY_PG_BIN`, else the newest `/usr/lib/postgresql/N/bin`, else
/// the directory `initdb` on `PATH` really lives in; panics saying how to
/// install PostgreSQL.
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROOKERY_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = debian_bin_dir() {
        return dir;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("initdb"))
            .find(|candidate| candidate.is_file())
    });
    // Resolved, so that a symlink in /usr/local/bin leads to its siblings.
    let dir = on_path
        .and_then(|initdb| std::fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf));
    match dir {
        Some(dir) => dir,
        None => panic!(
            "PostgreSQL not found: install it (apt-get install postgresql) \
             or set ROOKERY_PG_BIN to the directory holding initdb and postgres"
        ),
    }
}

/// Debian's newest versioned bin directory that has `initdb`.
fn debian_bin_dir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// [`UNPRIVILEGED`]'s ids when the tests run as root, else `None`.
fn unprivileged_account() -> Option<Account> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let euid = std::fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .ok()?;
    if euid != 0 {
        return None;
    }
    let uid = id_of(&["-u", UNPRIVILEGED]);
    let gid = id_of(&["-g", UNPRIVILEGED]);
    match (uid, gid) {
        (Some(uid), Some(gid)) => Some(Account { uid, gid }),
        _ => panic!(
            "running as root, PostgreSQL needs an unprivileged user: \
             no user {UNPRIVILEGED:?} here"
        ),
    }
}

/// A numeric id printed by `id` with `args`.
fn id_of(args: &[&str]) -> Option<u32> {
    let output = Command::new("id").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A loopback port that was free a moment ago (PostgreSQL cannot pick
/// its own; a lost race is retried by [`Postgres::start`]).
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A failed command's status and output, for a panic message.
fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
