//! REHASH (and SIGHUP, through `Event::Rehash`): the admin worker loads the
//! file off the core and keeps the settings that need a restart
//! ([`crate::config::keep_restart_only`]); [`finished`] swaps the
//! configuration in when it parsed and names what was kept, or reports the
//! error and changes nothing. `REHASH <mask>` reloads every node of the
//! network whose server name matches, this one included
//! (`core/network/rehash.rs`).

use tracing::info;

use crate::core::Refusal;
use crate::core::{AdminRequest, Reloaded};
use crate::core::{ClientId, ReloadError, State, isupport_tokens};
use crate::proto::Message;
use crate::proto::numeric;

/// `REHASH [<server mask>]`
///
/// Reloads the configuration file, off the core. With a mask, as
/// InspIRCd's REHASH takes one (UnrealIRCd's `-global` is not taken), every
/// node of the network whose server name matches reloads its own file:
/// `REHASH *` reloads them all. The operator gets this node's answer as
/// for a plain REHASH, a notice of how many other nodes were asked, then
/// one notice per node that answered within ten seconds, and a last one
/// counting those that did not. 402 when no server matches. A parameter
/// other servers take as what to reload (`-motd`, `MOTD`, `SSL`: a leading
/// `-`, or a word without `.`, `*` or `?`) reloads this node as a plain
/// REHASH does, since it reloads everything.
pub fn rehash(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let mask = message.param(0);
    let keyword = mask.starts_with('-') || !mask.contains(['.', '*', '?']);
    if keyword {
        start(state, Some(id));
        return Ok(());
    }
    let here = state.names_this_server(mask);
    let others = state.network_rehash(id, mask);
    if !here && others == 0 {
        return Err(Refusal::new(numeric::ERR_NOSUCHSERVER, &[mask]));
    }
    if here {
        start(state, Some(id));
    }
    if others > 0 {
        let nodes = if others == 1 { "node" } else { "nodes" };
        let text = format!("REHASH: asked {others} other {nodes} to reload their configuration");
        state.server_notice(id, &text);
    }
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
    if !state.admin.request(AdminRequest::Reload { requested_by }) {
        if let Some(id) = requested_by {
            state.server_notice(id, "REHASH failed: the admin worker is not running");
        }
        return;
    }
    state.network_local_reload_started();
}

/// Asks the admin worker to load the file again for another node; the
/// text to answer that node with when it cannot.
pub fn start_for_node(state: &mut State) -> Result<(), &'static str> {
    let Some(file) = state.admin.config_file.clone() else {
        return Err("REHASH: the server was started without a configuration file");
    };
    info!(file = %file.display(), "reloading the configuration for another node");
    if !state
        .admin
        .request(AdminRequest::Reload { requested_by: None })
    {
        return Err("REHASH failed: the admin worker is not running");
    }
    Ok(())
}

/// Applies a loaded configuration, or reports why there is none.
pub fn finished(
    state: &mut State,
    requested_by: Option<ClientId>,
    outcome: Result<Reloaded, ReloadError>,
) {
    let failed = outcome.is_err();
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
    state.network_reloaded(&notice, failed);
    if let Some(id) = requested_by {
        state.server_notice(id, &notice);
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    /// Harness with alice, an operator with every privilege.
    fn with_operator() -> Harness {
        let mut h = Harness::new();
        let id = h.register("alice");
        if let Some(alice) = h.state.clients.get_mut(&id) {
            alice.modes.oper = true;
            alice.privileges = crate::config::Privilege::all();
        }
        h
    }

    #[test]
    fn a_mask_that_names_no_server_gets_402() {
        let mut h = with_operator();
        h.send("alice", "REHASH elsewhere.*");
        assert_eq!(
            h.take("alice"),
            [":irc.test 402 alice elsewhere.* :No such server"]
        );
    }

    #[test]
    fn what_other_servers_take_as_a_part_to_reload_reloads_this_node() {
        let mut h = with_operator();
        for parameter in ["-motd", "MOTD", "ssl"] {
            h.send("alice", &format!("REHASH {parameter}"));
            assert_eq!(
                h.take("alice"),
                [
                    ":irc.test NOTICE alice :REHASH: the server was started without a configuration file"
                ]
            );
        }
    }

    #[test]
    fn a_mask_that_names_this_server_reloads_it() {
        let mut h = with_operator();
        h.send("alice", "REHASH irc.*");
        assert_eq!(
            h.take("alice"),
            [":irc.test NOTICE alice :REHASH: the server was started without a configuration file"]
        );
    }
}
