//! RPL_ISUPPORT (005), generated from the same configuration that enforces
//! the limits, so what is advertised is what is enforced.

use super::extban;
use crate::config::Config;

/// The channel modes, by CHANMODES class: lists, always-argument,
/// argument-when-set, flags.
pub const CHANMODES: &str = "beI,k,l,Cimnpst";
pub const PREFIX: &str = "(ov)@+";
pub const CHANTYPES: &str = "#&";

/// The longest channel key (KEYLEN): the common value, and short enough to type.
pub const KEYLEN: usize = 23;

/// The ELIST conditions LIST understands: creation time, masks, negated
/// masks, topic time, user counts.
pub const ELIST: &str = "CMNTU";

/// The user mode that marks a bot (bot-mode), also its WHO flag.
pub const BOT_MODE: char = 'B';

/// The 005 tokens, in a stable order.
pub fn isupport_tokens(config: &Config) -> Vec<String> {
    let limits = &config.limits;
    let targets = limits.max_targets;
    let mut tokens = vec![
        "AWAYLEN=".to_owned() + &limits.away_length.to_string(),
        format!("BOT={BOT_MODE}"),
        format!("CASEMAPPING={}", config.server.casemapping.name()),
        format!("CHANLIMIT={CHANTYPES}:{}", limits.channels_per_client),
        format!("CHANMODES={CHANMODES}"),
        format!("CHANNELLEN={}", limits.channel_length),
        format!("CHANTYPES={CHANTYPES}"),
    ];
    if config.history.enabled {
        tokens.push(format!("CHATHISTORY={}", config.history.chathistory_max));
    }
    if !config.server.client_tag_deny.is_empty() {
        tokens.push(format!(
            "CLIENTTAGDENY={}",
            config.server.client_tag_deny.join(",")
        ));
    }
    tokens.extend([
        format!("ELIST={ELIST}"),
        "EXCEPTS=e".to_owned(),
        format!("EXTBAN={}", extban::isupport_value()),
        "INVEX=I".to_owned(),
        format!("KEYLEN={KEYLEN}"),
        format!("KICKLEN={}", limits.kick_length),
        // `beI:N` would mean N for the three lists together; the limit is per list.
        format!("MAXLIST=b:{0},e:{0},I:{0}", limits.max_list_entries),
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
        format!("PREFIX={PREFIX}"),
        "SAFELIST".to_owned(),
        "STATUSMSG=@+".to_owned(),
        format!(
            "TARGMAX=JOIN:{targets},KICK:1,LIST:{targets},NAMES:{targets},NOTICE:{targets},PART:{targets},PRIVMSG:{targets},WHOIS:1"
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
