//! The account store over a real SQLite file.

use std::path::PathBuf;

use super::store::{
    MAX_CERTIFICATES_PER_ACCOUNT, MAX_CODE_ATTEMPTS, MAX_EMAIL_LEN, MAX_REASON_LEN,
};
use super::*;
use crate::proto::Casemapping;

/// argon2id of "hunter2" with cheap parameters: the store keeps hashes, it
/// does not make them, so tests need not pay for real ones.
const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";

/// The schema version this build migrates to.
const KNOWN: i64 = super::store::MIGRATIONS.len() as i64;

const FINGERPRINT: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn credentials(password: &str) -> Credentials {
    Credentials {
        hash: HASH.to_owned(),
        scram: ScramCredentials::derive(password, b"salt".to_vec(), 1),
    }
}

/// A database file in a directory removed on drop.
struct Database(PathBuf);

impl Database {
    fn new(name: &str) -> Database {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "rookery-accounts-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Database(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("rookery.db")
    }

    fn open(&self, casemapping: Casemapping) -> Store {
        Store::open(
            &self.path(),
            Naming {
                casemapping,
                max_len: 30,
            },
        )
        .unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ascii() -> Naming {
    Naming {
        casemapping: Casemapping::Ascii,
        max_len: 30,
    }
}

#[test]
fn an_account_reads_back_as_created_after_reopening() {
    let db = Database::new("roundtrip");
    let credentials = credentials("pencil");
    let mut store = db.open(Casemapping::Ascii);
    let created = store
        .create("Alice", &credentials, Some("alice@example.org"), 1_000)
        .unwrap();
    drop(store);
    let store = db.open(Casemapping::Ascii);
    let found = store.find("Alice").unwrap().unwrap();
    assert_eq!(found, created);
    assert_eq!(found.name, "Alice");
    assert_eq!(found.credentials, credentials);
    assert_eq!(found.email.as_deref(), Some("alice@example.org"));
    assert_eq!(found.created_ms, 1_000);
    assert_eq!(found.suspended, None);
    assert_eq!(store.nicks("alice").unwrap(), ["Alice"]);
    assert_eq!(store.nick_owner("ALICE").unwrap().as_deref(), Some("Alice"));
    assert!(store.certificates("alice").unwrap().is_empty());
}

#[test]
fn names_are_found_in_any_case_under_the_casemapping() {
    let db = Database::new("casefold");
    let mut store = db.open(Casemapping::Rfc1459);
    store.create("Dan[x]", &credentials("p"), None, 0).unwrap();
    assert_eq!(store.find("dan{X}").unwrap().unwrap().name, "Dan[x]");
    assert_eq!(store.find("DAN[X]").unwrap().unwrap().name, "Dan[x]");
    let db = Database::new("casefold-ascii");
    let mut store = db.open(Casemapping::Ascii);
    store.create("Dan[x]", &credentials("p"), None, 0).unwrap();
    assert!(store.find("dan{x}").unwrap().is_none());
}

#[test]
fn a_name_taken_in_another_case_is_refused() {
    let db = Database::new("duplicate");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let error = store
        .create("ALICE", &credentials("q"), None, 1)
        .unwrap_err();
    assert!(matches!(error, AccountError::NameTaken(name) if name == "ALICE"));
    assert_eq!(store.list(None, 10).unwrap().len(), 1);
}

#[test]
fn a_name_another_account_owns_as_a_nick_is_refused() {
    let db = Database::new("nick-owned");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    store.add_nick("alice", "Ally", 5).unwrap();
    assert_eq!(store.nicks("alice").unwrap(), ["alice", "Ally"]);
    let error = store
        .create("ally", &credentials("q"), None, 6)
        .unwrap_err();
    assert!(matches!(error, AccountError::NickTaken(_)), "{error}");
    store.create("bob", &credentials("q"), None, 7).unwrap();
    let error = store.add_nick("bob", "ALLY", 8).unwrap_err();
    assert!(matches!(error, AccountError::NickTaken(_)), "{error}");
    let error = store.add_nick("bob", "Alice", 8).unwrap_err();
    assert!(matches!(error, AccountError::NickTaken(_)), "{error}");
}

#[test]
fn names_that_are_not_nicks_or_too_long_are_refused() {
    let db = Database::new("names");
    let mut store = db.open(Casemapping::Ascii);
    for name in ["", "1abc", "a b", "#room", "a,b", "é", &"a".repeat(31)] {
        let error = store.create(name, &credentials("p"), None, 0).unwrap_err();
        assert!(
            matches!(error, AccountError::InvalidName(..)),
            "{name:?}: {error}"
        );
    }
    store
        .create(&"a".repeat(30), &credentials("p"), None, 0)
        .unwrap();
    // However long NICKLEN is, the store's own bound holds.
    let db = Database::new("names-long");
    let mut store = Store::open(
        &db.path(),
        Naming {
            casemapping: Casemapping::Ascii,
            max_len: 500,
        },
    )
    .unwrap();
    let error = store
        .create(&"a".repeat(65), &credentials("p"), None, 0)
        .unwrap_err();
    assert!(matches!(error, AccountError::InvalidName(_, 64)), "{error}");
}

#[test]
fn every_text_column_is_bounded_before_insert() {
    let db = Database::new("limits");
    let mut store = db.open(Casemapping::Ascii);
    let long_email = format!("{}@example.org", "a".repeat(MAX_EMAIL_LEN));
    let error = store
        .create("alice", &credentials("p"), Some(&long_email), 0)
        .unwrap_err();
    assert!(
        matches!(
            error,
            AccountError::TooLong {
                field: "email address",
                ..
            }
        ),
        "{error}"
    );
    for bad in ["no-at-sign", "@example.org", "alice@", "al ice@example.org"] {
        let error = store
            .create("alice", &credentials("p"), Some(bad), 0)
            .unwrap_err();
        assert!(
            matches!(error, AccountError::InvalidEmail(_)),
            "{bad}: {error}"
        );
    }
    let mut long_hash = credentials("p");
    long_hash.hash = "x".repeat(257);
    let error = store.create("alice", &long_hash, None, 0).unwrap_err();
    assert!(matches!(error, AccountError::TooLong { .. }), "{error}");
    let mut long_salt = credentials("p");
    long_salt.scram.salt = vec![0; 65];
    let error = store.create("alice", &long_salt, None, 0).unwrap_err();
    assert!(matches!(error, AccountError::TooLong { .. }), "{error}");
    assert!(store.find("alice").unwrap().is_none());

    store.create("alice", &credentials("p"), None, 0).unwrap();
    let long_reason = Suspension {
        reason: "r".repeat(MAX_REASON_LEN + 1),
        by: "console".to_owned(),
        at_ms: 1,
    };
    let error = store.suspend("alice", &long_reason).unwrap_err();
    assert!(
        matches!(
            error,
            AccountError::TooLong {
                field: "reason",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(store.find("alice").unwrap().unwrap().suspended, None);
}

#[test]
fn suspension_is_kept_with_its_reason_and_lifted() {
    let db = Database::new("suspend");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let suspension = Suspension {
        reason: "spam".to_owned(),
        by: "console".to_owned(),
        at_ms: 42,
    };
    store.suspend("ALICE", &suspension).unwrap();
    drop(store);
    let mut store = db.open(Casemapping::Ascii);
    assert_eq!(
        store.find("alice").unwrap().unwrap().suspended,
        Some(suspension)
    );
    store.unsuspend("alice").unwrap();
    assert_eq!(store.find("alice").unwrap().unwrap().suspended, None);
    assert!(matches!(
        store.unsuspend("nobody"),
        Err(AccountError::NotFound(_))
    ));
}

#[test]
fn a_new_password_replaces_both_hash_and_scram_verifiers() {
    let db = Database::new("password");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("old"), None, 0).unwrap();
    let new = Credentials {
        hash: "$argon2id$v=19$m=8,t=1,p=1$b3RoZXItc2FsdA$AAAA".to_owned(),
        scram: ScramCredentials::derive("new", b"other salt".to_vec(), 2),
    };
    store.set_password("Alice", &new).unwrap();
    assert_eq!(store.find("alice").unwrap().unwrap().credentials, new);
    assert!(matches!(
        store.set_password("nobody", &new),
        Err(AccountError::NotFound(_))
    ));
}

#[test]
fn a_certificate_belongs_to_one_account() {
    let db = Database::new("certificates");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    store.create("bob", &credentials("q"), None, 0).unwrap();
    // The colon-separated uppercase form `openssl x509 -fingerprint` prints.
    let printed = FINGERPRINT
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    store.add_certificate("alice", &printed).unwrap();
    assert_eq!(store.certificates("alice").unwrap(), [FINGERPRINT]);
    assert_eq!(
        store.certificate_owner(FINGERPRINT).unwrap().as_deref(),
        Some("alice")
    );
    // Adding it again to its own account changes nothing.
    store.add_certificate("alice", FINGERPRINT).unwrap();
    let error = store.add_certificate("bob", FINGERPRINT).unwrap_err();
    assert!(matches!(error, AccountError::CertificateTaken), "{error}");
    assert!(store.certificates("bob").unwrap().is_empty());
    // Only its owner removes it.
    assert!(!store.remove_certificate("bob", FINGERPRINT).unwrap());
    assert!(store.remove_certificate("alice", FINGERPRINT).unwrap());
    store.add_certificate("bob", FINGERPRINT).unwrap();
    assert_eq!(
        store.certificate_owner(FINGERPRINT).unwrap().as_deref(),
        Some("bob")
    );
}

#[test]
fn malformed_fingerprints_and_too_many_certificates_are_refused() {
    let db = Database::new("certificate-limits");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    for bad in [
        "",
        "abc",
        &FINGERPRINT[1..],
        &format!("{}g", &FINGERPRINT[1..]),
    ] {
        let error = store.add_certificate("alice", bad).unwrap_err();
        assert!(
            matches!(error, AccountError::InvalidFingerprint(_)),
            "{bad}: {error}"
        );
    }
    for n in 0..MAX_CERTIFICATES_PER_ACCOUNT {
        store
            .add_certificate("alice", &format!("{n:064x}"))
            .unwrap();
    }
    let error = store
        .add_certificate("alice", &format!("{:064x}", 999))
        .unwrap_err();
    assert!(matches!(error, AccountError::TooMany { .. }), "{error}");
}

#[test]
fn listing_goes_in_name_order_a_page_at_a_time() {
    let db = Database::new("list");
    let mut store = db.open(Casemapping::Ascii);
    for name in ["carol", "Alice", "bob"] {
        store.create(name, &credentials("p"), None, 0).unwrap();
    }
    let names = |page: Vec<Account>| page.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(names(store.list(None, 2).unwrap()), ["Alice", "bob"]);
    assert_eq!(names(store.list(Some("bob"), 2).unwrap()), ["carol"]);
}

#[test]
fn a_read_only_store_of_a_database_without_accounts_reads_none() {
    let db = Database::new("read-only");
    // A history database no account command has touched yet.
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY)")
        .unwrap();
    let store = Store::open_read_only(&db.path(), ascii()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 0);
    assert!(store.list(None, 10).unwrap().is_empty());
    assert!(store.find("alice").unwrap().is_none());
    let mut writer = db.open(Casemapping::Ascii);
    writer.create("alice", &credentials("p"), None, 0).unwrap();
    let store = Store::open_read_only(&db.path(), ascii()).unwrap();
    assert_eq!(store.find("alice").unwrap().unwrap().name, "alice");
    assert!(matches!(
        Store::open_read_only(&db.0.join("absent.db"), ascii()),
        Err(AccountError::Missing(_))
    ));
}

#[test]
fn a_newer_account_schema_is_refused_and_history_is_left_alone() {
    let db = Database::new("too-new");
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
    }
    let store = db.open(Casemapping::Ascii);
    assert_eq!(store.schema_version().unwrap(), KNOWN);
    drop(store);
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    // History's own schema counter is not the accounts'.
    let history_version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(history_version, 3);
    conn.execute("UPDATE accounts_schema SET version = 99", [])
        .unwrap();
    drop(conn);
    for error in [
        Store::open(&db.path(), ascii()).err().unwrap(),
        Store::open_read_only(&db.path(), ascii()).err().unwrap(),
    ] {
        assert!(
            matches!(
                error,
                AccountError::TooNew {
                    found: 99,
                    known: KNOWN,
                    ..
                }
            ),
            "{error}"
        );
    }
}

#[test]
fn accounts_and_history_share_one_file() {
    let db = Database::new("shared-file");
    let history =
        crate::history::store::Store::open(&db.path(), crate::config::HistorySync::Normal).unwrap();
    let mut accounts = db.open(Casemapping::Ascii);
    accounts
        .create("alice", &credentials("p"), None, 0)
        .unwrap();
    drop(accounts);
    drop(history);
    // Reopening runs both migrations again: each finds its own tables done.
    let history =
        crate::history::store::Store::open(&db.path(), crate::config::HistorySync::Normal).unwrap();
    assert!(history.schema_version().unwrap() >= 3);
    let accounts = db.open(Casemapping::Ascii);
    assert_eq!(accounts.find("alice").unwrap().unwrap().name, "alice");
}

fn room(name: &str, founder: &str) -> RoomRecord {
    RoomRecord {
        name: name.to_owned(),
        founder: founder.to_owned(),
        access: Vec::new(),
        registered_ms: 10,
        history_floor_ms: 5,
        topic: None,
        modes: "nt".to_owned(),
        key: None,
        limit: None,
        lists: Vec::new(),
        metadata: Vec::new(),
    }
}

#[test]
fn a_registered_room_is_stored_whole_and_read_back() {
    let db = Database::new("rooms");
    let mut store = db.open(Casemapping::Rfc1459);
    for name in ["alice", "bob", "carol"] {
        store.create(name, &credentials("p"), None, 0).unwrap();
    }
    let mut saved = room("#Rust", "ALICE");
    saved.access = vec![
        ("Bob".into(), AccessLevel::Op),
        ("carol".into(), AccessLevel::Voice),
    ];
    saved.topic = Some(TopicRecord {
        text: "Rust and more".into(),
        set_by: "alice!~a@host".into(),
        set_ms: 7,
    });
    saved.key = Some("secret".into());
    saved.limit = Some(20);
    saved.lists = vec![
        ListRecord {
            mode: 'b',
            mask: "~a:mallory".into(),
            set_by: "alice".into(),
            set_ms: 8,
        },
        ListRecord {
            mode: 'I',
            mask: "*!*@example.org".into(),
            set_by: "alice".into(),
            set_ms: 9,
        },
    ];
    store.save_room(&saved).unwrap();
    drop(store);
    let loaded = db.open(Casemapping::Rfc1459).rooms().unwrap();
    let mut expected = saved.clone();
    // Names come back as registered.
    expected.founder = "alice".into();
    expected.access[0].0 = "bob".into();
    assert_eq!(loaded, [expected]);
}

#[test]
fn saving_again_replaces_the_room_and_drop_forgets_it() {
    let db = Database::new("rooms-replace");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    store.create("bob", &credentials("p"), None, 0).unwrap();
    let mut saved = room("#rust", "alice");
    saved.access = vec![("bob".into(), AccessLevel::Op)];
    store.save_room(&saved).unwrap();
    // A transfer: the founder changes, the access list empties.
    let mut transferred = room("#RUST", "bob");
    transferred.modes = "ntR".into();
    store.save_room(&transferred).unwrap();
    assert_eq!(store.rooms().unwrap(), [transferred]);
    assert!(store.drop_room("#rust").unwrap());
    assert!(!store.drop_room("#rust").unwrap());
    assert!(store.rooms().unwrap().is_empty());
}

#[test]
fn a_second_registration_of_a_stored_room_is_refused_until_its_drop() {
    let db = Database::new("rooms-taken");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    store.create("mallory", &credentials("p"), None, 0).unwrap();
    store.save_room(&room("#rust", "alice")).unwrap();
    let mut takeover = room("#Rust", "mallory");
    takeover.registered_ms += 1;
    assert!(matches!(
        store.save_room(&takeover),
        Err(AccountError::RoomTaken(name)) if name == "#Rust"
    ));
    assert_eq!(store.rooms().unwrap(), [room("#rust", "alice")]);
    store.drop_room("#rust").unwrap();
    store.save_room(&takeover).unwrap();
    assert_eq!(store.rooms().unwrap(), [takeover]);
}

#[test]
fn a_room_of_an_unknown_account_or_past_its_bounds_is_refused() {
    let db = Database::new("rooms-bounds");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    assert!(matches!(
        store.save_room(&room("#rust", "nobody")),
        Err(AccountError::NotFound(name)) if name == "nobody"
    ));
    let mut crowded = room("#rust", "alice");
    crowded.access = vec![("alice".into(), AccessLevel::Op); rooms::MAX_ACCESS_ENTRIES + 1];
    assert!(matches!(
        store.save_room(&crowded),
        Err(AccountError::TooMany { .. })
    ));
    let mut long_topic = room("#rust", "alice");
    long_topic.topic = Some(TopicRecord {
        text: "x".repeat(rooms::MAX_TOPIC_LEN + 1),
        set_by: "alice".into(),
        set_ms: 0,
    });
    assert!(store.save_room(&long_topic).is_err());
    assert!(store.rooms().unwrap().is_empty(), "nothing half-written");
}

#[test]
fn an_access_entry_of_an_account_gone_is_left_out_not_the_whole_room() {
    let db = Database::new("rooms-gone");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let mut saved = room("#rust", "alice");
    saved.access = vec![("ghost".into(), AccessLevel::Voice)];
    store.save_room(&saved).unwrap();
    assert_eq!(store.rooms().unwrap(), [room("#rust", "alice")]);
}

#[test]
fn every_owned_nick_is_listed_with_its_owner_and_enforcement() {
    let db = Database::new("owners");
    let mut store = db.open(Casemapping::Ascii);
    store.create("Alice", &credentials("pw"), None, 0).unwrap();
    store.add_nick("alice", "Alicia", 1).unwrap();
    store.create("bob", &credentials("pw"), None, 0).unwrap();
    store.set_enforce("ALICE", true).unwrap();
    let mut owners = store.nick_owners().unwrap();
    owners.sort_by(|a, b| a.nick_key.cmp(&b.nick_key));
    let owner = |nick: &str, account: &str, enforce| NickOwner {
        nick_key: nick.to_owned(),
        account: account.to_owned(),
        enforce,
    };
    assert_eq!(
        owners,
        [
            owner("alice", "Alice", true),
            owner("alicia", "Alice", true),
            owner("bob", "bob", false),
        ]
    );
}

#[test]
fn a_deleted_account_takes_its_nicks_and_certificates_with_it() {
    let db = Database::new("delete");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("pw"), None, 0).unwrap();
    store.add_nick("alice", "alicia", 1).unwrap();
    store.add_certificate("alice", FINGERPRINT).unwrap();
    store.delete("ALICE").unwrap();
    assert_eq!(store.find("alice").unwrap(), None);
    assert_eq!(store.nick_owner("alicia").unwrap(), None);
    assert_eq!(store.certificate_owner(FINGERPRINT).unwrap(), None);
    assert!(matches!(
        store.delete("alice"),
        Err(AccountError::NotFound(_))
    ));
    store.create("alicia", &credentials("pw"), None, 2).unwrap();
}

/// `Alice`, pending with the code "right" until `expires_ms`.
fn pending_alice(store: &mut Store, expires_ms: i64) -> Account {
    let code = PendingCode {
        code_hash: mail::code_hash("right"),
        expires_ms,
    };
    store
        .create_pending(
            "Alice",
            &credentials("pencil"),
            "a@example.org",
            &code,
            1_000,
        )
        .unwrap()
}

#[test]
fn a_pending_account_is_verified_by_its_code_only() {
    let db = Database::new("pending");
    let mut store = db.open(Casemapping::Ascii);
    let created = pending_alice(&mut store, 10_000);
    assert!(created.pending);
    assert_eq!(store.find("alice").unwrap(), Some(created));
    let wrong = mail::code_hash("wrong");
    assert_eq!(
        store.check_code("alice", &wrong, 2_000).unwrap(),
        CodeCheck::Wrong
    );
    let right = mail::code_hash("right");
    assert_eq!(
        store.check_code("alice", &right, 2_000).unwrap(),
        CodeCheck::Verified("Alice".into())
    );
    assert!(!store.find("alice").unwrap().unwrap().pending);
    assert_eq!(
        store.check_code("alice", &right, 2_000).unwrap(),
        CodeCheck::NotPending
    );
    assert_eq!(
        store.check_code("bob", &right, 2_000).unwrap(),
        CodeCheck::NotPending
    );
}

#[test]
fn the_command_line_shows_a_pending_account_as_pending() {
    let db = Database::new("pending-admin");
    let mut store = db.open(Casemapping::Ascii);
    let alice = pending_alice(&mut store, 10_000);
    store
        .create("Bob", &credentials("pencil"), None, 1_000)
        .unwrap();
    let store = super::Accounts::Sqlite(store);
    let mut listed = Vec::new();
    admin::list(&store, &mut listed).unwrap();
    let listed = String::from_utf8(listed).unwrap();
    assert!(
        listed.contains("Alice\t1970-01-01T00:00:01Z\tpending\n"),
        "{listed}"
    );
    assert!(
        listed.contains("Bob\t1970-01-01T00:00:01Z\tactive\n"),
        "{listed}"
    );
    let mut shown = Vec::new();
    admin::show(&store, &alice, &mut shown).unwrap();
    let shown = String::from_utf8(shown).unwrap();
    assert!(shown.contains("status: pending\n"), "{shown}");
}

#[test]
fn a_pending_accounts_nick_is_not_reserved_until_verified() {
    let db = Database::new("pending-owners");
    let mut store = db.open(Casemapping::Ascii);
    pending_alice(&mut store, 10_000);
    assert!(store.nick_owners().unwrap().is_empty());
    let right = mail::code_hash("right");
    store.check_code("alice", &right, 2_000).unwrap();
    let owners = store.nick_owners().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].account, "Alice");
}

#[test]
fn too_many_wrong_codes_free_the_name() {
    let db = Database::new("pending-attempts");
    let mut store = db.open(Casemapping::Ascii);
    pending_alice(&mut store, 10_000);
    let wrong = mail::code_hash("wrong");
    for _ in 0..MAX_CODE_ATTEMPTS {
        assert_eq!(
            store.check_code("alice", &wrong, 2_000).unwrap(),
            CodeCheck::Wrong
        );
    }
    assert_eq!(store.find("alice").unwrap(), None);
    assert_eq!(store.nick_owner("alice").unwrap(), None);
}

#[test]
fn an_expired_code_is_refused_and_expired_accounts_are_swept() {
    let db = Database::new("pending-expiry");
    let mut store = db.open(Casemapping::Ascii);
    pending_alice(&mut store, 10_000);
    let right = mail::code_hash("right");
    assert_eq!(
        store.check_code("alice", &right, 10_000).unwrap(),
        CodeCheck::Wrong
    );
    assert_eq!(store.find("alice").unwrap(), None);
    pending_alice(&mut store, 10_000);
    store
        .create("Bob", &credentials("pencil"), None, 1_000)
        .unwrap();
    assert_eq!(store.free_expired(9_999).unwrap(), 0);
    assert_eq!(store.free_expired(10_000).unwrap(), 1);
    assert_eq!(store.find("alice").unwrap(), None);
    assert!(
        store.find("bob").unwrap().is_some(),
        "verified accounts stay"
    );
}

#[test]
fn only_a_pending_account_is_removed_when_its_mail_fails() {
    let db = Database::new("pending-remove");
    let mut store = db.open(Casemapping::Ascii);
    store
        .create("Bob", &credentials("pencil"), None, 1_000)
        .unwrap();
    store.remove_pending("bob").unwrap();
    assert!(store.find("bob").unwrap().is_some());
    pending_alice(&mut store, 10_000);
    store.remove_pending("alice").unwrap();
    assert_eq!(store.find("alice").unwrap(), None);
}

#[test]
fn an_accounts_metadata_is_changed_key_by_key_and_goes_with_it() {
    let db = Database::new("metadata");
    let mut store = db.open(Casemapping::Rfc1459);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let set = |key: &str, value: Option<&str>| MetadataChange::Set {
        key: key.into(),
        value: value.map(str::to_owned),
    };
    let changes = [
        set("color", Some("red")),
        set("avatar", Some("a.png")),
        set("color", Some("blue")),
        set("pronouns", Some("she/her")),
        set("pronouns", None),
    ];
    store.change_metadata("ALICE", &changes).unwrap();
    let expected = vec![
        ("avatar".to_owned(), "a.png".to_owned()),
        ("color".to_owned(), "blue".to_owned()),
    ];
    assert_eq!(store.metadata("alice").unwrap(), expected);
    store
        .change_metadata("alice", &[MetadataChange::Clear])
        .unwrap();
    assert!(store.metadata("alice").unwrap().is_empty());
    store
        .change_metadata("alice", &[set("color", Some("red"))])
        .unwrap();
    store.delete("alice").unwrap();
    store.create("alice", &credentials("p"), None, 0).unwrap();
    assert!(
        store.metadata("alice").unwrap().is_empty(),
        "not the new account's"
    );
    store
        .change_metadata("nobody", &[set("color", Some("red"))])
        .unwrap();
}

#[test]
fn an_account_keeps_at_most_max_keys_per_account() {
    use super::metadata::MAX_KEYS_PER_ACCOUNT;
    let db = Database::new("metadata-full");
    let mut store = db.open(Casemapping::Rfc1459);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let set = |n: usize| MetadataChange::Set {
        key: format!("k{n}"),
        value: Some("v".into()),
    };
    let full: Vec<MetadataChange> = (0..MAX_KEYS_PER_ACCOUNT).map(set).collect();
    store.change_metadata("alice", &full).unwrap();
    assert!(
        store
            .change_metadata("alice", &[set(MAX_KEYS_PER_ACCOUNT)])
            .is_err()
    );
    store.change_metadata("alice", &[set(0)]).unwrap();
}

#[test]
fn a_registered_rooms_metadata_is_stored_with_it() {
    let db = Database::new("room-metadata");
    let mut store = db.open(Casemapping::Rfc1459);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let mut record = room("#room", "alice");
    record.metadata = vec![("display-name".into(), "The Room".into())];
    store.save_room(&record).unwrap();
    record.metadata = vec![("avatar".into(), "r.png".into())];
    store.save_room(&record).unwrap();
    assert_eq!(store.rooms().unwrap(), [record]);
    let mut bad = room("#bad", "alice");
    bad.metadata = vec![("k".into(), "v".repeat(301))];
    assert!(store.save_room(&bad).is_err());
}

fn marker(account: &str, target: &str, read_ms: i64) -> ReadMarkerRecord {
    ReadMarkerRecord {
        account: account.to_owned(),
        target: target.to_owned(),
        read_ms,
        renamed_from: None,
    }
}

#[test]
fn a_read_marker_only_moves_forward_and_goes_with_its_account() {
    let db = Database::new("markers");
    let mut store = db.open(Casemapping::Ascii);
    store.create("Alice", &credentials("p"), None, 0).unwrap();
    store
        .save_read_marker(&marker("alice", "#Room", 20))
        .unwrap();
    store
        .save_read_marker(&marker("ALICE", "#room", 10))
        .unwrap();
    store
        .save_read_marker(&marker("nobody", "#room", 30))
        .unwrap();
    drop(store);
    let mut store = db.open(Casemapping::Ascii);
    assert_eq!(
        store.read_markers().unwrap(),
        [marker("Alice", "#room", 20)]
    );
    store.delete("alice").unwrap();
    assert!(store.read_markers().unwrap().is_empty());
}

#[test]
fn an_account_keeps_its_most_recently_read_markers_only() {
    let db = Database::new("markers-bound");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    let limit = super::read_markers::MAX_MARKERS_PER_ACCOUNT as i64;
    for n in 0..=limit {
        store
            .save_read_marker(&marker("alice", &format!("#r{n}"), n))
            .unwrap();
    }
    let kept = store.read_markers().unwrap();
    assert_eq!(kept.len() as i64, limit);
    assert!(kept.iter().all(|kept| kept.target != "#r0"));
    let mut renamed = marker("alice", "#renamed", limit + 1);
    renamed.renamed_from = Some(format!("#R{limit}"));
    store.save_read_marker(&renamed).unwrap();
    let kept = store.read_markers().unwrap();
    assert!(kept.iter().any(|kept| kept.target == "#renamed"));
    assert!(kept.iter().all(|kept| kept.target != format!("#r{limit}")));
    let too_long = "#".repeat(super::read_markers::MAX_TARGET_LEN + 1);
    assert!(
        store
            .save_read_marker(&marker("alice", &too_long, 1))
            .is_err()
    );
}

#[test]
fn a_renamed_room_keeps_its_registration_access_and_lists_under_the_new_name() {
    let db = Database::new("rooms-rename");
    let mut store = db.open(Casemapping::Ascii);
    store.create("alice", &credentials("p"), None, 0).unwrap();
    store.create("bob", &credentials("p"), None, 0).unwrap();
    let mut saved = room("#old", "alice");
    saved.access = vec![("bob".into(), AccessLevel::Op)];
    saved.lists = vec![ListRecord {
        mode: 'b',
        mask: "*!*@spam".into(),
        set_by: "alice".into(),
        set_ms: 8,
    }];
    store.save_room(&saved).unwrap();
    assert!(store.rename_room("#old", "#New").unwrap());
    let mut expected = saved.clone();
    expected.name = "#New".into();
    assert_eq!(store.rooms().unwrap(), [expected]);
    assert!(!store.drop_room("#old").unwrap());
    assert!(!store.rename_room("#old", "#other").unwrap());
}

#[test]
fn an_older_shared_schema_is_not_told_to_wait_for_a_stopped_server() {
    use super::OlderSchema;
    let shared = AccountError::TooOld(OlderSchema::shared("postgres://rookery@db1/rookery"));
    let text = shared.to_string();
    assert!(text.contains("postgres://rookery@db1/rookery"), "{text}");
    assert!(!text.contains("stopped"), "{text}");
    let file = AccountError::TooOld(OlderSchema::file(std::path::Path::new("/srv/rookery.db")));
    assert!(
        file.to_string().contains("with the server stopped"),
        "{file}"
    );
}
