//! MARKREAD (draft/read-marker): set or ask where the user last read a
//! target. The markers themselves live in `core/read_markers.rs`.

use crate::core::read_markers::parse_timestamp;
use crate::core::{ClientId, Refusal, State};
use crate::history::millis;
use crate::proto::Message;
use crate::proto::validate::{is_valid_channel, is_valid_nick};

/// `MARKREAD <target> [timestamp=<time>]`
///
/// With a time, moves the marker forward (never back; a time to come is
/// taken as now); without, asks for it. Either way the answer is the
/// marker as it stands.
pub fn markread(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let target = message.param(0);
    if target.is_empty() {
        state.fail(
            id,
            "MARKREAD",
            "NEED_MORE_PARAMS",
            &[],
            "Missing parameters",
        );
        return Ok(());
    }
    if !is_target(state, target) {
        state.fail(
            id,
            "MARKREAD",
            "INVALID_PARAMS",
            &[target],
            "Invalid target",
        );
        return Ok(());
    }
    let Some(param) = message.params.get(1) else {
        let read_ms = state.read_marker(id, target);
        state.send_read_marker(id, target, read_ms);
        return Ok(());
    };
    match parse_timestamp(param) {
        Some(read_ms) => {
            let now = millis(state.clock.now());
            state.mark_read(id, target, read_ms.min(now));
        }
        None => {
            let context = [target, param.as_str()];
            state.fail(
                id,
                "MARKREAD",
                "INVALID_PARAMS",
                &context,
                "Invalid timestamp",
            );
        }
    }
    Ok(())
}

/// A room's or a nick's name, as the server's limits allow them.
fn is_target(state: &State, target: &str) -> bool {
    let limits = &state.config.limits;
    is_valid_channel(target, limits.channel_length) || is_valid_nick(target, limits.nick_length)
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    /// A registered client with draft/read-marker.
    fn reader(harness: &mut Harness, nick: &str) {
        harness.connect(nick);
        harness.send(nick, "CAP REQ draft/read-marker");
        harness.send(nick, &format!("NICK {nick}"));
        harness.send(nick, &format!("USER {nick} 0 * :{nick}"));
        harness.send(nick, "CAP END");
        harness.take(nick);
    }

    fn log_in(harness: &mut Harness, nick: &str, account: &str) {
        let id = harness.id(nick);
        harness.state.log_in(id, account);
    }

    #[test]
    fn a_marker_is_told_back_as_set_and_never_moves_back() {
        let mut h = Harness::new();
        reader(&mut h, "alice");
        h.send("alice", "MARKREAD #Room");
        h.send("alice", "MARKREAD #Room timestamp=2020-03-15T10:00:00.000Z");
        h.send("alice", "MARKREAD #room timestamp=2019-01-01T00:00:00Z");
        h.send("alice", "MARKREAD #ROOM");
        let set = "timestamp=2020-03-15T10:00:00.000Z";
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test MARKREAD #Room *".to_owned(),
                format!(":irc.test MARKREAD #Room {set}"),
                format!(":irc.test MARKREAD #room {set}"),
                format!(":irc.test MARKREAD #ROOM {set}"),
            ]
        );
    }

    #[test]
    fn missing_or_bad_parameters_fail_as_the_spec_says() {
        let mut h = Harness::new();
        reader(&mut h, "alice");
        h.send("alice", "MARKREAD");
        h.send("alice", "MARKREAD #room *");
        h.send("alice", "MARKREAD #room timestamp=yesterday");
        h.send("alice", "MARKREAD #room 2020-03-15T10:00:00.000Z");
        h.send("alice", "MARKREAD a,b");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters",
                ":irc.test FAIL MARKREAD INVALID_PARAMS #room * :Invalid timestamp",
                ":irc.test FAIL MARKREAD INVALID_PARAMS #room timestamp=yesterday :Invalid timestamp",
                ":irc.test FAIL MARKREAD INVALID_PARAMS #room 2020-03-15T10:00:00.000Z :Invalid timestamp",
                ":irc.test FAIL MARKREAD INVALID_PARAMS a,b :Invalid target",
            ]
        );
    }

    #[test]
    fn a_time_to_come_is_taken_as_now() {
        let mut h = Harness::new();
        reader(&mut h, "alice");
        h.send("alice", "MARKREAD bob timestamp=2999-01-01T00:00:00.000Z");
        let told = h.take("alice");
        let now = crate::proto::tags::server_time(h.state.clock.now());
        assert_eq!(told, [format!(":irc.test MARKREAD bob timestamp={now}")]);
    }

    #[test]
    fn an_accounts_connections_share_its_markers_and_others_do_not() {
        let mut h = Harness::new();
        reader(&mut h, "alice");
        reader(&mut h, "alice2");
        reader(&mut h, "mallory");
        log_in(&mut h, "alice", "alice");
        log_in(&mut h, "alice2", "alice");
        h.take("alice");
        h.take("alice2");
        h.send("alice", "MARKREAD #room timestamp=2020-11-11T11:11:11.111Z");
        let told = ":irc.test MARKREAD #room timestamp=2020-11-11T11:11:11.111Z";
        assert_eq!(h.take("alice"), [told]);
        assert_eq!(h.take("alice2"), [told]);
        h.send("mallory", "MARKREAD #room");
        assert_eq!(h.take("mallory"), [":irc.test MARKREAD #room *"]);
        log_in(&mut h, "mallory", "alice");
        assert_eq!(h.take("mallory").last().map(String::as_str), Some(told));
    }

    #[test]
    fn a_join_tells_the_marker_before_the_end_of_names() {
        let mut h = Harness::new();
        reader(&mut h, "alice");
        h.register("bob");
        h.send("alice", "JOIN #room");
        let lines = h.take("alice");
        let marker = lines.iter().position(|l| l == ":irc.test MARKREAD #room *");
        let end = lines.iter().position(|l| l.contains(" 366 "));
        assert!(marker.is_some() && marker < end, "{lines:?}");
        h.send("bob", "JOIN #room");
        assert!(!h.take("bob").iter().any(|l| l.contains("MARKREAD")));
    }
}
