//! What NickServ and ChanServ share: they are not clients but names a
//! line is addressed to, read here into a verb and its arguments.

use crate::core::{ClientId, State};

/// The verb (uppercased) and arguments of a line to a service. `None`, once
/// the client is told with `say`, while accounts are off: only HELP (or an
/// empty line) is answered then.
pub fn words<'a>(
    state: &mut State,
    id: ClientId,
    text: &'a str,
    say: fn(&mut State, ClientId, &str),
) -> Option<(String, Vec<&'a str>)> {
    let mut words = text.split_ascii_whitespace();
    let verb = words.next().unwrap_or_default().to_ascii_uppercase();
    if !state.accounts_enabled() && !matches!(verb.as_str(), "HELP" | "") {
        say(state, id, "Accounts are not enabled on this server.");
        return None;
    }
    Some((verb, words.collect()))
}

/// Whether `target` is the service `nick`, under the casemapping.
pub fn is(state: &State, target: &str, nick: &str) -> bool {
    state.config.server.casemapping.eq(target, nick)
}
