//! METADATA (IRCv3 `draft/metadata-3`): a user's and a room's keys
//! (`keys.rs`: GET, LIST, SYNC, SET, CLEAR) and a connection's
//! subscriptions (`subs.rs`: SUB, UNSUB, SUBS). What the core keeps, and
//! who may read or change it, is `core/metadata.rs`. Every failure is a
//! `FAIL METADATA <code>` the spec names.

mod keys;
mod subs;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::core::metadata::Target;
use crate::core::{ClientId, Refusal, State};
use crate::proto::{Line, Message, numeric};

/// `METADATA <target> <subcommand> [<param> ...]`
///
/// IRCv3 metadata: read, change or subscribe to users' and rooms' keys.
/// Before registration only the client's own keys (`*`) and its
/// subscriptions (the cap value's `before-connect`).
pub fn metadata(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if !state.config.metadata.enabled {
        // As a server without metadata answers.
        return Err(Refusal::new(numeric::ERR_UNKNOWNCOMMAND, &["METADATA"]));
    }
    let name = message.param(0);
    let sub = message.param(1).to_ascii_uppercase();
    let params = message.params.get(2..).unwrap_or_default();
    match sub.as_str() {
        "SUB" => subs::sub(state, id, params),
        "UNSUB" => subs::unsub(state, id, params),
        "SUBS" => subs::subs(state, id),
        "GET" | "LIST" | "SYNC" | "SET" | "CLEAR" => {
            let registered = state.clients.get(&id).is_some_and(|c| c.registered);
            if !registered && name != "*" {
                let text = "Only your own metadata before registration";
                fail(state, id, "KEY_NO_PERMISSION", &[name, "*"], text);
                return Ok(());
            }
            let Some(target) = state.metadata_target(id, name) else {
                fail(
                    state,
                    id,
                    "INVALID_TARGET",
                    &[name],
                    "Invalid metadata target",
                );
                return Ok(());
            };
            on_target(state, id, &sub, &target, params, message.invalid_utf8)
        }
        _ => {
            fail(
                state,
                id,
                "INVALID_SUBCOMMAND",
                &[&sub],
                "Invalid subcommand",
            );
            Ok(())
        }
    }
}

fn on_target(
    state: &mut State,
    id: ClientId,
    sub: &str,
    target: &Target,
    params: &[String],
    invalid_utf8: bool,
) -> Result<(), Refusal> {
    match sub {
        "GET" => keys::get(state, id, target, params),
        "LIST" => keys::list(state, id, target),
        "SYNC" => keys::sync(state, id, target),
        "SET" => keys::set(state, id, target, params, invalid_utf8),
        _ => keys::clear(state, id, target),
    }
}

/// Sends `FAIL METADATA <code> <context...> :<text>`.
fn fail(state: &mut State, id: ClientId, code: &str, context: &[&str], text: &str) {
    state.fail(id, "METADATA", code, context, text);
}

/// `FAIL METADATA <code> <context...> :<text>` as a line, for a failure
/// inside a batch.
fn fail_line(state: &State, code: &str, context: &[&str], text: &str) -> Bytes {
    let mut line = Line::new(Some(state.server_name()), "FAIL")
        .arg("METADATA")
        .arg(code);
    for arg in context {
        line = line.arg(crate::proto::serialize::echo_param(arg));
    }
    line.trailing(text).finish()
}
