//! RPL_ISUPPORT (005), generated from the same configuration that enforces
//! the limits, so what is advertised is what is enforced.

use super::caps::Caps;
use super::playback::batch_end;
use super::{ClientId, State, extban};
use crate::config::Config;
use crate::proto::Line;
use crate::proto::modes::{self, ListKind};
use crate::proto::numeric;
use crate::proto::tags::with_tags;
use crate::proto::validate::CHANTYPES;

/// The longest channel key (KEYLEN): the common value, and short enough to type.
pub const KEYLEN: usize = 23;

/// The ELIST conditions LIST understands: creation time, masks, negated
/// masks, topic time, user counts.
pub const ELIST: &str = "CMNTU";

pub use crate::proto::modes::BOT_MODE;

/// The 005 tokens, in a stable order.
pub fn isupport_tokens(config: &Config) -> Vec<String> {
    let limits = &config.limits;
    let targets = limits.max_targets;
    let mut tokens = Vec::new();
    // Without accounts no one is logged in, so an account ban matches no one.
    if config.accounts.enabled && config.history.enabled {
        tokens.push(format!("ACCOUNTEXTBAN={}", extban::account_letters()));
    }
    tokens.extend([
        "AWAYLEN=".to_owned() + &limits.away_length.to_string(),
        format!("BOT={BOT_MODE}"),
        format!("CASEMAPPING={}", config.server.casemapping.name()),
        format!("CHANLIMIT={CHANTYPES}:{}", limits.channels_per_client),
        format!("CHANMODES={}", modes::chanmodes()),
        format!("CHANNELLEN={}", limits.channel_length),
        format!("CHANTYPES={CHANTYPES}"),
    ]);
    if config.history.enabled {
        tokens.push(format!("CHATHISTORY={}", config.history.chathistory_max));
    }
    if !config.server.client_tag_deny.is_empty() {
        tokens.push(format!(
            "CLIENTTAGDENY={}",
            config.server.client_tag_deny.join(",")
        ));
    }
    tokens.push(format!("ELIST={ELIST}"));
    let excepts = modes::list_letter(ListKind::Exceptions);
    tokens.extend(excepts.map(|letter| format!("EXCEPTS={letter}")));
    tokens.push(format!("EXTBAN={}", extban::isupport_value()));
    let invex = modes::list_letter(ListKind::InviteExceptions);
    tokens.extend(invex.map(|letter| format!("INVEX={letter}")));
    // `beI:N` would mean N for the three lists together; the limit is per list.
    let maxlist: Vec<String> = modes::list_letters()
        .map(|letter| format!("{letter}:{}", limits.max_list_entries))
        .collect();
    tokens.extend([
        format!("KEYLEN={KEYLEN}"),
        format!("KICKLEN={}", limits.kick_length),
        format!("MAXLIST={}", maxlist.join(",")),
        format!("MAXTARGETS={targets}"),
        format!("MODES={}", limits.modes_per_command),
        format!("MONITOR={}", limits.max_monitor),
    ]);
    if config.history.enabled {
        tokens.push("MSGREFTYPES=msgid,timestamp".to_owned());
    }
    tokens.extend([
        format!("NAMELEN={}", limits.realname_length),
        format!("NETWORK={}", config.server.network),
        format!("NICKLEN={}", limits.nick_length),
        format!("PREFIX={}", modes::prefix()),
        "SAFELIST".to_owned(),
        format!("STATUSMSG={}", modes::status_symbols()),
        format!(
            "TARGMAX=JOIN:{targets},KICK:{targets},LIST:{targets},NAMES:{targets},NOTICE:{targets},PART:{targets},PRIVMSG:{targets},WHOIS:1"
        ),
        format!("TOPICLEN={}", limits.topic_length),
        format!("USERLEN={}", limits.user_length),
    ]);
    if config.server.utf8_only {
        tokens.push("UTF8ONLY".to_owned());
    }
    tokens.push("WHOX".to_owned());
    tokens
}

/// Is the client-only tag `name` (without `+`) blocked by CLIENTTAGDENY?
/// The last entry that names it (or `*`) decides.
pub fn client_tag_denied(deny: &[String], name: &str) -> bool {
    let mut denied = false;
    for entry in deny {
        if entry == "*" || entry == name {
            denied = true;
        } else if entry.strip_prefix('-') == Some(name) {
            denied = false;
        }
    }
    denied
}

/// The 005 lines, at most 13 tokens each; in a `draft/isupport` batch
/// for a client with both `batch` and draft/extended-isupport, which must
/// see no 005 outside one.
pub fn send_isupport(state: &mut State, id: ClientId) {
    let batched = state.clients.get(&id).is_some_and(|client| {
        client.has_cap(Caps::BATCH) && client.has_cap(Caps::EXTENDED_ISUPPORT)
    });
    let reference = batched.then(|| state.next_batch_id());
    let server = state.server_name().to_owned();
    if let Some(reference) = &reference {
        let start = Line::new(Some(&server), "BATCH")
            .arg(&format!("+{reference}"))
            .arg("draft/isupport")
            .finish();
        state.send(id, start);
    }
    let tokens = state.isupport.clone();
    for chunk in tokens.chunks(13) {
        let mut line = state.numeric_line(id, numeric::RPL_ISUPPORT);
        for token in chunk {
            line = line.arg(token);
        }
        let line = line.trailing("are supported by this server").finish();
        let line = match &reference {
            Some(reference) => with_tags(&format!("batch={reference}"), &line),
            None => line,
        };
        state.send(id, line);
    }
    if let Some(reference) = reference {
        state.send(id, batch_end(&server, &reference));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clienttagdeny_blocks_all_but_the_exempted() {
        let deny = vec!["*".to_owned(), "-reply".to_owned()];
        assert!(client_tag_denied(&deny, "typing"));
        assert!(!client_tag_denied(&deny, "reply"));
        assert!(!client_tag_denied(&[], "typing"));
        assert!(client_tag_denied(&["typing".to_owned()], "typing"));
    }
}
