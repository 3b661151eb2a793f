//! REHASH (and SIGHUP, through `Event::Rehash`): the admin worker loads the
//! file off the core and keeps the settings that need a restart
//! ([`crate::config::keep_restart_only`]); [`finished`] swaps the
//! configuration in when it parsed and names what was kept, or reports the
//! error and changes nothing.

use tracing::info;

use crate::core::Refusal;
use crate::core::{AdminRequest, Reloaded};
use crate::core::{ClientId, ReloadError, State, isupport_tokens};
use crate::proto::Message;
use crate::proto::numeric;

/// `REHASH`
///
/// Reloads the configuration file, off the core.
pub fn rehash(state: &mut State, id: ClientId, _: &Message) -> Result<(), Refusal> {
    start(state, Some(id));
    Ok(())
}

/// Asks the admin worker to load the file again.
pub fn start(state: &mut State, requested_by: Option<ClientId>) {
    let Some(file) = state.admin.config_file.clone() else {
        if let Some(id) = requested_by {
            state.server_notice(
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
    if !state.admin.request(AdminRequest::Reload { requested_by })
        && let Some(id) = requested_by
    {
        state.server_notice(id, "REHASH failed: the admin worker is not running");
    }
}

/// Applies a loaded configuration, or reports why there is none.
pub fn finished(
    state: &mut State,
    requested_by: Option<ClientId>,
    outcome: Result<Reloaded, ReloadError>,
) {
    let notice = match outcome {
        Ok(Reloaded { config, kept }) => {
            if config.history.playback_lines != state.config.history.playback_lines {
                state.playback.resize(config.history.playback_lines);
            }
            state.isupport = isupport_tokens(&config);
            state.admin.login_lockout.configure(&config.accounts);
            state.config = config;
            match kept.as_slice() {
                [] => "REHASH: configuration reloaded".to_owned(),
                kept => format!(
                    "REHASH: configuration reloaded, but {} take effect at a restart; the running values are kept",
                    kept.join(", ")
                ),
            }
        }
        Err(error) => format!("REHASH failed, the running configuration is unchanged: {error}"),
    };
    if let Some(id) = requested_by {
        state.server_notice(id, &notice);
    }
}
