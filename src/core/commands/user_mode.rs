//! MODE on a nick: +B, +i and +w by the user, -o to drop operator status;
//! +r is the server's (logged in).

use crate::core::Refusal;
use crate::core::client::UserModes;
use crate::core::{ClientId, State};
use crate::proto::modes::{self, ByUser};
use crate::proto::numeric;
use crate::proto::{Line, Message};

/// MODE on a nick: its modes without a mode string, else the changes.
pub fn mode(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let target = message.param(0);
    let folded = state.fold(target);
    match state.registered_client(&folded).map(|client| client.id) {
        None => return Err(Refusal::no_such_nick(target)),
        Some(owner) if owner != id => {
            let text = if message.params.len() > 1 {
                "Can't change mode for other users"
            } else {
                "Can't view modes for other users"
            };
            return Err(Refusal::new(numeric::ERR_USERSDONTMATCH, &[]).with_text(text));
        }
        Some(_) => {}
    }
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    let Some(changes) = message.params.get(1) else {
        let modes = client.modes.to_mode_string();
        let line = state
            .numeric_line(id, numeric::RPL_UMODEIS)
            .arg(&modes)
            .finish();
        state.send(id, line);
        return Ok(());
    };
    let (applied, unknown) = apply(&mut client.modes, changes);
    if !client.modes.oper {
        client.outbox.set_flood_exempt(false);
    }
    let nick = client.nick.clone();
    let source = client.source.clone();
    if unknown {
        state.refuse(id, Refusal::new(numeric::ERR_UMODEUNKNOWNFLAG, &[]));
    }
    if !applied.is_empty() {
        let line = Line::new(Some(&source), "MODE")
            .arg(&nick)
            .arg(&applied)
            .finish();
        state.send(id, line);
        state.network_command(id, "MODE", vec![nick, applied]);
    }
    Ok(())
}

/// Applies what a user may change of `changes` to `set`: the changes
/// that took effect as one mode string (signs only where they change),
/// and whether any letter was unknown.
fn apply(set: &mut UserModes, changes: &str) -> (String, bool) {
    let mut adding = true;
    let mut unknown = false;
    let mut applied = String::new();
    let mut applied_sign = None;
    for letter in changes.chars() {
        if matches!(letter, '+' | '-') {
            adding = letter == '+';
            continue;
        }
        let Some(mode) = modes::user_mode(letter) else {
            unknown = true;
            continue;
        };
        let refused = match mode.by_user {
            ByUser::SetAndUnset => false,
            ByUser::UnsetOnly => adding,
            ByUser::Never => true,
        };
        if refused {
            continue;
        }
        let flag = set.flag_mut(mode.flag);
        if *flag != adding {
            *flag = adding;
            if applied_sign != Some(adding) {
                applied.push(if adding { '+' } else { '-' });
                applied_sign = Some(adding);
            }
            applied.push(letter);
        }
    }
    (applied, unknown)
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;
    use crate::proto::modes::{ByUser, USER_MODES};

    /// Each row of the user mode table is advertised in 004, applied as
    /// its row says and shown in 221.
    #[test]
    fn every_user_mode_round_trips() {
        let mut h = Harness::new();
        let (myinfo, _) = h.welcome("bob");
        for mode in USER_MODES {
            let letter = mode.letter;
            assert!(myinfo[2].contains(letter), "{letter} in 004 {myinfo:?}");
            h.send("bob", &format!("MODE bob +{letter}"));
            let mut echo = h.take("bob");
            if mode.by_user != ByUser::SetAndUnset {
                assert!(echo.is_empty(), "+{letter}: {echo:?}");
                let id = h.id("bob");
                if let Some(client) = h.state.clients.get_mut(&id) {
                    *client.modes.flag_mut(mode.flag) = true;
                }
            } else {
                assert_eq!(
                    echo.remove(0),
                    format!(":bob!~bob@127.0.0.1 MODE bob +{letter}")
                );
            }
            assert!(h.state.clients[&h.id("bob")].modes.flag(mode.flag));
            h.send("bob", "MODE bob");
            assert_eq!(h.take("bob"), [format!(":irc.test 221 bob +{letter}")]);
            h.send("bob", &format!("MODE bob -{letter}"));
            if mode.by_user == ByUser::Never {
                assert!(h.take("bob").is_empty(), "-{letter} is the server's");
                *h.state
                    .clients
                    .get_mut(&h.id("bob"))
                    .unwrap()
                    .modes
                    .flag_mut(mode.flag) = false;
                continue;
            }
            assert_eq!(
                h.take("bob"),
                [format!(":bob!~bob@127.0.0.1 MODE bob -{letter}")]
            );
            assert!(!h.state.clients[&h.id("bob")].modes.flag(mode.flag));
        }
    }
}
