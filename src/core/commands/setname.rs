//! SETNAME (the setname capability): change one's real name. Peers and
//! extended-monitor watchers with the capability are told, and so is the
//! sender when it has it; without it the change happens silently.

use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `SETNAME <realname>`
///
/// IRCv3 setname: changes the real name; room-mates that negotiated setname are told.
pub fn setname(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let realname = message.param(0);
    // NAMELEN in 005: a longer name is refused, not cut, so the user knows.
    if realname.is_empty() || realname.len() > state.config.limits.realname_length {
        state.fail(
            id,
            "SETNAME",
            "INVALID_REALNAME",
            &[],
            "Realname is not valid",
        );
        return Ok(());
    }
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    client.realname = realname.to_owned();
    let line = Line::new(Some(&client.source), "SETNAME")
        .trailing(realname)
        .finish();
    let own = client.caps.contains(Caps::SETNAME);
    let mut audience = state.audience(id, Caps::SETNAME);
    if own {
        audience.insert(id);
    }
    let mut event = state.event_from(id, line);
    state.send_all(audience, &mut event);
    state.network_command(id, "SETNAME", vec![realname.to_owned()]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::caps::Caps;
    use crate::core::testing::Harness;

    #[test]
    fn setname_changes_the_real_name_and_tells_those_who_asked() {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "carol"] {
            h.register(nick);
        }
        h.room(
            "#room",
            &[("alice", true), ("bob", false), ("carol", false)],
        );
        for nick in ["alice", "bob"] {
            let id = h.id(nick);
            h.state
                .clients
                .get_mut(&id)
                .unwrap()
                .caps
                .insert(Caps::SETNAME);
        }
        h.send("alice", "SETNAME :Alice Liddell");
        let line = ":alice!~alice@127.0.0.1 SETNAME :Alice Liddell";
        assert_eq!(h.take("alice"), [line]);
        assert_eq!(h.take("bob"), [line]);
        assert!(h.take("carol").is_empty());
        assert_eq!(h.state.clients[&h.id("alice")].realname, "Alice Liddell");
    }

    #[test]
    fn a_name_over_namelen_fails_and_changes_nothing() {
        let mut h = Harness::new();
        h.register("alice");
        let long = "x".repeat(h.state.config.limits.realname_length + 1);
        h.send("alice", &format!("SETNAME :{long}"));
        assert_eq!(
            h.take("alice"),
            [":irc.test FAIL SETNAME INVALID_REALNAME :Realname is not valid"]
        );
        assert_eq!(h.state.clients[&h.id("alice")].realname, "alice Name");
    }
}
