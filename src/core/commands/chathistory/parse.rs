//! A CHATHISTORY request as the client wrote it: the subcommand, its
//! parameters, the limit (cut to `history.chathistory_max`) and the message
//! references (`timestamp=…`, `msgid=…`), or the FAIL that refuses it.

use chrono::DateTime;

use crate::core::State;
use crate::history::Bound;
use crate::proto::Message;

/// A FAIL code, its context and text.
type Fail = (&'static str, Vec<String>, &'static str);

/// The subcommand, its parameters, the limit (cut to the maximum) and the
/// references, or why the request is refused.
pub(super) fn parse(
    state: &State,
    message: &Message,
) -> Result<(String, Vec<String>, usize, Vec<Bound>), Fail> {
    let sub = message.param(0).to_ascii_uppercase();
    let needed = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 3,
        "BETWEEN" => 4,
        "" => return Err(("UNKNOWN_COMMAND", vec!["*".into()], "Unknown command")),
        _ => {
            return Err((
                "UNKNOWN_COMMAND",
                vec![message.param(0).into()],
                "Unknown command",
            ));
        }
    };
    let params = message.params.get(1..).unwrap_or_default();
    if params.len() < needed {
        return Err(("NEED_MORE_PARAMS", vec![sub], "Missing parameters"));
    }
    let limit = &params[needed - 1];
    let Some(limit) = limit.parse::<usize>().ok().filter(|n| *n > 0) else {
        return Err(("INVALID_PARAMS", vec![sub, limit.clone()], "Invalid limit"));
    };
    let limit = limit.min(state.config.history.chathistory_max);
    // The references: after the target, or (TARGETS) two timestamps.
    let references = if sub == "TARGETS" {
        &params[..2]
    } else {
        &params[1..needed - 1]
    };
    let mut bounds = Vec::new();
    for param in references {
        let bound = match reference(param) {
            // LATEST takes `*` for "no reference".
            _ if sub == "LATEST" && param == "*" => continue,
            Some(Bound::MsgId(_)) if sub == "TARGETS" => None,
            other => other,
        };
        let Some(bound) = bound else {
            let context = vec![sub, param.clone()];
            return Err(("INVALID_PARAMS", context, "Invalid message reference"));
        };
        bounds.push(bound);
    }
    Ok((sub, params[..needed - 1].to_vec(), limit, bounds))
}

/// `timestamp=2024-05-01T12:00:00.000Z` or `msgid=…`.
fn reference(param: &str) -> Option<Bound> {
    let (kind, value) = param.split_once('=')?;
    match kind {
        "timestamp" => DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|time| Bound::Time(time.timestamp_millis())),
        "msgid" if !value.is_empty() => Some(Bound::MsgId(value.to_owned())),
        _ => None,
    }
}
