//! LIST with the ELIST extensions advertised in 005 (`ELIST=CMNTU`): masks
//! (`*rust*`, plain names too), negated masks (`!*bots*`), member counts
//! (`>5`, `<100`), and creation and topic times in minutes (`C<60`: created
//! less than an hour ago, `T>1440`: topic set more than a day ago),
//! comma-separated, in either parameter.
//!
//! One LIST may not stall the core: it takes at most TARGMAX masks, none
//! longer than a room name may be, each once, and stops matching past a
//! fixed budget of work.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::core::Refusal;
use crate::core::{Channel, ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Message};

/// The most mask matching steps one LIST may take, counted as they are
/// taken ([`Mask::matches_within`]): a search such as `*rust*` costs about
/// a room name's length per room, so ordinary searches of tens of
/// thousands of rooms stay below it, while masks built to backtrack run
/// out and the list is cut short with 416.
const MATCH_BUDGET: usize = 4_000_000;

/// A bound on how long ago something happened: `<` less than, `>` more than.
#[derive(Clone, Copy, Debug)]
enum Age {
    LessThan(Duration),
    MoreThan(Duration),
}

impl Age {
    /// Reads `<n` or `>n`, `n` in minutes; `None` when `n` is not a number.
    fn parse(bound: &str) -> Option<Age> {
        let minutes = |n: &str| n.parse::<u64>().ok().map(minutes_to_duration);
        if let Some(n) = bound.strip_prefix('<') {
            minutes(n).map(Age::LessThan)
        } else {
            minutes(bound.strip_prefix('>')?).map(Age::MoreThan)
        }
    }

    /// Whether something that happened `at` is that old at `now`.
    fn accepts(self, at: SystemTime, now: SystemTime) -> bool {
        let age = now.duration_since(at).unwrap_or_default();
        match self {
            Age::LessThan(bound) => age < bound,
            Age::MoreThan(bound) => age > bound,
        }
    }
}

/// `C<n`-style conditions led by `letter`: `None` when `condition` is not
/// one, `Some(None)` when its bound is not a number (and is ignored).
fn time_condition(condition: &str, letter: char) -> Option<Option<Age>> {
    let bound = condition.strip_prefix(letter)?;
    bound.starts_with(['<', '>']).then(|| Age::parse(bound))
}

fn minutes_to_duration(minutes: u64) -> Duration {
    Duration::from_secs(minutes.saturating_mul(60))
}

/// What a LIST asks for: a room is shown when it matches one of `masks`
/// (or none was asked for), none of `excluded`, and every other bound.
#[derive(Debug, Default)]
struct Filter {
    /// Some mask was asked for: a room must match one of `masks`, which may
    /// be empty when every mask asked for was too long to match any room.
    any_mask: bool,
    masks: Vec<Mask>,
    excluded: Vec<Mask>,
    more_than: Option<usize>,
    less_than: Option<usize>,
    created: Vec<Age>,
    topic_set: Vec<Age>,
}

impl Filter {
    /// Reads every comma-separated condition; an empty parameter (irssi
    /// sends `LIST `) adds none, and a bound that is not a number is ignored.
    /// Masks past `max_masks` are ignored, as are repeats; one longer than
    /// `max_name` (the longest room name) can match no room.
    fn parse(
        params: &[String],
        casemapping: Casemapping,
        max_masks: usize,
        max_name: usize,
    ) -> Filter {
        let mut filter = Filter::default();
        let mut seen = HashSet::new();
        for condition in params.iter().flat_map(|param| param.split(',')) {
            if let Some(count) = condition.strip_prefix('>') {
                filter.more_than = count.parse().ok().or(filter.more_than);
            } else if let Some(count) = condition.strip_prefix('<') {
                filter.less_than = count.parse().ok().or(filter.less_than);
            } else if let Some(age) = time_condition(condition, 'C') {
                filter.created.extend(age);
            } else if let Some(age) = time_condition(condition, 'T') {
                filter.topic_set.extend(age);
            } else if !condition.is_empty() {
                if seen.len() == max_masks || !seen.insert(casemapping.fold(condition)) {
                    continue;
                }
                let (negated, pattern) = match condition.strip_prefix('!') {
                    Some(pattern) => (true, pattern),
                    None => (false, condition),
                };
                filter.any_mask |= !negated;
                if pattern.len() > max_name {
                    continue;
                }
                let mask = Mask::new(pattern, casemapping);
                match negated {
                    true => filter.excluded.push(mask),
                    false => filter.masks.push(mask),
                }
            }
        }
        filter
    }

    /// Whether `channel` is shown; `budget` is what is left of
    /// [`MATCH_BUDGET`], and `None` means it ran out before deciding.
    fn accepts(&self, channel: &Channel, now: SystemTime, budget: &mut usize) -> Option<bool> {
        let members = channel.members.len();
        let cheap = self.more_than.is_none_or(|bound| members > bound)
            && self.less_than.is_none_or(|bound| members < bound)
            && self
                .created
                .iter()
                .all(|age| age.accepts(channel.created, now))
            && self.topic_set.iter().all(|age| {
                channel
                    .topic
                    .as_ref()
                    .is_some_and(|topic| age.accepts(topic.set_at, now))
            });
        if !cheap {
            return Some(false);
        }
        let mut matches = |mask: &Mask| mask.matches_within(&channel.name, budget);
        let mut wanted = !self.any_mask;
        for mask in &self.masks {
            if matches(mask)? {
                wanted = true;
                break;
            }
        }
        if !wanted {
            return Some(false);
        }
        for mask in &self.excluded {
            if matches(mask)? {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// The share of the sendq a LIST reply may not take, left for what others
/// say while the client reads it: one eighth.
const SENDQ_HEADROOM_SHIFT: u32 = 3;

/// `LIST [<channel>{,<channel>}] [<elistcond>{,<elistcond>}]`
///
/// 321, one 322 per room shown, 323. Secret and private rooms are shown to
/// their members only (RFC 2811 4.2.6: no way to learn their names from
/// outside) and to operators allowed to see them.
///
/// The whole reply is queued at once, so it must fit in the asker's sendq
/// or the asker would be cut off for asking: past the room left there, the
/// rows stop and 416 says the list was cut short. So do they when the
/// masks cost more than `MATCH_BUDGET`.
pub fn list(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let limits = &state.config.limits;
    let filter = Filter::parse(
        &message.params,
        state.config.server.casemapping,
        limits.max_targets,
        limits.channel_length,
    );
    let sees_secret = state.sees_secret(id);
    let now = state.clock.now();
    let mut budget = MATCH_BUDGET;
    let mut truncated = false;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for channel in state.channels.values() {
        if !channel.visible_to(id, sees_secret) {
            continue;
        }
        match filter.accepts(channel, now, &mut budget) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                truncated = true;
                break;
            }
        }
        let topic = channel
            .topic
            .as_ref()
            .map_or_else(String::new, |topic| topic.text.clone());
        let count = channel.members.len().to_string();
        rows.push((channel.name.clone(), count, topic));
    }
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
            truncated = true;
            break;
        };
        room_left = left;
        state.send(id, line);
    }
    if truncated {
        state.refuse(id, Refusal::new(numeric::ERR_TOOMANYMATCHES, &["LIST"]));
    }
    state.reply(id, numeric::RPL_LISTEND, &[], "End of /LIST");
    Ok(())
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
        Filter::parse(&params, Casemapping::Ascii, 4, 64)
    }

    fn accepts(filter: &Filter, channel: &Channel) -> bool {
        let mut budget = MATCH_BUDGET;
        filter
            .accepts(channel, SystemTime::UNIX_EPOCH, &mut budget)
            .expect("within budget")
    }

    /// The names LIST shows `nick`, without 321 and 323.
    fn listed(harness: &mut Harness, nick: &str, line: &str) -> Vec<String> {
        harness.send(nick, line);
        harness
            .take(nick)
            .iter()
            .filter(|line| line.contains(" 322 "))
            .map(|line| line.split(' ').nth(3).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn no_condition_accepts_everything() {
        assert!(accepts(&filter(&[]), &room("#a", 1)));
        assert!(accepts(&filter(&[""]), &room("#a", 1)));
    }

    #[test]
    fn counts_are_strict_bounds() {
        let f = filter(&[">2,<5"]);
        assert!(!accepts(&f, &room("#a", 2)));
        assert!(accepts(&f, &room("#a", 3)));
        assert!(accepts(&f, &room("#a", 4)));
        assert!(!accepts(&f, &room("#a", 5)));
    }

    #[test]
    fn masks_match_any_and_negations_exclude() {
        let f = filter(&["#RUST*,#go", "!*-offtopic"]);
        assert!(accepts(&f, &room("#rust", 1)));
        assert!(accepts(&f, &room("#go", 1)));
        assert!(!accepts(&f, &room("#rust-offtopic", 1)));
        assert!(!accepts(&f, &room("#python", 1)));
    }

    #[test]
    fn masks_past_targmax_are_ignored_and_repeats_count_once() {
        let f = filter(&["#a,#A,#b,#c,#d,#e"]);
        assert_eq!(f.masks.len(), 4);
        assert!(accepts(&f, &room("#d", 1)));
        assert!(!accepts(&f, &room("#e", 1)));
    }

    #[test]
    fn a_mask_longer_than_any_room_name_matches_nothing() {
        let long = format!("#{}*", "a".repeat(64));
        let f = filter(&[&long]);
        assert!(f.masks.is_empty());
        assert!(!accepts(&f, &room("#a", 1)));
        assert!(accepts(&filter(&[&format!("!{long}")]), &room("#a", 1)));
    }

    #[test]
    fn a_bound_that_is_not_a_number_is_ignored() {
        assert!(accepts(&filter(&[">x"]), &room("#a", 0)));
        assert!(accepts(&filter(&["C<x"]), &room("#a", 0)));
    }

    #[test]
    fn creation_and_topic_times_filter_in_minutes() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.send("alice", "JOIN #old");
        harness.send("alice", "TOPIC #old :first");
        harness.advance(120);
        harness.send("alice", "JOIN #new");
        harness.send("alice", "TOPIC #new :second");
        harness.send("alice", "JOIN #quiet");
        harness.advance(60);
        harness.take("alice");
        assert_eq!(listed(&mut harness, "alice", "LIST C>2"), ["#old"]);
        assert_eq!(
            listed(&mut harness, "alice", "LIST C<2"),
            ["#new", "#quiet"]
        );
        assert!(listed(&mut harness, "alice", "LIST C<0").is_empty());
        assert_eq!(
            listed(&mut harness, "alice", "LIST C>0"),
            ["#new", "#old", "#quiet"]
        );
        assert_eq!(listed(&mut harness, "alice", "LIST T>2"), ["#old"]);
        assert_eq!(listed(&mut harness, "alice", "LIST T<2"), ["#new"]);
        assert_eq!(listed(&mut harness, "alice", "LIST T<10"), ["#new", "#old"]);
        assert_eq!(listed(&mut harness, "alice", "LIST T>0,C<2"), ["#new"]);
    }

    #[test]
    fn private_and_secret_rooms_are_listed_to_members_only() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("eve");
        harness.send("alice", "JOIN #hush");
        harness.send("alice", "JOIN #hide");
        harness.send("alice", "JOIN #open");
        harness.channel_mut("#hush").modes.private = true;
        harness.channel_mut("#hide").modes.secret = true;
        harness.take("alice");
        assert_eq!(listed(&mut harness, "eve", "LIST"), ["#open"]);
        assert!(listed(&mut harness, "eve", "LIST #hush").is_empty());
        assert_eq!(
            listed(&mut harness, "alice", "LIST"),
            ["#hide", "#hush", "#open"]
        );
    }

    #[test]
    fn costly_masks_stop_at_the_budget_with_416() {
        let mut harness = Harness::new();
        harness.register("alice");
        for n in 0..2000 {
            let name = format!("#{}{n:05}", "a".repeat(58));
            let folded = harness.state.fold(&name);
            harness.state.channels.insert(folded, room(&name, 1));
        }
        let mask = format!("*{}b", "a".repeat(60));
        let masks = [0, 1, 2, 3].map(|n| format!("{mask}{n}")).join(",");
        harness.send("alice", &format!("LIST {masks}"));
        let lines = harness.take("alice");
        assert_eq!(
            lines[lines.len() - 2..],
            [
                ":irc.test 416 alice LIST :Output too large, truncated",
                ":irc.test 323 alice :End of /LIST"
            ]
        );
        // A cheap search of the same rooms is answered in full.
        assert_eq!(listed(&mut harness, "alice", "LIST *01999").len(), 1);
    }

    #[test]
    fn ordinary_searches_of_ten_thousand_rooms_are_answered_in_full() {
        let mut harness = Harness::new();
        harness.register("alice");
        for n in 0..10_000 {
            let name = format!("#general-discussion-{n:05}");
            let folded = harness.state.fold(&name);
            harness.state.channels.insert(folded, room(&name, 1));
        }
        for name in ["#rust", "#golang", "#python", "#js-dev"] {
            let folded = harness.state.fold(name);
            harness.state.channels.insert(folded, room(name, 1));
        }
        harness.send("alice", "LIST *rust*,*go*,*py*,*js*");
        let lines = harness.take("alice");
        let shown: Vec<&str> = lines
            .iter()
            .filter(|line| line.contains(" 322 "))
            .filter_map(|line| line.split(' ').nth(3))
            .collect();
        assert_eq!(shown, ["#golang", "#js-dev", "#python", "#rust"]);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(":irc.test 323 alice :End of /LIST")
        );
        assert!(
            lines.iter().all(|line| !line.contains(" 416 ")),
            "{lines:?}"
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
}
