//! OPER: the name and host are checked here; the password hash is checked by
//! the admin worker (argon2 takes milliseconds the core must not spend), and
//! [`checked`] finishes the job when its answer arrives.

use tracing::{info, warn};

use crate::config::Privilege;
use crate::core::admin::AdminRequest;
use crate::core::{ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Line, Message};

pub fn oper(state: &mut State, id: ClientId, message: &Message) {
    let name = message.param(0);
    let now = state.clock.now();
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    if client.oper_pending {
        return;
    }
    let (ip, nick) = (client.ip, client.nick.clone());
    let userhost = format!("{}@{}", client.user, client.host);
    if state.admin.oper_locked(ip, now) {
        warn!(%nick, %ip, oper = name, "OPER refused: too many failed attempts");
        password_incorrect(state, id);
        return;
    }
    let block = state.config.oper.iter().find(|block| block.name == name);
    let host_ok = block.is_some_and(|block| {
        block.hosts.is_empty()
            || block
                .hosts
                .iter()
                .any(|mask| Mask::new(mask, Casemapping::Ascii).matches(&userhost))
    });
    let Some(block) = block.filter(|_| host_ok) else {
        warn!(%nick, %ip, oper = name, "OPER failed: no block for this name and host");
        state.admin.oper_failed(ip, now);
        state.reply(id, numeric::ERR_NOOPERHOST, &[], "No O-lines for your host");
        return;
    };
    let request = AdminRequest::CheckOper {
        id,
        oper: block.name.clone(),
        password: message.param(1).to_owned(),
        hash: block.password_hash.clone(),
    };
    if !state.admin.request(request) {
        password_incorrect(state, id);
        return;
    }
    if let Some(client) = state.clients.get_mut(&id) {
        client.oper_pending = true;
    }
}

/// The admin worker's answer for `id`'s OPER as `oper`.
pub fn checked(state: &mut State, id: ClientId, oper: &str, valid: bool) {
    let now = state.clock.now();
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    client.oper_pending = false;
    let (ip, nick) = (client.ip, client.nick.clone());
    if !valid {
        warn!(%nick, %ip, oper, "OPER failed: wrong password");
        state.admin.oper_failed(ip, now);
        password_incorrect(state, id);
        return;
    }
    // A REHASH may have removed the block while the hash was checked.
    let Some(block) = state.config.oper.iter().find(|block| block.name == oper) else {
        state.reply(id, numeric::ERR_NOOPERHOST, &[], "No O-lines for your host");
        return;
    };
    let privileges = block.privileges.clone();
    state.admin.oper_succeeded(ip);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let newly = !client.modes.oper;
    client.modes.oper = true;
    client
        .outbox
        .set_flood_exempt(privileges.contains(&Privilege::Exempt));
    client.privileges = privileges;
    info!(%nick, %ip, oper, "OPER succeeded");
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
    state.reply(id, numeric::ERR_PASSWDMISMATCH, &[], "Password incorrect");
}
