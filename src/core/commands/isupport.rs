//! ISUPPORT (draft/extended-isupport): the 005 lines on request, also
//! before registration for a client with the capability, which may want
//! the server's limits before it picks a nick.

use crate::core::caps::Caps;
use crate::core::isupport::send_isupport;
use crate::core::{ClientId, Refusal, State};
use crate::proto::Message;

/// `ISUPPORT`
///
/// Sends every 005 line again (in a `draft/isupport` batch with `batch`).
pub fn isupport(state: &mut State, id: ClientId, _message: &Message) -> Result<(), Refusal> {
    let allowed = state
        .clients
        .get(&id)
        .is_some_and(|client| client.registered || client.has_cap(Caps::EXTENDED_ISUPPORT));
    if !allowed {
        return Err(Refusal::not_registered());
    }
    send_isupport(state, id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn before_registration_only_with_the_capability() {
        let mut h = Harness::new();
        h.connect("alice");
        h.send("alice", "ISUPPORT");
        assert_eq!(
            h.take("alice"),
            [":irc.test 451 * :You have not registered"]
        );
        h.send("alice", "CAP REQ draft/extended-isupport");
        h.send("alice", "ISUPPORT");
        let lines = h.take("alice");
        assert!(lines[1].starts_with(":irc.test 005 * "), "{lines:?}");
        assert!(
            lines[1..].iter().all(|l| l.contains(" 005 * ")),
            "{lines:?}"
        );
    }

    #[test]
    fn with_batch_every_005_is_in_a_draft_isupport_batch() {
        let mut h = Harness::new();
        h.connect("alice");
        h.send("alice", "CAP REQ :batch draft/extended-isupport");
        h.send("alice", "NICK alice");
        h.send("alice", "USER alice 0 * :alice");
        h.send("alice", "CAP END");
        let welcome = h.take("alice");
        let isupport: Vec<&String> = welcome
            .iter()
            .skip_while(|l| !l.contains(" BATCH +"))
            .take_while(|l| !l.contains(" BATCH -"))
            .collect();
        assert!(isupport[0].ends_with(" draft/isupport"), "{welcome:?}");
        let reference = isupport[0]
            .split('+')
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let tag = format!("@batch={reference} :irc.test 005 alice ");
        assert!(
            isupport[1..].iter().all(|l| l.starts_with(&tag)),
            "{welcome:?}"
        );
        let outside = welcome.iter().filter(|l| l.starts_with(":irc.test 005 "));
        assert_eq!(outside.count(), 0, "{welcome:?}");
        h.send("alice", "ISUPPORT");
        assert_eq!(h.take("alice").len(), isupport.len() + 1);
    }
}
