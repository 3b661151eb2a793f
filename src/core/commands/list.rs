//! LIST with the ELIST extensions advertised in 005 (`ELIST=MNU`): masks
//! (`*rust*`, plain names too), negated masks (`!*bots*`) and member counts
//! (`>5`, `<100`), comma-separated, in either parameter.

use crate::config::Privilege;
use crate::core::{Channel, ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Message};

/// What a LIST asks for: a room is shown when it matches one of `masks`
/// (or there are none), none of `excluded`, and every count bound.
#[derive(Debug, Default)]
struct Filter {
    masks: Vec<Mask>,
    excluded: Vec<Mask>,
    more_than: Option<usize>,
    less_than: Option<usize>,
}

impl Filter {
    /// Reads every comma-separated condition; an empty parameter (irssi
    /// sends `LIST `) adds none, and a bound that is not a number is ignored.
    fn parse(params: &[String], casemapping: Casemapping) -> Filter {
        let mut filter = Filter::default();
        for condition in params.iter().flat_map(|param| param.split(',')) {
            if let Some(count) = condition.strip_prefix('>') {
                filter.more_than = count.parse().ok().or(filter.more_than);
            } else if let Some(count) = condition.strip_prefix('<') {
                filter.less_than = count.parse().ok().or(filter.less_than);
            } else if let Some(mask) = condition.strip_prefix('!') {
                filter.excluded.push(Mask::new(mask, casemapping));
            } else if !condition.is_empty() {
                filter.masks.push(Mask::new(condition, casemapping));
            }
        }
        filter
    }

    fn accepts(&self, channel: &Channel) -> bool {
        let members = channel.members.len();
        (self.masks.is_empty() || self.masks.iter().any(|mask| mask.matches(&channel.name)))
            && !self.excluded.iter().any(|mask| mask.matches(&channel.name))
            && self.more_than.is_none_or(|bound| members > bound)
            && self.less_than.is_none_or(|bound| members < bound)
    }
}

/// The share of the sendq a LIST reply may not take, left for what others
/// say while the client reads it: one eighth.
const SENDQ_HEADROOM_SHIFT: u32 = 3;

/// 321, one 322 per room shown, 323. Secret rooms are shown to members only
/// (Modern IRC) and to operators allowed to see them; private rooms are
/// listed, but outsiders get no topic.
///
/// The whole reply is queued at once, so it must fit in the asker's sendq
/// or the asker would be cut off for asking: past the room left there, the
/// rows stop and 416 says the list was cut short.
pub fn list(state: &mut State, id: ClientId, message: &Message) {
    let filter = Filter::parse(&message.params, state.config.server.casemapping);
    let sees_secret = state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_privilege(Privilege::SeeSecret));
    let mut rows: Vec<(String, String, String)> = state
        .channels
        .values()
        .filter(|channel| filter.accepts(channel))
        .filter_map(|channel| {
            let is_member = channel.members.contains_key(&id);
            if channel.modes.secret && !is_member && !sees_secret {
                return None;
            }
            let topic = match &channel.topic {
                Some(topic) if is_member || !channel.modes.private => topic.text.clone(),
                _ => String::new(),
            };
            let count = channel.members.len().to_string();
            Some((channel.name.clone(), count, topic))
        })
        .collect();
    rows.sort_unstable();
    let line = state
        .numeric_line(id, numeric::RPL_LISTSTART)
        .arg("Channel")
        .trailing("Users  Name")
        .finish();
    state.send(id, line);
    let mut room_left = state.clients.get(&id).map_or(0, |client| {
        let limit = client.outbox.limit();
        (limit - (limit >> SENDQ_HEADROOM_SHIFT)).saturating_sub(client.outbox.queued_bytes())
    });
    for (name, count, topic) in rows {
        let line = state
            .numeric_line(id, numeric::RPL_LIST)
            .arg(&name)
            .arg(&count)
            .trailing(&topic)
            .finish();
        let Some(left) = room_left.checked_sub(line.len()) else {
            state.reply(
                id,
                numeric::ERR_TOOMANYMATCHES,
                &["LIST"],
                "Output too large, truncated",
            );
            break;
        };
        room_left = left;
        state.send(id, line);
    }
    state.reply(id, numeric::RPL_LISTEND, &[], "End of /LIST");
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::config::Config;
    use crate::core::Membership;
    use crate::core::testing::Harness;

    fn room(name: &str, members: u64) -> Channel {
        let mut channel = Channel::new(name, SystemTime::UNIX_EPOCH);
        for id in 0..members {
            channel.members.insert(ClientId(id), Membership::default());
        }
        channel
    }

    fn filter(params: &[&str]) -> Filter {
        let params: Vec<String> = params.iter().map(|p| (*p).to_owned()).collect();
        Filter::parse(&params, Casemapping::Ascii)
    }

    #[test]
    fn no_condition_accepts_everything() {
        assert!(filter(&[]).accepts(&room("#a", 1)));
        assert!(filter(&[""]).accepts(&room("#a", 1)));
    }

    #[test]
    fn counts_are_strict_bounds() {
        let f = filter(&[">2,<5"]);
        assert!(!f.accepts(&room("#a", 2)));
        assert!(f.accepts(&room("#a", 3)));
        assert!(f.accepts(&room("#a", 4)));
        assert!(!f.accepts(&room("#a", 5)));
    }

    #[test]
    fn masks_match_any_and_negations_exclude() {
        let f = filter(&["#RUST*,#go", "!*-offtopic"]);
        assert!(f.accepts(&room("#rust", 1)));
        assert!(f.accepts(&room("#go", 1)));
        assert!(!f.accepts(&room("#rust-offtopic", 1)));
        assert!(!f.accepts(&room("#python", 1)));
    }

    #[test]
    fn outsiders_see_a_private_room_without_its_topic() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("eve");
        harness.send("alice", "JOIN #room");
        harness.send("alice", "TOPIC #room :inside talk");
        harness.channel_mut("#room").modes.private = true;
        harness.take("alice");
        harness.send("eve", "LIST");
        assert_eq!(harness.take("eve")[1], ":irc.test 322 eve #room 1 :");
        harness.send("alice", "LIST");
        assert_eq!(
            harness.take("alice")[1],
            ":irc.test 322 alice #room 1 :inside talk"
        );
    }

    #[test]
    fn a_list_larger_than_the_sendq_is_cut_short_instead_of_cutting_off_the_asker() {
        let mut harness = Harness::with_config(Config::default());
        let alice = harness.register("alice");
        for n in 0..3000 {
            let name = format!("#room{n:04}");
            let mut channel = Channel::new(&name, SystemTime::UNIX_EPOCH);
            channel.topic = Some(crate::core::Topic {
                text: "x".repeat(400),
                set_by: "irc.test".to_owned(),
                set_at: SystemTime::UNIX_EPOCH,
            });
            let folded = harness.state.fold(&name);
            harness.state.channels.insert(folded, channel);
        }
        harness.send("alice", "LIST");
        let lines = harness.take("alice");
        let (rows, end) = lines.split_at(lines.len() - 2);
        assert_eq!(
            end,
            [
                ":localhost 416 alice LIST :Output too large, truncated",
                ":localhost 323 alice :End of /LIST"
            ]
        );
        let bytes: usize = rows.iter().map(|line| line.len() + 2).sum();
        assert!(bytes <= 1 << 20, "{bytes} bytes queued");
        assert!(rows.len() > 1000, "only {} rows", rows.len());
        assert!(harness.state.clients.contains_key(&alice));
    }

    #[test]
    fn a_bound_that_is_not_a_number_is_ignored() {
        assert!(filter(&[">x"]).accepts(&room("#a", 0)));
    }
}
