//! AWAY: set or clear the away message that WHOIS, WHO and USERHOST show.

use super::registration::truncate;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

pub fn away(state: &mut State, id: ClientId, message: &Message) {
    let max = state.config.limits.away_length;
    let text = message.param(0);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
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
}
