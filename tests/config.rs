//! The configuration file: errors point at the offending line, and the
//! example file documents every key at its default.

use std::path::{Path, PathBuf};

use rookery::config::{Config, ConfigError, Listen, Oper, Tls, load, parse};

/// A hash in valid argon2id format; only its syntax is checked at load.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// Parses `text` expecting an `Invalid` error; returns its line, column and message.
fn invalid(text: &str) -> (usize, usize, String) {
    match parse(text, Path::new("rookery.toml")) {
        Err(ConfigError::Invalid {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, Path::new("rookery.toml"));
            (line, column, message)
        }
        other => panic!("expected an Invalid error for {text:?}, got {other:?}"),
    }
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml")
}

/// A file in the temporary directory, unique to this test process.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("rookery-config-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temporary file");
    path
}

#[test]
fn unknown_key_in_a_table_is_reported_at_its_line_with_its_name() {
    let (line, column, message) = invalid("[limits]\nmax_client = 5\n");
    assert_eq!((line, column), (2, 1));
    assert!(message.contains("`max_client`"), "{message}");
    assert!(message.contains("[limits]"), "{message}");
    assert!(message.contains("max_clients_per_ip"), "{message}");
}

#[test]
fn unknown_section_is_reported() {
    let (line, _, message) =
        invalid("[server]\nname = \"irc.example.net\"\n\n[limit]\nmax_clients = 5\n");
    assert_eq!(line, 4);
    assert!(message.contains("`limit`"), "{message}");
}

#[test]
fn wrong_type_is_reported_at_the_value_with_the_key_name() {
    let (line, column, message) =
        invalid("[server]\nname = \"a\"\n\n[limits]\nmax_clients = \"many\"\n");
    assert_eq!((line, column), (5, 15));
    assert!(message.contains("`max_clients`"), "{message}");
    assert!(message.contains("many"), "{message}");
}

#[test]
fn negative_count_is_a_type_error() {
    let (line, _, message) = invalid("[timeouts]\nping_timeout = -5\n");
    assert_eq!(line, 2);
    assert!(message.contains("`ping_timeout`"), "{message}");
}

#[test]
fn syntax_error_is_reported_at_its_line() {
    let (line, _, message) = invalid("[server]\nname = \"a\"\nnetwork = \n");
    assert_eq!(line, 3);
    assert!(message.contains("invalid TOML"), "{message}");
}

#[test]
fn duplicate_key_is_named() {
    let (line, _, message) = invalid("[server]\nname = \"a\"\nname = \"b\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("`name`"), "{message}");
}

#[test]
fn listen_written_as_a_single_table_suggests_double_brackets() {
    let (line, _, message) = invalid("[listen]\naddress = \"127.0.0.1:6667\"\n");
    assert_eq!(line, 1);
    assert!(message.contains("[[listen]]"), "{message}");
}

#[test]
fn nick_length_zero_is_reported_at_its_line() {
    let (line, column, message) = invalid("[limits]\nmax_clients = 100\nnick_length = 0\n");
    assert_eq!((line, column), (3, 15));
    assert!(message.contains("`nick_length`"), "{message}");
    assert!(message.contains("between 1 and 200"), "{message}");
}

#[test]
fn list_entries_past_what_a_registered_room_stores_are_rejected_at_their_line() {
    let (line, column, message) = invalid("[limits]\nmax_list_entries = 1001\n");
    assert_eq!((line, column), (2, 20));
    assert!(message.contains("`max_list_entries`"), "{message}");
    assert!(message.contains("between 1 and 1000"), "{message}");
}

#[test]
fn overlong_topic_length_is_rejected_with_the_line_limit_as_reason() {
    let (line, _, message) = invalid("[limits]\ntopic_length = 1000\n");
    assert_eq!(line, 2);
    assert!(message.contains("512 bytes"), "{message}");
}

#[test]
fn the_earliest_problem_in_the_file_is_reported() {
    let (line, _, message) = invalid("[server]\nname = \"bad name\"\n[limits]\nnick_length = 0\n");
    assert_eq!(line, 2);
    assert!(message.contains("`name` in [server]"), "{message}");
}

#[test]
fn server_name_with_a_wildcard_is_rejected() {
    let (_, _, message) = invalid("[server]\nname = \"irc.*.net\"\n");
    assert!(message.contains("'*'"), "{message}");
}

#[test]
fn server_name_longer_than_other_nodes_accept_is_rejected() {
    let long = format!("irc.{}.net", "a".repeat(250));
    let (line, _, message) = invalid(&format!("[server]\nname = \"{long}\"\n"));
    assert_eq!(line, 2);
    assert!(message.contains("at most 255 bytes"), "{message}");
}

#[test]
fn duplicate_listen_address_is_reported_at_the_second() {
    let text = "[[listen]]\naddress = \"[::1]:6667\"\n\n[[listen]]\naddress = \"[::1]:6667\"\n";
    let (line, column, message) = invalid(text);
    assert_eq!((line, column), (5, 11));
    assert!(message.contains("[[listen]] #2"), "{message}");
}

#[test]
fn empty_listen_list_is_rejected() {
    let (line, _, message) = invalid("listen = []\n");
    assert_eq!(line, 1);
    assert!(message.contains("`listen`"), "{message}");
}

#[test]
fn missing_tls_certificate_is_named() {
    let text = "[[listen]]\naddress = \"127.0.0.1:6697\"\ntls = { cert = \"/nonexistent/cert.pem\", key = \"/nonexistent/key.pem\" }\n";
    let (line, _, message) = invalid(text);
    assert_eq!(line, 3);
    assert!(message.contains("/nonexistent/cert.pem"), "{message}");
}

#[test]
fn motd_and_motd_file_together_are_rejected() {
    let (line, _, message) = invalid("[server]\nmotd = \"hi\"\nmotd_file = \"motd.txt\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("`motd`"), "{message}");
}

#[test]
fn unreadable_motd_file_is_named() {
    let (line, _, message) = invalid("[server]\nmotd_file = \"/nonexistent/motd.txt\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("/nonexistent/motd.txt"), "{message}");
}

#[test]
fn motd_file_is_read_into_lines_at_load() {
    let motd = temp_file("motd.txt", "Welcome.\r\nBe kind.\n");
    let text = format!("[server]\nmotd_file = '{}'\n", motd.display());
    let config = parse(&text, Path::new("rookery.toml")).expect("valid configuration");
    std::fs::remove_file(&motd).expect("remove temporary file");
    assert_eq!(config.motd_lines(), ["Welcome.", "Be kind."]);
}

#[test]
fn inline_motd_is_split_into_lines() {
    let config = parse(
        "[server]\nmotd = \"\"\"\nfirst\nsecond\"\"\"\n",
        Path::new("r.toml"),
    )
    .expect("valid");
    assert_eq!(config.motd_lines(), ["first", "second"]);
    assert!(Config::default().motd_lines().is_empty());
}

#[test]
fn oper_with_a_plain_password_is_rejected() {
    let (line, _, message) = invalid("[[oper]]\nname = \"alice\"\npassword_hash = \"hunter2\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("rookery passwd"), "{message}");
}

#[test]
fn oper_names_must_be_unique() {
    let text = format!(
        "[[oper]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n\n[[oper]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n"
    );
    let (line, _, message) = invalid(&text);
    assert_eq!(line, 6);
    assert!(message.contains("`alice`"), "{message}");
}

#[test]
fn oper_with_an_argon2id_hash_loads() {
    let text = format!(
        "[[oper]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\nhosts = [\"*@127.0.0.1\"]\n"
    );
    let config = parse(&text, Path::new("r.toml")).expect("valid configuration");
    assert_eq!(config.oper[0].name, "alice");
}

#[test]
fn oper_by_account_needs_no_hash_but_a_valid_account_name() {
    let text = "[[oper]]\nname = \"boss\"\naccount = \"alice\"\n";
    let config = parse(text, Path::new("r.toml")).expect("valid configuration");
    assert_eq!(config.oper[0].account.as_deref(), Some("alice"));
    assert_eq!(config.oper[0].password_hash, "");
    let (_, _, message) = invalid("[[oper]]\nname = \"boss\"\n");
    assert!(message.contains("name an account"), "{message}");
    let (line, _, message) = invalid("[[oper]]\nname = \"boss\"\naccount = \"a b\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("not an account name"), "{message}");
}

#[test]
fn default_modes_outside_ntimsp_are_rejected() {
    let (line, _, message) = invalid("[channels]\ndefault_modes = \"+ntk\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("`k`"), "{message}");
    parse("[channels]\ndefault_modes = \"\"\n", Path::new("r.toml"))
        .expect("no default modes is valid");
}

#[test]
fn every_flag_mode_may_start_a_room() {
    for (letter, _) in rookery::proto::modes::channel_flags() {
        let text = format!(
            "[channels]\ndefault_modes = \"+{letter}\"\n\n[[room]]\nname = \"#lobby\"\nmodes = \"+{letter}\"\n"
        );
        let config = parse(&text, Path::new("r.toml"))
            .unwrap_or_else(|error| panic!("+{letter} refused: {error}"));
        assert_eq!(config.channels.default_modes, format!("+{letter}"));
        assert_eq!(config.room[0].modes, Some(format!("+{letter}")));
    }
}

#[test]
fn invalid_log_filter_is_rejected() {
    let (line, _, message) = invalid("[log]\nlevel = \"rookery=loud\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("`level` in [log]"), "{message}");
}

#[test]
fn flood_rate_must_be_positive() {
    let (line, _, message) = invalid("[flood]\nlines_per_second = 0.0\n");
    assert_eq!(line, 2);
    assert!(message.contains("`lines_per_second`"), "{message}");
}

#[test]
fn playback_max_age_reads_a_number_and_a_unit() {
    let config = parse(
        "[history]\nplayback_max_age = \"12h\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        config.history.playback_max_age(),
        Some(std::time::Duration::from_secs(12 * 3600))
    );
    let config = parse("[history]\nplayback_max_age = \"0\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(config.history.playback_max_age(), None);
}

#[test]
fn playback_max_age_without_a_unit_is_reported_at_its_line() {
    let (line, _, message) = invalid("[history]\nenabled = true\nplayback_max_age = \"12\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("`playback_max_age`"), "{message}");
    assert!(message.contains("12h"), "{message}");
}

#[test]
fn redact_window_reads_a_duration_and_reports_a_bad_one_at_its_line() {
    let config = parse("[history]\nredact_window = \"15m\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(
        config.history.redact_window(),
        Some(std::time::Duration::from_secs(15 * 60))
    );
    let config = parse("[history]\nredact_window = \"0\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(config.history.redact_window(), None);
    let (line, _, message) = invalid("[history]\nenabled = true\nredact_window = \"soon\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("`redact_window`"), "{message}");
}

#[test]
fn history_sync_and_visibility_take_named_values() {
    let config = parse(
        "[history]\nsync = \"full\"\nvisibility = \"all\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(config.history.sync, rookery::config::HistorySync::Full);
    // "all", the older name, reads as "shared".
    assert_eq!(
        config.history.visibility,
        rookery::config::HistoryVisibility::Shared
    );
    let config = parse(
        "[history]\nvisibility = \"since_join\"\n[[room]]\nname = \"#a\"\nhistory = \"shared\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        config.history.visibility,
        rookery::config::HistoryVisibility::SinceJoin
    );
    assert_eq!(
        config.room[0].history,
        Some(rookery::config::HistoryVisibility::Shared)
    );
    let (line, _, message) = invalid("[history]\nsync = \"always\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("normal, full"), "{message}");
}

#[test]
fn empty_file_yields_the_defaults() {
    let config = parse("", Path::new("empty.toml")).expect("an empty file is valid");
    assert_eq!(config, Config::default());
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = Path::new("/nonexistent/rookery.toml");
    match load(path) {
        Err(error @ ConfigError::Io { .. }) => {
            assert!(
                error.to_string().contains("/nonexistent/rookery.toml"),
                "{error}"
            );
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn example_file_is_valid_and_sets_the_defaults() {
    let mut config = load(&example_path()).expect("config.example.toml is valid");
    assert!(!config.http_implicit, "the example writes its [[http]] out");
    config.http_implicit = true;
    assert_eq!(config, Config::default());
}

#[test]
fn http_is_implicit_only_when_the_file_does_not_mention_it() {
    let silent = parse("", Path::new("rookery.toml")).unwrap();
    assert!(silent.http_implicit);
    let none = parse("http = []\n", Path::new("rookery.toml")).unwrap();
    assert!(!none.http_implicit);
    let written = "[[http]]\naddress = \"127.0.0.1:8080\"\nforwarded_header = \"forwarded\"\n";
    let written = parse(written, Path::new("rookery.toml")).unwrap();
    assert!(!written.http_implicit);
    assert_eq!(
        written.http[0].forwarded_header,
        rookery::config::ForwardedHeader::Forwarded
    );
}

#[test]
fn an_unknown_forwarded_header_is_reported() {
    let text = "[[http]]\naddress = \"127.0.0.1:8080\"\nforwarded_header = \"x-real-ip\"\n";
    let (line, _, message) = invalid(text);
    assert_eq!(line, 3, "{message}");
    assert!(message.contains("forwarded_header"), "{message}");
}

#[test]
fn example_file_documents_every_key() {
    let example = std::fs::read_to_string(example_path()).expect("read config.example.toml");
    // Optional keys and lists are filled in so that they serialize too.
    let mut config = Config::default();
    config.server.motd = Some("hello".into());
    config.server.motd_file = Some("motd.txt".into());
    config.server.password = Some("secret".into());
    config.listen = vec![Listen {
        address: ([127, 0, 0, 1], 6697).into(),
        tls: Some(Tls {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        }),
    }];
    config.metrics.token = Some("token".into());
    config.network = Some(rookery::config::NetworkConfig::default());
    config.http[0].tls = Some(Tls {
        cert: "cert.pem".into(),
        key: "key.pem".into(),
    });
    config.oper = vec![Oper {
        name: "alice".into(),
        password_hash: HASH.into(),
        account: Some("alice".into()),
        hosts: vec!["*@*".into()],
        privileges: rookery::config::Privilege::all(),
    }];
    config.room = vec![rookery::config::Room {
        name: "#lobby".into(),
        topic: "Welcome".into(),
        modes: Some("+nt".into()),
        history: None,
    }];
    let value = toml::Value::try_from(&config).expect("the configuration serializes");
    let mut missing = Vec::new();
    collect_undocumented(&value, "", &example, &mut missing);
    assert!(
        missing.is_empty(),
        "config.example.toml does not document: {missing:?}"
    );
}

fn collect_undocumented(
    value: &toml::Value,
    prefix: &str,
    example: &str,
    missing: &mut Vec<String>,
) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                if !documents(example, key) {
                    missing.push(format!("{prefix}{key}"));
                }
                collect_undocumented(value, &format!("{prefix}{key}."), example, missing);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                collect_undocumented(item, prefix, example, missing);
            }
        }
        _ => {}
    }
}

/// True when `key` is written, commented out or not, as a key or table header.
fn documents(example: &str, key: &str) -> bool {
    example.lines().any(|line| {
        let line = line.trim_start_matches(['#', ' ']);
        line.starts_with(&format!("{key} ="))
            || line.starts_with(&format!("[{key}]"))
            || (line.starts_with('[') && line.ends_with(&format!(".{key}]")))
            || line.starts_with(&format!("[[{key}]]"))
            || line.contains(&format!("{{ {key} ="))
            || line.contains(&format!(", {key} ="))
    })
}

#[test]
fn a_bad_exempt_range_is_reported_at_its_line() {
    let (line, _, message) = invalid("[limits]\nexempt_ips = [\"10.0.0.0/8\", \"10.0.0.0/40\"]\n");
    assert_eq!(line, 2);
    assert!(message.contains("10.0.0.0/40"), "{message}");
}

#[test]
fn an_unknown_oper_privilege_is_reported_with_the_choices() {
    let text = format!(
        "[[oper]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nprivileges = [\"kill\", \"nuke\"]\n"
    );
    let (line, _, message) = invalid(&text);
    assert_eq!(line, 4);
    assert!(
        message.contains("`nuke`") && message.contains("see_secret"),
        "{message}"
    );
}

#[test]
fn accounts_problems_are_reported_at_their_keys() {
    for (text, key) in [
        (
            "[accounts]\nguest_after = \"soon\"\n",
            "accounts.guest_after",
        ),
        (
            "[accounts]\nlogin_window = \"0\"\n",
            "accounts.login_window",
        ),
        (
            "[accounts]\nguest_format = \"Guest\"\n",
            "accounts.guest_format",
        ),
        (
            "[accounts]\nguest_format = \"#*\"\n",
            "accounts.guest_format",
        ),
        (
            "[accounts]\nlogin_attempts = 0\n",
            "accounts.login_attempts",
        ),
        (
            "[accounts]\nregistration_requires_email = true\n",
            "accounts.registration_requires_email",
        ),
        (
            "[accounts.smtp]\nrelay = \"mail\"\nfrom = \"a@b\"\n",
            "accounts.smtp.relay",
        ),
        (
            "[accounts]\nregistration = \"anyone\"\n",
            "accounts.registration",
        ),
    ] {
        let error =
            parse(text, Path::new("rookery.toml")).expect_err(&format!("{text:?} is refused"));
        let (table, name) = key.rsplit_once('.').expect("a dotted key");
        let message = error.to_string();
        assert!(
            message.contains(&format!("`{name}` in [{table}]"))
                || message.contains(&format!("`{name}` in `{table}`")),
            "{text:?}: {message}"
        );
    }
}

#[test]
fn a_multiline_batch_must_fit_the_flood_allowance() {
    let (line, _, message) = invalid("[limits]\nmultiline_max_lines = 100\n");
    assert_eq!(line, 2);
    assert!(message.contains("`multiline_max_lines`"), "{message}");
    assert!(
        message.contains("burst + flood.max_backlog (40)"),
        "{message}"
    );
    let fits = "[limits]\nmultiline_max_lines = 100\n[flood]\nmax_backlog = 200\n";
    assert!(parse(fits, Path::new("rookery.toml")).is_ok());
}

#[test]
fn the_longest_multiline_message_must_fit_a_history_reply() {
    let (_, _, message) = invalid(
        "[limits]\nmultiline_max_bytes = 65536\nmultiline_max_lines = 1000\nsendq_bytes = 524288\n[flood]\nmax_backlog = 2000\n",
    );
    assert!(message.contains("`sendq_bytes`"), "{message}");
    assert!(
        message.contains("limits.multiline_max_lines = 1000"),
        "{message}"
    );
    let fits = "[limits]\nmultiline_max_bytes = 65536\nmultiline_max_lines = 1000\nsendq_bytes = 4194304\n[flood]\nmax_backlog = 2000\n";
    assert!(parse(fits, Path::new("rookery.toml")).is_ok());
}

#[test]
fn http_listeners_are_checked_for_repeats_origins_and_the_token() {
    let (line, _, message) = invalid(
        "[[listen]]\naddress = \"127.0.0.1:6667\"\n\n[[http]]\naddress = \"127.0.0.1:6667\"\n",
    );
    assert_eq!(line, 5);
    assert!(message.contains("[[listen]] #1"), "{message}");
    let (line, _, message) = invalid(
        "[[http]]\naddress = \"127.0.0.1:8080\"\norigins = [\"https://chat.example.org/page\"]\n",
    );
    assert_eq!(line, 3);
    assert!(message.contains("https://chat.example.org"), "{message}");
    let (line, _, message) = invalid("[metrics]\ntoken = \"two words\"\n");
    assert_eq!(line, 2);
    assert!(message.contains("Bearer"), "{message}");
}

#[test]
fn an_empty_http_list_turns_the_browser_listener_off() {
    let path = temp_file("no-http.toml", "http = []\n");
    let config = load(&path).expect("valid");
    assert!(config.http.is_empty());
    assert_eq!(Config::default().http.len(), 1);
}
