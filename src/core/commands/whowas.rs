//! WHOWAS: who used a nick before, newest first.

use chrono::{DateTime, Utc};

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;
use crate::proto::serialize::echo_param;

/// `WHOWAS <nick> [<count>]`
pub fn whowas(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let nick = message.param(0).split(',').next().unwrap_or_default();
    if nick.is_empty() {
        return Err(Refusal::no_nickname_given());
    }
    // A count that is not a positive number means all entries.
    let count = match message.param(1).parse::<usize>() {
        Ok(count) if count > 0 => count,
        _ => usize::MAX,
    };
    let folded = state.fold(nick);
    let entries: Vec<_> = state.whowas.lookup(&folded).take(count).cloned().collect();
    let shown = echo_param(nick).to_owned();
    if entries.is_empty() {
        state.refuse(id, Refusal::new(numeric::ERR_WASNOSUCHNICK, &[&shown]));
    }
    let server = state.server_name().to_owned();
    for entry in entries {
        let line = state
            .numeric_line(id, numeric::RPL_WHOWASUSER)
            .arg(&entry.nick)
            .arg(&entry.user)
            .arg(&entry.host)
            .arg("*")
            .trailing(&entry.realname)
            .finish();
        state.send(id, line);
        // As most servers do, the server info of a WHOWAS 312 is when the
        // nick was left.
        let departed: DateTime<Utc> = entry.departed.into();
        let departed = departed.format("%a %b %d %H:%M:%S %Y").to_string();
        state.reply(
            id,
            numeric::RPL_WHOISSERVER,
            &[&entry.nick, &server],
            &departed,
        );
    }
    state.reply(id, numeric::RPL_ENDOFWHOWAS, &[&shown], "End of WHOWAS");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn a_user_who_quit_is_remembered() {
        let mut h = Harness::new();
        h.register("bob");
        h.register("eve");
        h.send("bob", "QUIT :bye");
        h.send("eve", "WHOWAS BOB");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 314 eve bob ~bob 127.0.0.1 * :bob Name",
                ":irc.test 312 eve bob irc.test :Fri Jan 01 00:00:00 2021",
                ":irc.test 369 eve BOB :End of WHOWAS",
            ]
        );
    }

    #[test]
    fn a_changed_nick_is_remembered_newest_first() {
        let mut h = Harness::new();
        h.register("bob");
        h.register("eve");
        h.send("bob", "NICK robert");
        h.send("bob", "NICK bob");
        h.send("bob", "NICK bobby");
        h.send("eve", "WHOWAS bob");
        assert_eq!(h.take("eve").len(), 5);
        h.send("eve", "WHOWAS bob 1");
        assert_eq!(h.take("eve").len(), 3);
    }

    #[test]
    fn an_unknown_nick_is_406_then_369() {
        let mut h = Harness::new();
        h.register("eve");
        h.send("eve", "WHOWAS ghost");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 406 eve ghost :There was no such nickname",
                ":irc.test 369 eve ghost :End of WHOWAS",
            ]
        );
    }
}
