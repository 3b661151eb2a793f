//! AWAY: set or clear the away message that WHOIS, WHO and USERHOST show,
//! and tell away-notify clients.

use super::registration::truncate;
use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

/// `AWAY [<text>]`
///
/// Sets the away message (301 to those who message the client), or clears it with no text.
/// Before registration only with draft/pre-away, which lets a client say
/// it is away (`AWAY *`: away for no given reason) from the start.
pub fn away(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let max = state.config.limits.away_length;
    let text = message.param(0);
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    let registered = client.registered;
    if !registered && !client.has_cap(Caps::PRE_AWAY) {
        return Err(Refusal::not_registered());
    }
    if text.is_empty() {
        client.away = None;
        state.reply(
            id,
            numeric::RPL_UNAWAY,
            &[],
            "You are no longer marked as being away",
        );
    } else {
        // AWAYLEN: longer messages are cut, as Modern IRC allows.
        client.away = Some(truncate(text, max).to_owned());
        state.reply(
            id,
            numeric::RPL_NOWAWAY,
            &[],
            "You have been marked as being away",
        );
    }
    // Not yet online, it has no peers to tell; a JOIN tells them later.
    if registered {
        notify(state, id);
        state.network_command(id, "AWAY", vec![text.to_owned()]);
    }
    Ok(())
}

/// away-notify: `:nick!user@host AWAY [:text]` to peers (and extended-monitor
/// watchers) that asked for it, each once.
fn notify(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let line = Line::new(Some(&client.source), "AWAY");
    let line = match &client.away {
        Some(text) => line.trailing(text),
        None => line,
    };
    let mut event = state.event_from(id, line.finish());
    let audience = state.audience(id, Caps::AWAY_NOTIFY);
    state.send_all(audience, &mut event);
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn away_is_set_truncated_and_cleared() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.limits.away_length = 5;
        let mut h = Harness::with_config(config);
        h.register("bob");
        h.send("bob", "AWAY :out to lunch");
        assert_eq!(
            h.take("bob"),
            [":irc.test 306 bob :You have been marked as being away"]
        );
        assert_eq!(h.state.clients[&h.id("bob")].away.as_deref(), Some("out t"));
        h.send("bob", "AWAY");
        h.send("bob", "AWAY :");
        assert_eq!(
            h.take("bob"),
            [":irc.test 305 bob :You are no longer marked as being away"; 2]
        );
        assert_eq!(h.state.clients[&h.id("bob")].away, None);
    }

    #[test]
    fn before_registration_away_needs_pre_away() {
        let mut h = Harness::new();
        h.connect("bob");
        h.send("bob", "AWAY :early");
        assert_eq!(h.take("bob"), [":irc.test 451 * :You have not registered"]);
        h.send("bob", "CAP REQ draft/pre-away");
        h.send("bob", "AWAY *");
        h.send("bob", "NICK bob");
        h.send("bob", "USER bob 0 * :bob");
        h.send("bob", "CAP END");
        let lines = h.take("bob");
        assert_eq!(
            lines[1],
            ":irc.test 306 * :You have been marked as being away"
        );
        assert!(lines[2].contains(" 001 bob "), "{lines:?}");
        assert_eq!(h.state.clients[&h.id("bob")].away.as_deref(), Some("*"));
        h.register("alice");
        h.send("alice", "WHOIS bob");
        assert!(
            h.take("alice")
                .contains(&":irc.test 301 alice bob :*".to_owned())
        );
    }
}
