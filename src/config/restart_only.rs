//! The settings read once, at startup: the listeners are bound, the
//! casemapping folds every stored name, the cloak key makes every host
//! shown, and the history database is opened. A REHASH that changes one
//! keeps the running value, and says so.

use super::Config;

/// One setting that takes effect at a restart.
struct RestartOnly {
    /// Its key, as the operator and the log are told.
    key: &'static str,
    /// Whether the loaded file asks for another value than the running one.
    changed: fn(running: &Config, loaded: &Config) -> bool,
    /// Puts the running value back.
    keep: fn(running: &Config, loaded: &mut Config),
}

const RESTART_ONLY: &[RestartOnly] = &[
    // The node joins its network (or runs alone) at startup.
    RestartOnly {
        key: "network",
        changed: |running, loaded| loaded.network != running.network,
        keep: |running, loaded| loaded.network.clone_from(&running.network),
    },
    RestartOnly {
        key: "listen",
        changed: |running, loaded| loaded.listen != running.listen,
        keep: |running, loaded| loaded.listen.clone_from(&running.listen),
    },
    // Each listener is bound, and takes TLS or not, at startup (its
    // certificate is reloaded in place); origins, proxies and
    // forwarded_header apply on REHASH.
    RestartOnly {
        key: "http",
        changed: |running, loaded| !same_http_sockets(running, loaded),
        keep: keep_http_sockets,
    },
    RestartOnly {
        key: "server.casemapping",
        changed: |running, loaded| loaded.server.casemapping != running.server.casemapping,
        keep: |running, loaded| loaded.server.casemapping = running.server.casemapping,
    },
    RestartOnly {
        key: "cloaking.enabled",
        changed: |running, loaded| loaded.cloaking.enabled != running.cloaking.enabled,
        keep: |running, loaded| loaded.cloaking.enabled = running.cloaking.enabled,
    },
    RestartOnly {
        key: "cloaking.suffix",
        changed: |running, loaded| loaded.cloaking.suffix != running.cloaking.suffix,
        keep: |running, loaded| loaded.cloaking.suffix.clone_from(&running.cloaking.suffix),
    },
    // The running secret is the one read from secret_file when the file
    // leaves it empty: empty is no change.
    RestartOnly {
        key: "cloaking.secret",
        changed: |running, loaded| {
            !loaded.cloaking.secret.is_empty() && loaded.cloaking.secret != running.cloaking.secret
        },
        keep: |running, loaded| loaded.cloaking.secret.clone_from(&running.cloaking.secret),
    },
    RestartOnly {
        key: "cloaking.secret_file",
        changed: |running, loaded| loaded.cloaking.secret_file != running.cloaking.secret_file,
        keep: |running, loaded| {
            loaded
                .cloaking
                .secret_file
                .clone_from(&running.cloaking.secret_file);
        },
    },
    // CAP LS and 005 go on advertising the history that runs (no CAP NEW
    // or DEL is due).
    RestartOnly {
        key: "history.enabled",
        changed: |running, loaded| loaded.history.enabled != running.history.enabled,
        keep: |running, loaded| loaded.history.enabled = running.history.enabled,
    },
    RestartOnly {
        key: "history.path",
        changed: |running, loaded| loaded.history.path != running.history.path,
        keep: |running, loaded| loaded.history.path.clone_from(&running.history.path),
    },
    // The writer and reader hold their connections from the start.
    RestartOnly {
        key: "history.backend",
        changed: |running, loaded| loaded.history.backend != running.history.backend,
        keep: |running, loaded| loaded.history.backend = running.history.backend,
    },
    RestartOnly {
        key: "history.postgres",
        changed: |running, loaded| loaded.history.postgres != running.history.postgres,
        keep: |running, loaded| {
            loaded
                .history
                .postgres
                .clone_from(&running.history.postgres)
        },
    },
    RestartOnly {
        key: "history.sync",
        changed: |running, loaded| loaded.history.sync != running.history.sync,
        keep: |running, loaded| loaded.history.sync = running.history.sync,
    },
    // The pruner is built with these when the store opens.
    RestartOnly {
        key: "history.max_lines_per_room",
        changed: |running, loaded| {
            loaded.history.max_lines_per_room != running.history.max_lines_per_room
        },
        keep: |running, loaded| {
            loaded.history.max_lines_per_room = running.history.max_lines_per_room;
        },
    },
    RestartOnly {
        key: "history.max_age_days",
        changed: |running, loaded| loaded.history.max_age_days != running.history.max_age_days,
        keep: |running, loaded| loaded.history.max_age_days = running.history.max_age_days,
    },
    RestartOnly {
        key: "history.max_lines_total",
        changed: |running, loaded| {
            loaded.history.max_lines_total != running.history.max_lines_total
        },
        keep: |running, loaded| loaded.history.max_lines_total = running.history.max_lines_total,
    },
    // Standing rooms are made, with their modes, topic and history rule,
    // and their history start recorded, when the server starts: a REHASH
    // that said "reloaded" while a room stayed readable would mislead.
    RestartOnly {
        key: "room",
        changed: |running, loaded| loaded.room != running.room,
        keep: |running, loaded| loaded.room.clone_from(&running.room),
    },
];

/// Whether `loaded` binds the same `[[http]]` addresses, in the same
/// order, each with the same TLS files, as `running`.
fn same_http_sockets(running: &Config, loaded: &Config) -> bool {
    running.http.len() == loaded.http.len()
        && running
            .http
            .iter()
            .zip(&loaded.http)
            .all(|(running, loaded)| running.address == loaded.address && running.tls == loaded.tls)
}

/// Keeps the running `[[http]]` listeners: all of them when their number
/// changed, else each one's address and TLS, with the loaded rules.
fn keep_http_sockets(running: &Config, loaded: &mut Config) {
    loaded.http_implicit = running.http_implicit;
    if running.http.len() != loaded.http.len() {
        loaded.http.clone_from(&running.http);
        return;
    }
    for (running, loaded) in running.http.iter().zip(&mut loaded.http) {
        loaded.address = running.address;
        loaded.tls.clone_from(&running.tls);
    }
}

/// Gives `loaded` the running value of every setting read only at startup,
/// and names those it would have changed.
pub fn keep_restart_only(running: &Config, loaded: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for setting in RESTART_ONLY {
        if (setting.changed)(running, loaded) {
            changed.push(setting.key);
        }
        (setting.keep)(running, loaded);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Casemapping;

    #[test]
    fn running_values_stay_and_each_changed_key_is_named() {
        let mut running = Config::default();
        running.cloaking.secret = "from the key file".into();
        let mut loaded = Config::default();
        loaded.server.casemapping = Casemapping::Rfc1459;
        loaded.history.enabled = !running.history.enabled;
        loaded.limits.max_clients = 7;
        let changed = keep_restart_only(&running, &mut loaded);
        assert_eq!(changed, ["server.casemapping", "history.enabled"]);
        assert_eq!(loaded.server.casemapping, running.server.casemapping);
        assert_eq!(loaded.history.enabled, running.history.enabled);
        assert_eq!(
            loaded.cloaking, running.cloaking,
            "the secret read at startup stays"
        );
        assert_eq!(loaded.limits.max_clients, 7, "the rest reloads");
    }

    #[test]
    fn standing_rooms_and_retention_wait_for_a_restart() {
        let running = Config::default();
        let mut loaded = Config::default();
        loaded.room.push(crate::config::Room {
            name: "#staff".into(),
            topic: String::new(),
            modes: None,
            history: Some(crate::config::HistoryVisibility::SinceJoin),
        });
        loaded.history.max_lines_total = 5;
        let changed = keep_restart_only(&running, &mut loaded);
        assert_eq!(changed, ["history.max_lines_total", "room"]);
        assert_eq!(loaded, running);
    }

    #[test]
    fn http_rules_and_the_token_reload_but_addresses_wait() {
        let running = Config::default();
        let mut loaded = Config::default();
        loaded.http[0].origins = vec!["https://chat.example.org".into()];
        loaded.metrics.token = Some("new".into());
        assert!(keep_restart_only(&running, &mut loaded).is_empty());
        assert_eq!(loaded.http[0].origins, ["https://chat.example.org"]);
        loaded.http[0].address = "127.0.0.1:9090".parse().unwrap();
        assert_eq!(keep_restart_only(&running, &mut loaded), ["http"]);
        assert_eq!(loaded.http[0].address, running.http[0].address);
        assert_eq!(loaded.http[0].origins, ["https://chat.example.org"]);
    }

    #[test]
    fn an_unchanged_file_names_nothing() {
        let running = Config::default();
        let mut loaded = Config::default();
        assert!(keep_restart_only(&running, &mut loaded).is_empty());
        assert_eq!(loaded, running);
    }
}
