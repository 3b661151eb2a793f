//! REHASH (and SIGHUP, through `Event::Rehash`): the admin worker loads the
//! file off the core; [`finished`] swaps the configuration in when it
//! parsed, or reports the error and changes nothing.

use std::sync::Arc;

use tracing::{info, warn};

use crate::config::{Config, Privilege};
use crate::core::admin::{self, AdminRequest};
use crate::core::{ClientId, State, isupport_tokens};
use crate::proto::Message;
use crate::proto::numeric;

pub fn rehash(state: &mut State, id: ClientId, _: &Message) {
    if admin::require(state, id, Privilege::Rehash) {
        start(state, Some(id));
    }
}

/// Asks the admin worker to load the file again.
pub fn start(state: &mut State, requested_by: Option<ClientId>) {
    let Some(file) = state.admin.config_file.clone() else {
        if let Some(id) = requested_by {
            admin::server_notice(
                state,
                id,
                "REHASH: the server was started without a configuration file",
            );
        }
        return;
    };
    let by = requested_by
        .and_then(|id| state.clients.get(&id))
        .map_or_else(|| "SIGHUP".to_owned(), |client| client.nick.clone());
    info!(file = %file.display(), ?by, "reloading the configuration");
    if let Some(id) = requested_by {
        let file = file.display().to_string();
        state.reply(id, numeric::RPL_REHASHING, &[&file], "Rehashing");
    }
    if !state.admin.request(AdminRequest::Reload { requested_by }) {
        if let Some(id) = requested_by {
            admin::server_notice(state, id, "REHASH failed: the admin worker is not running");
        }
    }
}

/// Applies a loaded configuration, or reports why there is none.
pub fn finished(
    state: &mut State,
    requested_by: Option<ClientId>,
    outcome: Result<Arc<Config>, String>,
) {
    let notice = match outcome {
        Ok(config) => {
            let (config, kept) = keep_running_history(state, config);
            if config.history.playback_lines != state.config.history.playback_lines {
                state.playback.resize(config.history.playback_lines);
            }
            state.isupport = isupport_tokens(&config);
            state.config = config;
            match kept {
                Some(kept) => format!("REHASH: configuration reloaded, but {kept}"),
                None => "REHASH: configuration reloaded".to_owned(),
            }
        }
        Err(error) => format!("REHASH failed, the running configuration is unchanged: {error}"),
    };
    if let Some(id) = requested_by {
        admin::server_notice(state, id, &notice);
    }
}

/// The history database is opened at startup: `[history] enabled`, `path`
/// and `sync` take effect at a restart. A reloaded configuration keeps the
/// running values for them, so CAP LS and 005 go on advertising what runs
/// (no CAP NEW or DEL is due), and the change is logged and told.
fn keep_running_history(state: &State, new: Arc<Config>) -> (Arc<Config>, Option<String>) {
    let running = &state.config.history;
    let mut changed = Vec::new();
    if new.history.enabled != running.enabled {
        changed.push("history.enabled");
    }
    if new.history.path != running.path {
        changed.push("history.path");
    }
    if new.history.sync != running.sync {
        changed.push("history.sync");
    }
    if changed.is_empty() {
        return (new, None);
    }
    let keys = changed.join(", ");
    warn!(%keys, "these settings take effect at a restart; the running history is unchanged");
    let mut config = (*new).clone();
    config.history.enabled = running.enabled;
    config.history.path.clone_from(&running.path);
    config.history.sync = running.sync;
    let kept = format!("{keys} take effect at a restart; history runs as it was started");
    (Arc::new(config), Some(kept))
}
