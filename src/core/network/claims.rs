//! Nicks claimed network-wide for this node's users, and taken over
//! from nodes that are gone (`network/claims.rs` does the JetStream side).

use tracing::warn;

use crate::core::{ClientId, Refusal, State};
use crate::network::{Claimed, Holder};
use crate::proto::Folded;
use crate::proto::numeric;

impl State {
    /// Claims `wanted` network-wide for the local client `id`, which waits
    /// for the answer ([`crate::network::Heard::Claimed`]).
    pub(crate) fn claim_nick(
        &mut self,
        id: ClientId,
        wanted: &str,
        folded: &Folded,
        over: Option<u64>,
    ) {
        let Some(network) = &self.network else {
            return;
        };
        network.link.claim(id.0, wanted, folded.as_str(), over);
        self.wait_off_core(id);
    }

    /// Gives up the claim of `id` on the nick `folded`: a local user left
    /// it, or a user of a node that is gone.
    pub(crate) fn release_nick(&self, id: ClientId, folded: &Folded) {
        let (Some(network), Some(client)) = (&self.network, self.clients.get(&id)) else {
            return;
        };
        let holder = match &client.remote {
            None => network.link.holder(id.0),
            Some(remote) => crate::network::Holder {
                node: remote.node.to_string(),
                boot: remote.boot,
                uid: remote.uid,
            },
        };
        network.link.release(folded.as_str(), holder);
    }

    /// The answer to the claim of `id` on `nick`: taken, refused (433, or
    /// 437 when the claims cannot be reached), or held by a node that is
    /// gone, whose claim is then taken over once.
    pub(super) fn nick_claimed(
        &mut self,
        id: ClientId,
        nick: &str,
        over: Option<u64>,
        outcome: Claimed,
    ) {
        let folded = self.fold(nick);
        if !self.clients.contains_key(&id) {
            // The client left while its claim was out.
            if let (Claimed::Granted, Some(network)) = (&outcome, &self.network) {
                network
                    .link
                    .release(folded.as_str(), network.link.holder(id.0));
            }
            return;
        }
        let refusal = match outcome {
            Claimed::Granted => None,
            // Held by this very client (a release of it may be on its way,
            // or gone, or not) or by a holder that is gone: taken over at
            // the revision read, so a release in flight cannot delete it.
            Claimed::Held { holder, revision }
                if over.is_none()
                    && !holder
                        .as_ref()
                        .is_some_and(|h| !self.holds(h, id) && self.holder_alive(h)) =>
            {
                // The create found a claim, which a copy read just after did
                // not show yet (the bucket's copies agree a moment later):
                // someone holds the nick.
                if revision == 0 {
                    Some(Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick]))
                } else {
                    if let Some(network) = &self.network {
                        network
                            .link
                            .claim(id.0, nick, folded.as_str(), Some(revision));
                    }
                    return;
                }
            }
            Claimed::Held { .. } => Some(Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick])),
            Claimed::Failed(reason) => {
                warn!(%reason, "a nick claim failed");
                Some(Refusal::new(numeric::ERR_UNAVAILRESOURCE, &[nick]))
            }
        };
        let nick = nick.to_owned();
        self.resume(id, move |state| match refusal {
            Some(refusal) => state.refuse(id, refusal),
            None => state.nick_granted(id, &nick),
        });
    }

    /// The network granted `nick` to `id`: it takes it, unless a user
    /// shown here took it meanwhile.
    pub(super) fn nick_granted(&mut self, id: ClientId, nick: &str) {
        let folded = self.fold(nick);
        if self.nicks.get(&folded).is_some_and(|&holder| holder != id) {
            self.release_nick_of(id, &folded);
            self.refuse(id, Refusal::new(numeric::ERR_NICKNAMEINUSE, &[nick]));
            return;
        }
        crate::core::commands::registration::take_nick(self, id, nick);
    }

    /// Releases the claim `id` made on `folded` but did not take.
    pub(super) fn release_nick_of(&self, id: ClientId, folded: &Folded) {
        if let Some(network) = &self.network {
            network
                .link
                .release(folded.as_str(), network.link.holder(id.0));
        }
    }

    /// Whether `holder` is the local client `id` itself.
    pub(super) fn holds(&self, holder: &Holder, id: ClientId) -> bool {
        self.network.as_ref().is_some_and(|network| {
            holder.node == network.link.node()
                && holder.boot == network.link.boot()
                && holder.uid == id.0
        })
    }

    /// Whether the claim of `holder` still stands: a user of this node's
    /// present boot who is still here, or any user of a node heard from in
    /// its present boot (it gives up its users' claims itself). A node not
    /// heard from is only taken for gone once this node has listened for a
    /// node timeout.
    pub(super) fn holder_alive(&self, holder: &Holder) -> bool {
        let Some(network) = &self.network else {
            return true;
        };
        if holder.node == network.link.node() {
            return holder.boot == network.link.boot()
                && self.clients.contains_key(&ClientId(holder.uid));
        }
        if let Some(node) = network.nodes.get(holder.node.as_str()) {
            // A newer boot than the one heard is a restart not heard yet.
            return holder.boot >= node.boot;
        }
        let now = self.clock.now();
        now.duration_since(network.joined)
            .is_ok_and(|listened| listened <= network.timeout)
    }
}
