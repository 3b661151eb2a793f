//! WHOX: `WHO <mask> %<fields>[,<token>]` answered with 354 lines holding
//! exactly the fields asked for, in the spec's fixed order.

use bytes::Bytes;

use crate::core::{Client, ClientId, State};
use crate::proto::numeric;

/// The standard fields, in the order 354 carries them. Others are ignored.
const ORDER: &str = "tcuihsnfdlaor";

/// The fields a WHOX request asked for, and its token.
#[derive(Debug, PartialEq, Eq)]
pub struct Fields {
    wanted: String,
    token: String,
}

impl Fields {
    /// Parses what follows the `%`. A token is at most three digits; a
    /// malformed one is returned as `0` rather than echoed.
    pub fn parse(text: &str) -> Fields {
        let (letters, token) = text.split_once(',').unwrap_or((text, "0"));
        let valid =
            !token.is_empty() && token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit());
        Fields {
            wanted: ORDER.chars().filter(|c| letters.contains(*c)).collect(),
            token: if valid { token } else { "0" }.to_owned(),
        }
    }

    /// The 354 line about `client`, seen from room `channel` (`*` for none).
    pub fn reply(
        &self,
        state: &State,
        asker: ClientId,
        client: &Client,
        channel: &str,
        flags: &str,
    ) -> Bytes {
        let mut line = state.numeric_line(asker, numeric::RPL_WHOSPCRPL);
        for field in self.wanted.chars() {
            let idle = || {
                state
                    .clock
                    .now()
                    .duration_since(client.last_active)
                    .map_or(0, |d| d.as_secs())
                    .to_string()
            };
            let value = match field {
                't' => self.token.clone(),
                'c' => channel.to_owned(),
                'u' => client.user.clone(),
                'h' => client.host.clone(),
                // Behind a cloak, the address only for those who may see it.
                'i' => match state.clients.get(&asker) {
                    Some(viewer) if !client.is_cloaked() || client.host_visible_to(viewer) => {
                        client.real_host.clone()
                    }
                    _ => "255.255.255.255".to_owned(),
                },
                's' => state.server_name().to_owned(),
                'n' => client.nick.clone(),
                'f' => flags.to_owned(),
                'd' => "0".to_owned(),
                'l' => idle(),
                // `0` means logged out.
                'a' => client.account.clone().unwrap_or_else(|| "0".to_owned()),
                // Channel op levels are an ircu feature rooms here do not
                // have; ircu itself answers `n/a`.
                'o' => "n/a".to_owned(),
                _ => return line.trailing(&client.realname).finish(),
            };
            line = line.arg(&value);
        }
        line.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::Harness;

    #[test]
    fn fields_come_in_the_spec_order_with_the_token() {
        let fields = Fields::parse("rnct,42");
        assert_eq!(fields.wanted, "tcnr");
        assert_eq!(fields.token, "42");
        assert_eq!(Fields::parse("n,abcd").token, "0");
    }

    #[test]
    fn who_with_fields_answers_354_only() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.room("#room", &[("alice", true), ("bob", false)]);
        h.send("bob", "MODE bob +B");
        h.take("bob");
        h.send("alice", "WHO #room %tcuihsnfdlaor,7");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 354 alice 7 #room ~alice 127.0.0.1 127.0.0.1 irc.test alice H@ 0 0 0 n/a :alice Name",
                ":irc.test 354 alice 7 #room ~bob 127.0.0.1 127.0.0.1 irc.test bob HB 0 0 0 n/a :bob Name",
                ":irc.test 315 alice #room :End of WHO list",
            ]
        );
        h.send("alice", "WHO bob %na");
        assert_eq!(h.take("alice")[0], ":irc.test 354 alice bob 0");
        h.send("alice", "WHO bob %o");
        assert_eq!(h.take("alice")[0], ":irc.test 354 alice n/a");
    }

    #[test]
    fn the_op_level_field_is_answered_before_the_realname() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "WHO alice %nor");
        assert_eq!(
            h.take("alice")[0],
            ":irc.test 354 alice alice n/a :alice Name"
        );
    }

    #[test]
    fn behind_a_cloak_the_address_field_shows_only_to_the_user_itself() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.cloaking.secret = "test key".into();
        let mut h = Harness::with_cloaking(config);
        h.register("alice");
        h.register("bob");
        h.send("alice", "WHO alice %ni");
        assert_eq!(h.take("alice")[0], ":irc.test 354 alice 127.0.0.1 alice");
        h.send("alice", "WHO bob %nih");
        let line = h.take("alice")[0].clone();
        assert!(
            line.starts_with(":irc.test 354 alice 255.255.255.255 ") && line.ends_with(".ip bob"),
            "{line}"
        );
    }
}
