//! K-lines across the network: one an operator sets or lifts on any node
//! reaches every node, which stores it as its own (in its bans file) and
//! disconnects its own users that it bans. A node heard for the first time
//! is sent every K-line in the burst; it takes the lines of the bursts it
//! hears while it is new, so a restarted node learns what was set while it
//! was away, and a line lifted while it was away does not come back to the
//! others from its old bans file.

use std::sync::Arc;

use tracing::{info, warn};

use crate::core::State;
use crate::core::bans::{self, BanKind, BanLine};
use crate::core::commands::kline;
use crate::core::jobs;
use crate::network::wire::{self, Body};

/// K-lines at most a node holds before it stops taking new ones from the
/// others: a peer cannot grow the list without end.
const MAX_KLINES: usize = 10_000;

/// The longest mask taken from a peer: a user name and a host name.
const MAX_MASK: usize = 320;

/// The longest reason taken from a peer; a longer one is cut.
const MAX_REASON: usize = 300;

/// The longest operator name taken from a peer.
const MAX_BY: usize = 64;

/// K-lines per envelope in a burst, so one envelope stays far below
/// NATS's payload limit.
const BURST_CHUNK: usize = 200;

/// Characters of a K-line mask that name nothing in particular.
const VAGUE: &[char] = &['*', '?', '.', ':', '~'];

/// Why a K-line mask is refused, from an operator or a peer alike; `Ok`
/// for a `user@host` glob of printable ASCII, without the separators of a
/// list, that names a user or a host: `*@*` or `*@*.*` would ban everyone
/// on every node, operators included, with no way back in to lift it.
pub(crate) fn check_mask(mask: &str) -> Result<(), &'static str> {
    let (user, host) = well_formed(mask)?;
    let specific = |part: &str| part.chars().filter(|c| !VAGUE.contains(c)).count() >= 2;
    if !specific(user) && !specific(host) {
        return Err("is too broad: name at least two characters of the user or the host");
    }
    Ok(())
}

/// The user and host parts of a `user@host` glob of printable ASCII
/// without commas, broad or not: what an UNKLINE may name.
fn well_formed(mask: &str) -> Result<(&str, &str), &'static str> {
    let Some(parts) = mask.split_once('@') else {
        return Err("is no user@host mask");
    };
    if mask.len() > MAX_MASK || !mask.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err("must be printable ASCII without commas, at most 320 bytes");
    }
    Ok(parts)
}

/// Whether a peer's mask is one this node can store and match
/// ([`check_mask`]).
pub(crate) fn acceptable_mask(mask: &str) -> bool {
    check_mask(mask).is_ok()
}

/// `text` without control characters (they would end or garble a line) and
/// cut to `max` bytes on a character boundary.
fn clean_text(text: &str, max: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max));
    for c in text.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if clean.len() + c.len_utf8() > max {
            break;
        }
        clean.push(c);
    }
    clean
}

impl State {
    /// A local operator set `line` (a K-line): the other nodes apply it
    /// too.
    pub(crate) fn network_kline(&self, line: &BanLine) {
        if self.network.is_some() {
            let kline = self.wire_kline(line);
            self.tell_network(Body::Kline(kline));
        }
    }

    /// A local operator lifted the K-line on `mask`.
    pub(crate) fn network_unkline(&self, mask: &str) {
        if self.network.is_some() {
            let mask = mask.to_owned();
            self.tell_network(Body::Unkline { mask });
        }
    }

    /// A K-line as the others are told of it: with the seconds it has
    /// left, which each node counts on its own clock.
    fn wire_kline(&self, line: &BanLine) -> wire::Kline {
        let now = bans::now_secs(self);
        wire::Kline {
            mask: line.mask.clone(),
            reason: line.reason.clone(),
            by: line.set_by.clone(),
            expires_in: line.expires.map(|at| at.saturating_sub(now)),
        }
    }

    /// Sends every active K-line of this node to `newcomer`, a node heard
    /// for the first time, on its own subject: the others have them.
    pub(super) fn network_burst_klines(&self, newcomer: &str) {
        let now = bans::now_secs(self);
        let lines: Vec<wire::Kline> = self
            .admin
            .bans
            .lines(BanKind::K)
            .iter()
            .filter(|line| line.active(now))
            .map(|line| self.wire_kline(line))
            .collect();
        let Some(network) = &self.network else {
            return;
        };
        let subject = wire::subject::node(newcomer);
        for chunk in lines.chunks(BURST_CHUNK) {
            let lines = chunk.to_vec();
            network.link.publish(&subject, Body::Klines { lines });
        }
    }

    /// The line this node stores for a peer's K-line, checked as an
    /// operator's input is; `None` when the mask is no `user@host` glob.
    fn clean_kline(&self, node: &Arc<str>, kline: wire::Kline) -> Option<BanLine> {
        if !acceptable_mask(&kline.mask) {
            warn!(node = %node, mask = ?kline.mask, "a node sent a K-line mask this node would refuse");
            return None;
        }
        let by_fits = !kline.by.is_empty()
            && kline.by.len() <= MAX_BY
            && kline.by.bytes().all(|b| b.is_ascii_graphic());
        let by = if by_fits { kline.by } else { node.to_string() };
        let reason = match clean_text(&kline.reason, MAX_REASON) {
            reason if reason.trim().is_empty() => "No reason given".to_owned(),
            reason => reason,
        };
        let now = bans::now_secs(self);
        Some(BanLine {
            mask: kline.mask,
            reason,
            set_by: by,
            set_at: now,
            expires: kline.expires_in.map(|left| now.saturating_add(left)),
        })
    }

    /// Whether this node may take one more K-line from a peer, or holds
    /// one on `mask` already (which a new one replaces).
    fn room_for_kline(&self, mask: &str) -> bool {
        let lines = self.admin.bans.lines(BanKind::K);
        lines.len() < MAX_KLINES
            || lines
                .iter()
                .any(|existing| existing.mask.eq_ignore_ascii_case(mask))
    }

    /// An operator of `node` set a K-line: stored here, and this node's
    /// users it bans are disconnected. A line this node holds already, as
    /// it was, changes nothing; the bans file is written at the next tick,
    /// so a stream of lines costs one write a second.
    pub(super) fn remote_kline(&mut self, node: &Arc<str>, kline: wire::Kline) {
        let Some(line) = self.clean_kline(node, kline) else {
            return;
        };
        if self.holds_kline(&line) {
            return;
        }
        if !self.room_for_kline(&line.mask) {
            warn!(node = %node, mask = ?line.mask, "too many K-lines; one from another node was dropped");
            return;
        }
        info!(node = %node, by = ?line.set_by, mask = ?line.mask, reason = ?line.reason, "K-line added by another node");
        kline::store(self, BanKind::K, line.clone());
        jobs::save_bans_later(self);
        kline::refuse_matching_kline(self, &line);
    }

    /// Whether this node holds `line` already: the same mask and reason,
    /// ending within a minute of it (the seconds left were counted on
    /// another clock).
    fn holds_kline(&self, line: &BanLine) -> bool {
        self.admin.bans.lines(BanKind::K).iter().any(|held| {
            held.mask.eq_ignore_ascii_case(&line.mask)
                && held.reason == line.reason
                && match (held.expires, line.expires) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.abs_diff(b) <= 60,
                    _ => false,
                }
        })
    }

    /// An operator of `node` lifted the K-line on `mask`.
    pub(super) fn remote_unkline(&mut self, node: &Arc<str>, mask: &str) {
        if well_formed(mask).is_err() {
            warn!(node = %node, mask = ?mask, "a node sent a K-line mask this node would refuse");
            return;
        }
        if kline::lift(self, BanKind::K, mask) {
            info!(node = %node, ?mask, "K-line removed by another node");
            jobs::save_bans_later(self);
        }
    }

    /// The K-lines of a node's burst: taken while this node is new to the
    /// network (the lines it does not hold yet), ignored afterwards.
    pub(super) fn remote_klines(&mut self, node: &Arc<str>, lines: Vec<wire::Kline>) {
        if !self.network_is_new() {
            return;
        }
        let mut taken = 0usize;
        for kline in lines.into_iter().take(BURST_CHUNK) {
            let Some(line) = self.clean_kline(node, kline) else {
                continue;
            };
            let held = self
                .admin
                .bans
                .lines(BanKind::K)
                .iter()
                .any(|existing| existing.mask.eq_ignore_ascii_case(&line.mask));
            if held || !self.room_for_kline(&line.mask) {
                continue;
            }
            kline::store(self, BanKind::K, line);
            taken += 1;
        }
        if taken > 0 {
            info!(node = %node, lines = taken, "K-lines taken from another node's burst");
            jobs::save_bans_later(self);
            kline::refuse_matching(self, BanKind::K);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::network::Network;
    use crate::core::testing::Harness;
    use crate::network::wire::Envelope;
    use crate::network::{Heard, NetworkHandle};

    /// Puts the harness's node a in a network whose node timeout is 3 s
    /// (after its clients registered: a claim would wait for NATS).
    fn join_network(h: &mut Harness) {
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        let network = Network::new(link, Duration::from_secs(3), now);
        h.state.network = Some(Box::new(network));
    }

    /// Node b says `body`.
    fn from_b(h: &mut Harness, body: Body) {
        let node = "b".to_owned();
        let envelope = Envelope {
            node,
            boot: 1,
            seq: None,
            after: 0,
            body,
        };
        h.state.network_heard(Heard::Envelope(Box::new(envelope)));
    }

    fn kline(mask: &str, reason: &str) -> wire::Kline {
        wire::Kline {
            mask: mask.into(),
            reason: reason.into(),
            by: "root".into(),
            expires_in: Some(60),
        }
    }

    fn masks(h: &Harness) -> Vec<String> {
        let lines = h.state.admin.bans.lines(BanKind::K);
        lines.iter().map(|line| line.mask.clone()).collect()
    }

    #[test]
    fn a_peers_kline_bans_local_users_and_a_bad_mask_is_dropped() {
        let mut h = Harness::new();
        h.register("evil");
        h.register("alice");
        join_network(&mut h);
        from_b(&mut h, Body::Kline(kline("*evil@*\r\nQUIT", "x")));
        from_b(&mut h, Body::Kline(kline("evil", "x")));
        assert!(masks(&h).is_empty());

        from_b(&mut h, Body::Kline(kline("*evil@*", "spam\r\nming")));
        assert_eq!(masks(&h), ["*evil@*"]);
        let line = &h.state.admin.bans.lines(BanKind::K)[0];
        let now = bans::now_secs(&h.state);
        assert_eq!((line.set_at, line.expires), (now, Some(now + 60)));
        let evil = h.take("evil");
        assert_eq!(
            evil.first().map(String::as_str),
            Some(":irc.test 465 evil :You are banned from this server: spam  ming")
        );
        assert!(!h.state.clients.contains_key(&h.id("evil")));
        assert!(h.state.clients.contains_key(&h.id("alice")));

        from_b(
            &mut h,
            Body::Unkline {
                mask: "*EVIL@*".into(),
            },
        );
        assert!(masks(&h).is_empty());
    }

    #[test]
    fn masks_that_would_ban_everyone_are_refused_from_peers_and_operators() {
        let mut h = Harness::new();
        h.register("alice");
        h.make_oper("alice");
        let id = h.id("alice");
        if let Some(alice) = h.state.clients.get_mut(&id) {
            alice.privileges = vec![crate::config::Privilege::Kline];
        }
        join_network(&mut h);
        for mask in ["*@*", "*@*.*", "?@*:*", "*~@1*"] {
            from_b(&mut h, Body::Kline(kline(mask, "everyone")));
            h.send("alice", &format!("KLINE {mask} :everyone"));
            let answer = h.take("alice");
            assert!(answer[0].contains("is too broad"), "{mask}: {answer:?}");
        }
        assert!(masks(&h).is_empty());
        assert!(h.state.clients.contains_key(&h.id("alice")));
        // Two characters of a user or a host name are enough.
        assert_eq!(check_mask("~bob@*"), Ok(()));
        assert_eq!(check_mask("*@10.*"), Ok(()));
        // Lifting needs no breadth: a broad line from elsewhere can go.
        assert!(well_formed("*@*").is_ok());
    }

    #[test]
    fn a_repeated_peer_kline_changes_nothing_and_files_are_written_once_a_tick() {
        let mut h = Harness::new();
        join_network(&mut h);
        from_b(&mut h, Body::Kline(kline("*spam@*", "spam")));
        assert!(h.state.admin.bans_unsaved);
        h.state.handle(crate::core::Event::Tick);
        assert!(!h.state.admin.bans_unsaved);
        // The same line again, its seconds left counted a little later.
        let mut again = kline("*spam@*", "spam");
        again.expires_in = Some(58);
        from_b(&mut h, Body::Kline(again));
        assert!(!h.state.admin.bans_unsaved);
        assert_eq!(masks(&h), ["*spam@*"]);
        // A changed reason is a change.
        from_b(&mut h, Body::Kline(kline("*spam@*", "more spam")));
        assert!(h.state.admin.bans_unsaved);
        assert_eq!(h.state.admin.bans.lines(BanKind::K)[0].reason, "more spam");
    }

    #[test]
    fn burst_klines_are_taken_only_while_this_node_is_new() {
        let mut h = Harness::new();
        join_network(&mut h);
        let lines = vec![kline("*ab@*", "x"), kline("bad", "x")];
        from_b(&mut h, Body::Klines { lines });
        assert_eq!(masks(&h), ["*ab@*"]);
        h.advance(30);
        from_b(
            &mut h,
            Body::Klines {
                lines: vec![kline("*bc@*", "x")],
            },
        );
        assert_eq!(masks(&h), ["*ab@*"]);
        // A K-line set on another node still holds.
        from_b(&mut h, Body::Kline(kline("*cd@*", "x")));
        assert_eq!(masks(&h), ["*ab@*", "*cd@*"]);
    }

    #[test]
    fn a_peers_mask_must_be_a_user_at_host_glob() {
        for good in ["*evil@*", "~bob@10.0.0.*", "*@2001:db8::1"] {
            assert!(acceptable_mask(good), "{good}");
        }
        let long = format!("*@{}", "x".repeat(MAX_MASK));
        for bad in ["", "evil", "a b@c", "a@b\r\n", "a@b,c@d", long.as_str()] {
            assert!(!acceptable_mask(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_peers_text_loses_control_characters_and_is_cut_on_a_character() {
        assert_eq!(clean_text("a\r\nb\0c", 10), "a  b c");
        assert_eq!(clean_text("ééé", 5), "éé");
    }
}
