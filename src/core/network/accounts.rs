//! Accounts across the nodes: a user's login or logout after its
//! introduction, and, where the accounts are one across the network (in
//! the shared PostgreSQL database), the account changes each node caches
//! the effect of: which account owns which nick (for nick reservation)
//! and which accounts may stay logged in.
//!
//! What a peer says is input: an account name that this node would not
//! accept as one is dropped with a warning, as `remote.rs` drops a nick.

use std::sync::Arc;

use tracing::{info, warn};

use super::super::{ClientId, State};
use crate::accounts::read_markers::MAX_TARGET_LEN;
use crate::accounts::store::MAX_NAME_LEN;
use crate::config::HistoryBackend;
use crate::network::wire::{AccountChange, Body};
use crate::proto::validate::is_valid_nick;

/// How far past this node's clock a peer's time may be: the day
/// `plausible_time` allows a message's time.
const PEER_CLOCK_SKEW_MS: i64 = 24 * 60 * 60 * 1000;

impl State {
    /// Whether this node's accounts are the network's (kept in the shared
    /// database), so that an account change on one node holds on all.
    pub(crate) fn accounts_shared(&self) -> bool {
        let history = &self.config.history;
        history.enabled && history.backend == HistoryBackend::Postgres
    }

    /// A registered local user logged in or out: the other nodes show it.
    /// (One not registered yet is introduced with its account.)
    pub(crate) fn network_login(&self, id: ClientId) {
        if self.network.is_none() || !self.is_local(id) {
            return;
        }
        let Some(client) = self.clients.get(&id).filter(|client| client.registered) else {
            return;
        };
        let account = client.account.clone();
        self.tell_network(Body::Login { uid: id.0, account });
    }

    /// An account change made here, for the other nodes' caches; nothing
    /// when each node has accounts of its own.
    pub(crate) fn network_account(&self, change: AccountChange) {
        if self.network.is_some() && self.accounts_shared() && !self.hearing_peer {
            self.tell_network(Body::Account(change));
        }
    }

    /// A user of `node` logged in or out.
    pub(super) fn remote_login(&mut self, node: &Arc<str>, uid: u64, account: Option<String>) {
        let Some(id) = self.remote_id(node, uid) else {
            return;
        };
        if let Some(name) = &account
            && !self.acceptable_account(name)
        {
            warn!(node = %node, account = ?name, "a node sent a login to an account name this node would refuse");
            return;
        }
        match account {
            Some(account) => self.remote_logged_in(id, account),
            None => self.remote_logged_out(id),
        }
    }

    fn remote_logged_in(&mut self, id: ClientId, account: String) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.account.as_deref() == Some(account.as_str()) {
            return;
        }
        client.account = Some(account);
        client.modes.registered = true;
        self.notify_account(id);
    }

    fn remote_logged_out(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.account.take().is_none() {
            return;
        }
        client.modes.registered = false;
        self.notify_account(id);
    }

    /// An account change another node made, applied to this node's caches
    /// when the accounts are shared (otherwise the name is another node's
    /// own account, unknown here).
    pub(super) fn remote_account(&mut self, node: &Arc<str>, change: AccountChange) {
        if !self.accounts_shared() {
            return;
        }
        let account = match &change {
            AccountChange::Created { account }
            | AccountChange::Dropped { account }
            | AccountChange::Suspended { account }
            | AccountChange::Enforce { account, .. }
            | AccountChange::ReadMarker { account, .. } => account.clone(),
        };
        if !self.acceptable_account(&account) {
            warn!(node = %node, account = ?account, "a node sent a change to an account name this node would refuse");
            return;
        }
        if !matches!(change, AccountChange::ReadMarker { .. }) {
            info!(node = %node, ?change, "account changed on another node");
        }
        let casemapping = self.config.server.casemapping;
        match change {
            AccountChange::Created { .. } => {
                let nick = self.fold(&account);
                self.reservations.add(nick, &account);
            }
            AccountChange::Dropped { .. } => {
                self.reservations.remove_account(&account, casemapping);
                self.log_out_local(&account);
                // Its rooms and markers went with it from the database.
                self.forget_rooms_of(&account);
                let key = self.fold(&account);
                self.read_markers.forget(&key);
            }
            AccountChange::Suspended { .. } => self.log_out_local(&account),
            AccountChange::Enforce { on, .. } => {
                self.reservations.set_enforce(&account, on, casemapping);
            }
            AccountChange::ReadMarker {
                target, read_ms, ..
            } => self.remote_read_marker(&account, &target, read_ms),
        }
    }

    /// Another node moved an account's marker: it holds here too, and this
    /// node's connections of the account are told. The target is checked
    /// as a stored one is; a marker never moves back, nor past this node's
    /// clock by more than the skew a peer's message time may have. Only an
    /// account this node holds markers of or has a session of is kept: an
    /// account name is a peer's input, and must not grow the map.
    fn remote_read_marker(&mut self, account: &str, target: &str, read_ms: i64) {
        let valid = !target.is_empty()
            && target.len() <= MAX_TARGET_LEN
            && !target.contains([' ', '\0', '\r', '\n'])
            && read_ms >= 0;
        if !valid {
            warn!(account, target = ?target, "a node sent a read marker this node would refuse");
            return;
        }
        let (account_key, target_key) = (self.fold(account), self.fold(target));
        if !self.read_markers.holds(&account_key) && !self.has_local_session(account) {
            return;
        }
        let latest = crate::history::millis(self.clock.now()).saturating_add(PEER_CLOCK_SKEW_MS);
        let read_ms = read_ms.min(latest);
        let (_, moved) = self
            .read_markers
            .advance(account_key, target_key, target, read_ms);
        if moved {
            self.tell_read_marker(account, target, read_ms);
        }
    }

    /// Whether a user of this node is logged in to `account`.
    fn has_local_session(&self, account: &str) -> bool {
        let casemapping = self.config.server.casemapping;
        self.clients.values().any(|client| {
            client.remote.is_none()
                && client
                    .account
                    .as_deref()
                    .is_some_and(|theirs| casemapping.eq(theirs, account))
        })
    }

    /// Logs this node's users of `account` out, and ends a SCRAM exchange
    /// waiting to log in to it. Users of other nodes are logged out by
    /// their own node, which says so with a Login.
    fn log_out_local(&mut self, account: &str) {
        self.log_out_account(account);
    }

    /// Whether `name` could be an account here: a valid nick within the
    /// accounts' length.
    pub(super) fn acceptable_account(&self, name: &str) -> bool {
        let max = self.config.limits.nick_length.min(MAX_NAME_LEN);
        is_valid_nick(name, max)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Network;
    use crate::core::testing::Harness;
    use crate::network::wire::{self, AccountChange, Body, Envelope};
    use crate::network::{Heard, NetworkHandle};

    fn join_network(h: &mut Harness) {
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        let network = Network::new(link, Duration::from_secs(3), now);
        h.state.network = Some(Box::new(network));
    }

    fn from_b(h: &mut Harness, body: Body) {
        let envelope = Envelope {
            node: "b".to_owned(),
            boot: 1,
            seq: None,
            after: 0,
            body,
        };
        h.state.network_heard(Heard::Envelope(Box::new(envelope)));
    }

    fn bob_on_b() -> wire::User {
        wire::User {
            uid: 7,
            server: "b.test".into(),
            nick: "bob".into(),
            user: "~bob".into(),
            host: "b.example".into(),
            realname: "Bob".into(),
            account: None,
            away: None,
            bot: false,
            invisible: false,
            rooms: Vec::new(),
        }
    }

    fn shared(h: &mut Harness) {
        let mut config = (*h.state.config).clone();
        config.history.enabled = true;
        config.history.backend = crate::config::HistoryBackend::Postgres;
        h.state.config = std::sync::Arc::new(config);
    }

    #[test]
    fn a_peers_login_shows_on_its_user_and_a_bad_name_is_dropped() {
        let mut h = Harness::new();
        h.register("alice");
        join_network(&mut h);
        from_b(&mut h, Body::User(bob_on_b()));
        let bob = h.state.nicks[&h.state.fold("bob")];
        from_b(
            &mut h,
            Body::Login {
                uid: 7,
                account: Some("bad name".into()),
            },
        );
        assert_eq!(h.state.clients[&bob].account, None);
        from_b(
            &mut h,
            Body::Login {
                uid: 7,
                account: Some("Bob".into()),
            },
        );
        assert_eq!(h.state.clients[&bob].account.as_deref(), Some("Bob"));
        assert!(h.state.clients[&bob].modes.registered);
        from_b(
            &mut h,
            Body::Login {
                uid: 7,
                account: None,
            },
        );
        assert_eq!(h.state.clients[&bob].account, None);
    }

    #[test]
    fn an_introduced_users_bad_account_name_is_dropped() {
        let mut h = Harness::new();
        join_network(&mut h);
        let mut bob = bob_on_b();
        bob.account = Some("bad name".into());
        from_b(&mut h, Body::User(bob));
        let id = h.state.nicks[&h.state.fold("bob")];
        assert_eq!(h.state.clients[&id].account, None);
        assert!(!h.state.clients[&id].modes.registered);
        let mut carol = bob_on_b();
        carol.uid = 8;
        carol.nick = "carol".into();
        carol.account = Some("Carol".into());
        from_b(&mut h, Body::User(carol));
        let id = h.state.nicks[&h.state.fold("carol")];
        assert_eq!(h.state.clients[&id].account.as_deref(), Some("Carol"));
    }

    #[test]
    fn an_account_suspended_or_dropped_here_is_logged_out_of_this_nodes_users_only() {
        let mut h = Harness::new();
        h.register("carol");
        join_network(&mut h);
        shared(&mut h);
        let carol = h.id("carol");
        h.state.log_in(carol, "Carol");
        let mut remote = bob_on_b();
        remote.account = Some("Carol".into());
        from_b(&mut h, Body::User(remote));
        let bob = h.state.nicks[&h.state.fold("bob")];
        assert_eq!(h.state.log_out_account("carol"), vec![carol]);
        assert_eq!(h.state.clients[&carol].account, None);
        // Its own node hears the change, logs it out and says so.
        assert_eq!(h.state.clients[&bob].account.as_deref(), Some("Carol"));
    }

    #[test]
    fn a_peers_account_keys_its_users_conversations_only_when_accounts_are_shared() {
        use crate::core::history_access::party;
        use crate::history::Party;
        let mut h = Harness::new();
        join_network(&mut h);
        let mut remote = bob_on_b();
        remote.account = Some("Carol".into());
        from_b(&mut h, Body::User(remote));
        let bob = h.state.nicks[&h.state.fold("bob")];
        let side = |h: &Harness| party(&h.state, &h.state.clients[&bob]);
        // Node b's Carol is not this node's: keyed by the nick it holds.
        assert_eq!(side(&h), Party::Nick(h.state.fold("bob")));
        shared(&mut h);
        assert_eq!(side(&h), Party::Account(h.state.fold("carol")));
    }

    fn marker(account: &str, read_ms: i64) -> Body {
        Body::Account(AccountChange::ReadMarker {
            account: account.into(),
            target: "#garden".into(),
            read_ms,
        })
    }

    #[test]
    fn a_peers_read_marker_is_kept_only_for_an_account_with_a_session_here_and_not_in_the_future() {
        let mut h = Harness::new();
        h.register("carol");
        join_network(&mut h);
        shared(&mut h);
        from_b(&mut h, marker("Ghost", 1_000));
        assert!(!h.state.read_markers.holds(&h.state.fold("ghost")));

        let carol = h.id("carol");
        h.state.log_in(carol, "Carol");
        from_b(&mut h, marker("carol", i64::MAX / 2));
        let now = crate::history::millis(h.state.clock.now());
        let read = h.state.read_marker(carol, "#Garden");
        assert_eq!(read, Some(now + 24 * 60 * 60 * 1000));
    }

    #[test]
    fn a_peers_new_account_reserves_its_nick_only_when_accounts_are_shared() {
        let mut h = Harness::new();
        join_network(&mut h);
        let created = || {
            Body::Account(AccountChange::Created {
                account: "Carol".into(),
            })
        };
        from_b(&mut h, created());
        assert!(h.state.reservations.owner(&h.state.fold("carol")).is_none());

        shared(&mut h);
        from_b(&mut h, created());
        let owner = h.state.reservations.owner(&h.state.fold("carol"));
        assert_eq!(owner.map(|owner| owner.account.as_str()), Some("Carol"));
        from_b(
            &mut h,
            Body::Account(AccountChange::Enforce {
                account: "carol".into(),
                on: true,
            }),
        );
        assert!(
            h.state
                .reservations
                .owner(&h.state.fold("carol"))
                .unwrap()
                .enforce
        );
        from_b(
            &mut h,
            Body::Account(AccountChange::Dropped {
                account: "carol".into(),
            }),
        );
        assert!(h.state.reservations.owner(&h.state.fold("carol")).is_none());
    }

    #[test]
    fn a_peers_suspension_logs_out_this_nodes_users_of_the_account_only() {
        let mut h = Harness::new();
        h.register("carol");
        join_network(&mut h);
        shared(&mut h);
        let carol = h.id("carol");
        h.state.log_in(carol, "Carol");
        let mut remote = bob_on_b();
        remote.account = Some("Carol".into());
        from_b(&mut h, Body::User(remote));
        let bob = h.state.nicks[&h.state.fold("bob")];
        from_b(
            &mut h,
            Body::Account(AccountChange::Suspended {
                account: "carol".into(),
            }),
        );
        assert_eq!(h.state.clients[&carol].account, None);
        // Its own node logs it out, and says so.
        assert_eq!(h.state.clients[&bob].account.as_deref(), Some("Carol"));
    }
}
