//! OPER: the name and host are checked here; the password hash is checked by
//! the admin worker (argon2 takes milliseconds the core must not spend), and
//! [`checked`] finishes the job when its answer arrives. Meanwhile the
//! client's later lines wait ([`State::wait_off_core`]), so its commands are
//! answered in the order it sent them. Every attempt counts towards the
//! address's lockout from the moment it starts.

use tracing::{info, warn};

use crate::config::Privilege;
use crate::core::{AdminRequest, OperAnswer, Refusal};
use crate::core::{ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Line, Message};

/// `OPER <name> <password>`
///
/// The password is checked off the core; the answer comes in `checked`.
pub fn oper(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let name = message.param(0);
    let now = state.clock.now();
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    let (ip, nick) = (client.ip, client.nick.clone());
    // An operator's hosts name real addresses (or cloaks).
    let userhosts = [
        format!("{}@{}", client.user, client.real_host),
        format!("{}@{}", client.user, client.host),
    ];
    let key = state.address_key(ip);
    if !state.admin.oper_lockout.start_attempt(key, now) {
        warn!(?nick, %ip, oper = ?name, "OPER refused: too many failed attempts");
        password_incorrect(state, id);
        return Ok(());
    }
    let block = state.config.oper.iter().find(|block| block.name == name);
    let host_ok = block.is_some_and(|block| {
        block.hosts.is_empty()
            || block.hosts.iter().any(|mask| {
                let mask = Mask::new(mask, Casemapping::Ascii);
                userhosts.iter().any(|userhost| mask.matches(userhost))
            })
    });
    let Some(block) = block.filter(|_| host_ok) else {
        warn!(?nick, %ip, oper = ?name, "OPER failed: no block for this name and host");
        return Err(Refusal::no_oper_host());
    };
    let answer = OperAnswer::new(id, block.name.clone(), state.inbox.clone());
    let request = AdminRequest::CheckOper {
        answer,
        password: message.param(1).to_owned(),
        hash: block.password_hash.clone(),
    };
    if !state.admin.request(request) {
        password_incorrect(state, id);
        return Ok(());
    }
    state.wait_off_core(id);
    Ok(())
}

/// The admin worker's answer for `id`'s OPER as `oper`.
pub fn checked(state: &mut State, id: ClientId, oper: &str, valid: bool) {
    state.resume(id, |state| answer(state, id, oper, valid));
}

fn answer(state: &mut State, id: ClientId, oper: &str, valid: bool) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let (ip, nick) = (client.ip, client.nick.clone());
    if !valid {
        warn!(?nick, %ip, oper, "OPER failed: wrong password");
        password_incorrect(state, id);
        return;
    }
    // A REHASH may have removed the block while the hash was checked.
    let Some(block) = state.config.oper.iter().find(|block| block.name == oper) else {
        state.refuse(id, Refusal::no_oper_host());
        return;
    };
    let privileges = block.privileges.clone();
    let key = state.address_key(ip);
    state.admin.oper_lockout.succeeded(&key);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let newly = !client.modes.oper;
    client.modes.oper = true;
    client
        .outbox
        .set_flood_exempt(privileges.contains(&Privilege::Exempt));
    client.privileges = privileges;
    info!(?nick, %ip, oper, "OPER succeeded");
    if newly {
        let line = Line::new(Some(&client.source), "MODE")
            .arg(&nick)
            .arg("+o")
            .finish();
        state.send(id, line);
    }
    state.reply(
        id,
        numeric::RPL_YOUREOPER,
        &[],
        "You are now an IRC operator",
    );
}

fn password_incorrect(state: &mut State, id: ClientId) {
    state.refuse(id, Refusal::password_mismatch());
}
