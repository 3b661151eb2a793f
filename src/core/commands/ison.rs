//! ISON: which of these nicks are online.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;
use crate::proto::serialize::MAX_LINE;

/// `ISON <nickname>{ <nickname>}`
///
/// Which of the nicks are online (RFC 2812; not in Modern IRC).
pub fn ison(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    // `:server 303 nick :` and CR LF around the list.
    let asker = state.clients.get(&id).map_or("*", |c| c.target());
    let budget = MAX_LINE.saturating_sub(state.server_name().len() + asker.len() + 10);
    let mut online = String::new();
    // Nicks may come as separate parameters or in one trailing one.
    for wanted in message
        .params
        .iter()
        .flat_map(|p| p.split_ascii_whitespace())
    {
        let Some(client) = state.registered_client(&state.fold(wanted)) else {
            continue;
        };
        if online.len() + 1 + client.nick.len() > budget {
            break;
        }
        if !online.is_empty() {
            online.push(' ');
        }
        // As its owner spells it, not as asked.
        online.push_str(&client.nick);
    }
    state.reply(id, numeric::RPL_ISON, &[], &online);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn online_nicks_come_back_as_their_owners_spell_them() {
        let mut h = Harness::new();
        h.register("Bob");
        h.register("eve");
        h.send("eve", "ISON bob nobody :EVE x");
        assert_eq!(h.take("eve"), [":irc.test 303 eve :Bob eve"]);
        h.send("eve", "ISON nobody");
        assert_eq!(h.take("eve"), [":irc.test 303 eve :"]);
    }
}
