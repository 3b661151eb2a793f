//! RPL_ISUPPORT (005), generated from the same configuration that enforces
//! the limits, so what is advertised is what is enforced.

use crate::config::Config;

/// The channel modes, by CHANMODES class: lists, always-argument,
/// argument-when-set, flags.
pub const CHANMODES: &str = "beI,k,l,imnpst";
pub const PREFIX: &str = "(ov)@+";
pub const CHANTYPES: &str = "#&";

/// The 005 tokens, in a stable order.
pub fn isupport_tokens(config: &Config) -> Vec<String> {
    let limits = &config.limits;
    let targets = limits.max_targets;
    vec![
        "AWAYLEN=".to_owned() + &limits.away_length.to_string(),
        format!("CASEMAPPING={}", config.server.casemapping.name()),
        format!("CHANLIMIT={CHANTYPES}:{}", limits.channels_per_client),
        format!("CHANMODES={CHANMODES}"),
        format!("CHANNELLEN={}", limits.channel_length),
        format!("CHANTYPES={CHANTYPES}"),
        "ELIST=MNU".to_owned(),
        "EXCEPTS=e".to_owned(),
        "INVEX=I".to_owned(),
        format!("KICKLEN={}", limits.kick_length),
        // `beI:N` would mean N for the three lists together; the limit is per list.
        format!("MAXLIST=b:{0},e:{0},I:{0}", limits.max_list_entries),
        format!("MAXTARGETS={targets}"),
        format!("MODES={}", limits.modes_per_command),
        format!("NETWORK={}", config.server.network),
        format!("NICKLEN={}", limits.nick_length),
        format!("PREFIX={PREFIX}"),
        "SAFELIST".to_owned(),
        "STATUSMSG=@+".to_owned(),
        format!(
            "TARGMAX=JOIN:{targets},KICK:1,NAMES:{targets},NOTICE:{targets},PART:{targets},PRIVMSG:{targets},WHOIS:1"
        ),
        format!("TOPICLEN={}", limits.topic_length),
        format!("USERLEN={}", limits.user_length),
    ]
}
