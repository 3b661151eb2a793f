//! `rookery accounts` as an administrator uses it: the built binary on a
//! database named by a configuration file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::TempDir;
use rookery::accounts::{Naming, ScramCredentials, Store, password};
use rookery::proto::Casemapping;

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

/// A directory with a configuration that keeps the database in it.
struct Setup {
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = TempDir::new(name);
        let config = dir.join("rookery.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nname = \"irc.test\"\n\n[history]\npath = {:?}\n",
                dir.join("rookery.db").display().to_string()
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn database(&self) -> PathBuf {
        self.dir.join("rookery.db")
    }

    /// Runs `rookery -c <config> accounts <args>` with `stdin` as input.
    fn accounts(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .current_dir(&self.dir.0)
            .arg("-c")
            .arg(&self.config)
            .arg("accounts")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command that does not read its input may have exited already.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    fn store(&self) -> Store {
        let naming = Naming {
            casemapping: Casemapping::Ascii,
            max_len: 30,
        };
        Store::open_read_only(&self.database(), naming).unwrap()
    }

    /// Starts the server on this configuration and waits for its
    /// "listening on" line.
    fn start_server(&self) -> Server {
        let mut command = Command::new(BIN);
        command.current_dir(&self.dir.0).arg("-c").arg(&self.config);
        let (child, _port, _log) = common::spawn_listening(command);
        Server(child)
    }
}

/// A running server process, stopped with SIGTERM (and waited for) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(output.status.success(), "{}", stderr(output));
}

fn password_matches(database: &Path, name: &str, password: &str) -> bool {
    let naming = Naming {
        casemapping: Casemapping::Ascii,
        max_len: 30,
    };
    let store = Store::open_read_only(database, naming).unwrap();
    let account = store.find(name).unwrap().unwrap();
    let scram = &account.credentials.scram;
    password::verify(password, &account.credentials.hash)
        && *scram == ScramCredentials::derive(password, scram.salt.clone(), scram.iterations)
}

#[test]
fn create_list_show_reset_password_suspend_and_unsuspend() {
    let setup = Setup::new("accounts-cli");
    let created = setup.accounts(
        &["create", "Alice", "--email", "alice@example.org"],
        "pencil\n",
    );
    assert_success(&created);
    assert!(password_matches(&setup.database(), "alice", "pencil"));

    let listed = setup.accounts(&["list"], "");
    assert_success(&listed);
    let lines: Vec<String> = stdout(&listed).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[0], "Alice");
    assert!(
        fields[1].ends_with('Z'),
        "an RFC 3339 UTC time: {}",
        fields[1]
    );
    assert_eq!(fields[2], "active");

    let shown = setup.accounts(&["show", "ALICE"], "");
    assert_success(&shown);
    let text = stdout(&shown);
    assert!(text.contains("account: Alice\n"), "{text}");
    assert!(text.contains("email: alice@example.org\n"), "{text}");
    assert!(text.contains("status: active\n"), "{text}");
    assert!(text.contains("nicks: Alice\n"), "{text}");
    assert!(!text.contains("argon2"), "no secret is shown: {text}");

    assert_success(&setup.accounts(&["reset-password", "alice"], "new pencil\n"));
    assert!(password_matches(&setup.database(), "alice", "new pencil"));
    assert!(!password_matches(&setup.database(), "alice", "pencil"));

    assert_success(&setup.accounts(&["suspend", "alice", "--reason", "spam links"], ""));
    let suspension = setup.store().find("alice").unwrap().unwrap().suspended;
    let suspension = suspension.expect("suspended");
    assert_eq!(suspension.reason, "spam links");
    assert_eq!(suspension.by, "console");
    let shown = stdout(&setup.accounts(&["show", "alice"], ""));
    assert!(shown.contains("by console: spam links"), "{shown}");
    let listed = stdout(&setup.accounts(&["list"], ""));
    assert!(listed.ends_with("\tsuspended\n"), "{listed}");

    assert_success(&setup.accounts(&["unsuspend", "alice"], ""));
    assert_eq!(
        setup.store().find("alice").unwrap().unwrap().suspended,
        None
    );
}

#[test]
fn a_taken_name_a_bad_name_and_an_empty_password_are_refused() {
    let setup = Setup::new("accounts-cli-refused");
    assert_success(&setup.accounts(&["create", "alice"], "pencil\n"));
    let again = setup.accounts(&["create", "ALICE"], "other\n");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    let bad = setup.accounts(&["create", "#alice"], "pencil\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("not a valid account name"),
        "{}",
        stderr(&bad)
    );
    let empty = setup.accounts(&["create", "bob"], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
    let unknown = setup.accounts(&["show", "bob"], "");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no account named"),
        "{}",
        stderr(&unknown)
    );
    let names: Vec<String> = setup
        .store()
        .list(None, 10)
        .unwrap()
        .into_iter()
        .map(|account| account.name)
        .collect();
    assert_eq!(names, ["alice"]);
}

#[test]
fn writes_are_refused_while_a_server_runs_on_the_database_and_reads_are_not() {
    let setup = Setup::new("accounts-cli-locked");
    assert_success(&setup.accounts(&["create", "alice"], "pencil\n"));
    let server = setup.start_server();

    for (args, stdin) in [
        (&["create", "bob"][..], "pencil\n"),
        (&["reset-password", "alice"][..], "other\n"),
        (&["suspend", "alice"][..], ""),
        (&["unsuspend", "alice"][..], ""),
    ] {
        let refused = setup.accounts(args, stdin);
        assert_eq!(
            refused.status.code(),
            Some(75),
            "{args:?}: {}",
            stderr(&refused)
        );
        let message = stderr(&refused);
        assert!(message.contains("rookery.db.lock"), "{message}");
        assert!(message.contains("stop the server"), "{message}");
    }
    assert!(password_matches(&setup.database(), "alice", "pencil"));
    assert!(setup.store().find("bob").unwrap().is_none());

    let listed = setup.accounts(&["list"], "");
    assert_success(&listed);
    assert!(
        stdout(&listed).starts_with("alice\t"),
        "{}",
        stdout(&listed)
    );
    assert_success(&setup.accounts(&["show", "alice"], ""));

    drop(server);
    assert_success(&setup.accounts(&["create", "bob"], "pencil\n"));
}

#[test]
fn the_server_does_not_start_on_a_database_another_server_holds() {
    let setup = Setup::new("accounts-cli-second-server");
    let _first = setup.start_server();
    let second = Command::new(BIN)
        .current_dir(&setup.dir.0)
        .arg("-c")
        .arg(&setup.config)
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("rookery.db.lock"),
        "{}",
        stderr(&second)
    );
}

#[tokio::test]
async fn the_server_holds_the_database_lock_until_it_has_shut_down() {
    use rookery::accounts::{DatabaseLock, LockError};
    let dir = TempDir::new("accounts-lock-in-process");
    let database = dir.join("rookery.db");
    let server = rookery::start(common::test_config_with_history(&database, ""))
        .await
        .unwrap();
    assert!(matches!(
        DatabaseLock::acquire(&database),
        Err(LockError::Held(_))
    ));
    server.shutdown().await;
    DatabaseLock::acquire(&database).expect("released at shutdown");
}

#[tokio::test]
async fn a_server_without_history_takes_no_lock() {
    use rookery::accounts::DatabaseLock;
    let dir = TempDir::new("accounts-lock-no-history");
    let mut config = common::test_config("");
    config.history.path = dir.join("rookery.db");
    let server = rookery::start(config).await.unwrap();
    DatabaseLock::acquire(&dir.join("rookery.db")).expect("nothing holds it");
    server.shutdown().await;
}
