//! KILL: an operator disconnects a user; everyone who shares a room with
//! the user sees `QUIT :Killed (oper (reason))`.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `KILL <nickname> <comment>`
pub fn kill(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let target = message.param(0);
    let folded = state.fold(target);
    let Some(&victim) = state.nicks.get(&folded) else {
        return Err(Refusal::no_such_nick(target));
    };
    let Some(oper) = state.clients.get(&id) else {
        return Ok(());
    };
    let (oper_nick, oper_source) = (oper.nick.clone(), oper.source.clone());
    let reason = match message.param(1) {
        "" => "No reason given",
        reason => reason,
    };
    let victim_nick = state
        .clients
        .get(&victim)
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    tracing::info!(oper = ?oper_nick, victim = ?victim_nick, ?reason, "KILL");
    let quit = format!("Killed ({oper_nick} ({reason}))");
    // A user of another node is disconnected by its node.
    if state.network_kill(victim, &oper_source, reason, &quit) {
        return Ok(());
    }
    let line = Line::new(Some(&oper_source), "KILL")
        .arg(&victim_nick)
        .trailing(reason)
        .finish();
    state.send(victim, line);
    state.disconnect(victim, &quit);
    Ok(())
}

/// Disconnects the local user `victim` for a KILL: it is sent the KILL
/// line from `by`, then leaves with `reason`.
pub fn kill_local(state: &mut State, victim: ClientId, by: &str, comment: &str, reason: &str) {
    let Some(nick) = state.clients.get(&victim).map(|c| c.nick.clone()) else {
        return;
    };
    let line = Line::new(Some(by), "KILL")
        .arg(&nick)
        .trailing(comment)
        .finish();
    state.send(victim, line);
    state.disconnect(victim, reason);
}
