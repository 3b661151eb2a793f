//! USERHOST: `nick[*]=[+|-]user@host` for up to five nicks.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

/// Modern IRC: "The USERHOST command takes up to five nicknames".
const MAX_NICKS: usize = 5;

/// `USERHOST <nickname>{ <nickname>}`
pub fn userhost(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let replies: Vec<String> = message
        .params
        .iter()
        .flat_map(|p| p.split_ascii_whitespace())
        .take(MAX_NICKS)
        .filter_map(|wanted| {
            let client = state.registered_client(&state.fold(wanted))?;
            let oper = if client.modes.oper { "*" } else { "" };
            let away = if client.away.is_some() { '-' } else { '+' };
            Some(format!(
                "{}{oper}={away}{}@{}",
                client.nick, client.user, client.host
            ))
        })
        .collect();
    state.reply(id, numeric::RPL_USERHOST, &[], &replies.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn userhost_marks_operators_and_away_users() {
        let mut h = Harness::new();
        h.register("bob");
        h.register("eve");
        h.send("bob", "AWAY :busy");
        h.make_oper("bob");
        h.send("eve", "USERHOST BOB nobody eve");
        assert_eq!(
            h.take("eve"),
            [":irc.test 302 eve :bob*=-~bob@127.0.0.1 eve=+~eve@127.0.0.1"]
        );
    }

    #[test]
    fn at_most_five_nicks_are_answered() {
        let mut h = Harness::new();
        h.register("eve");
        h.send("eve", "USERHOST a b c d e eve");
        assert_eq!(h.take("eve"), [":irc.test 302 eve :"]);
    }
}
