//! Numeric replies, declared once. Names follow irc-proto's `Response` where
//! it has the numeric; the rest are declared here with their Modern IRC names.

use irc_proto::Response;

/// A numeric reply code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric(u16);

impl Numeric {
    /// Writes the code zero-padded to three digits.
    pub fn as_str(self) -> [u8; 3] {
        [
            b'0' + (self.0 / 100) as u8,
            b'0' + (self.0 / 10 % 10) as u8,
            b'0' + (self.0 % 10) as u8,
        ]
    }

    /// The text an error is sent with, written here once for every error
    /// the server sends (the wording of Modern IRC, where it has one).
    /// `None` for errors whose text depends on the case: their one caller
    /// writes it.
    pub const fn text(self) -> Option<&'static str> {
        Some(match self {
            ERR_NOSUCHNICK => "No such nick/channel",
            ERR_NICKLOCKED => "SASL authentication failed: the account is suspended",
            ERR_SASLFAIL => "SASL authentication failed",
            ERR_SASLTOOLONG => "SASL message too long",
            ERR_SASLABORTED => "SASL authentication aborted",
            ERR_SASLALREADY => "You have already authenticated using SASL",
            ERR_NOSUCHSERVER => "No such server",
            ERR_NOSUCHCHANNEL => "No such channel",
            ERR_CANNOTSENDTOCHAN => "Cannot send to channel",
            ERR_TOOMANYCHANNELS => "You have joined too many channels",
            ERR_WASNOSUCHNICK => "There was no such nickname",
            ERR_TOOMANYTARGETS => "Too many targets",
            ERR_INVALIDCAPCMD => "Invalid CAP command",
            ERR_NOTEXTTOSEND => "No text to send",
            ERR_TOOMANYMATCHES => "Output too large, truncated",
            ERR_INPUTTOOLONG => "Input line was too long",
            ERR_UNKNOWNCOMMAND => "Unknown command",
            ERR_NOMOTD => "MOTD File is missing",
            ERR_NONICKNAMEGIVEN => "No nickname given",
            ERR_ERRONEOUSNICKNAME => "Erroneous nickname",
            ERR_NICKNAMEINUSE => "Nickname is already in use",
            ERR_UNAVAILRESOURCE => "Nick/channel is temporarily unavailable",
            ERR_BANNICKCHANGE => "Cannot change nickname while banned on channel",
            ERR_USERNOTINCHANNEL => "They aren't on that channel",
            ERR_NOTONCHANNEL => "You're not on that channel",
            ERR_USERONCHANNEL => "is already on channel",
            ERR_NOTREGISTERED => "You have not registered",
            ERR_NEEDMOREPARAMS => "Not enough parameters",
            ERR_ALREADYREGISTRED => "You may not reregister",
            ERR_PASSWDMISMATCH => "Password incorrect",
            ERR_CHANNELISFULL => "Cannot join channel (+l)",
            ERR_UNKNOWNMODE => "is unknown mode char to me",
            ERR_INVITEONLYCHAN => "Cannot join channel (+i)",
            ERR_BANNEDFROMCHAN => "Cannot join channel (+b)",
            ERR_BADCHANNELKEY => "Cannot join channel (+k)",
            ERR_NEEDREGGEDNICK => "Cannot join channel (+R) - you must be logged in to an account",
            ERR_BADCHANMASK => "Bad Channel Mask",
            ERR_BANLISTFULL => "Channel list is full",
            ERR_NOPRIVILEGES => "Permission Denied- You're not an IRC operator",
            ERR_CHANOPRIVSNEEDED => "You're not channel operator",
            ERR_NOOPERHOST => "No O-lines for your host",
            ERR_UMODEUNKNOWNFLAG => "Unknown MODE flag",
            ERR_HELPNOTFOUND => "No help available on this topic",
            ERR_NOPRIVS => "Insufficient oper privileges.",
            ERR_MONLISTFULL => "Monitor list is full",
            RPL_KEYNOTSET => "Key not set",
            _ => return None,
        })
    }
}

const fn from(response: Response) -> Numeric {
    Numeric(response as u16)
}

pub const RPL_WELCOME: Numeric = from(Response::RPL_WELCOME);
pub const RPL_YOURHOST: Numeric = from(Response::RPL_YOURHOST);
pub const RPL_CREATED: Numeric = from(Response::RPL_CREATED);
pub const RPL_MYINFO: Numeric = from(Response::RPL_MYINFO);
pub const RPL_ISUPPORT: Numeric = from(Response::RPL_ISUPPORT);
pub const RPL_UMODEIS: Numeric = from(Response::RPL_UMODEIS);
pub const RPL_LUSERCLIENT: Numeric = from(Response::RPL_LUSERCLIENT);
pub const RPL_LUSEROP: Numeric = from(Response::RPL_LUSEROP);
pub const RPL_LUSERUNKNOWN: Numeric = from(Response::RPL_LUSERUNKNOWN);
pub const RPL_LUSERCHANNELS: Numeric = from(Response::RPL_LUSERCHANNELS);
pub const RPL_LUSERME: Numeric = from(Response::RPL_LUSERME);
pub const RPL_ADMINME: Numeric = from(Response::RPL_ADMINME);
pub const RPL_ADMINEMAIL: Numeric = from(Response::RPL_ADMINEMAIL);
pub const RPL_LOCALUSERS: Numeric = from(Response::RPL_LOCALUSERS);
pub const RPL_GLOBALUSERS: Numeric = from(Response::RPL_GLOBALUSERS);
pub const RPL_AWAY: Numeric = from(Response::RPL_AWAY);
pub const RPL_USERHOST: Numeric = from(Response::RPL_USERHOST);
pub const RPL_ISON: Numeric = from(Response::RPL_ISON);
pub const RPL_UNAWAY: Numeric = from(Response::RPL_UNAWAY);
pub const RPL_NOWAWAY: Numeric = from(Response::RPL_NOWAWAY);
pub const RPL_WHOISUSER: Numeric = from(Response::RPL_WHOISUSER);
pub const RPL_WHOISSERVER: Numeric = from(Response::RPL_WHOISSERVER);
pub const RPL_WHOISOPERATOR: Numeric = from(Response::RPL_WHOISOPERATOR);
pub const RPL_WHOWASUSER: Numeric = from(Response::RPL_WHOWASUSER);
pub const RPL_ENDOFWHO: Numeric = from(Response::RPL_ENDOFWHO);
pub const RPL_WHOISIDLE: Numeric = from(Response::RPL_WHOISIDLE);
pub const RPL_ENDOFWHOIS: Numeric = from(Response::RPL_ENDOFWHOIS);
pub const RPL_WHOISCHANNELS: Numeric = from(Response::RPL_WHOISCHANNELS);
pub const RPL_LISTSTART: Numeric = from(Response::RPL_LISTSTART);
pub const RPL_LIST: Numeric = from(Response::RPL_LIST);
pub const RPL_LISTEND: Numeric = from(Response::RPL_LISTEND);
pub const RPL_LINKS: Numeric = from(Response::RPL_LINKS);
pub const RPL_ENDOFLINKS: Numeric = from(Response::RPL_ENDOFLINKS);
pub const RPL_CHANNELMODEIS: Numeric = from(Response::RPL_CHANNELMODEIS);
pub const RPL_NOTOPIC: Numeric = from(Response::RPL_NOTOPIC);
pub const RPL_TOPIC: Numeric = from(Response::RPL_TOPIC);
pub const RPL_TOPICWHOTIME: Numeric = from(Response::RPL_TOPICWHOTIME);
pub const RPL_INVITING: Numeric = from(Response::RPL_INVITING);
pub const RPL_EXCEPTLIST: Numeric = from(Response::RPL_EXCEPTLIST);
pub const RPL_ENDOFEXCEPTLIST: Numeric = from(Response::RPL_ENDOFEXCEPTLIST);
pub const RPL_VERSION: Numeric = from(Response::RPL_VERSION);
pub const RPL_WHOREPLY: Numeric = from(Response::RPL_WHOREPLY);
pub const RPL_NAMREPLY: Numeric = from(Response::RPL_NAMREPLY);
pub const RPL_ENDOFNAMES: Numeric = from(Response::RPL_ENDOFNAMES);
pub const RPL_BANLIST: Numeric = from(Response::RPL_BANLIST);
pub const RPL_ENDOFBANLIST: Numeric = from(Response::RPL_ENDOFBANLIST);
pub const RPL_ENDOFWHOWAS: Numeric = from(Response::RPL_ENDOFWHOWAS);
pub const RPL_INFO: Numeric = from(Response::RPL_INFO);
pub const RPL_MOTD: Numeric = from(Response::RPL_MOTD);
pub const RPL_ENDOFINFO: Numeric = from(Response::RPL_ENDOFINFO);
pub const RPL_MOTDSTART: Numeric = from(Response::RPL_MOTDSTART);
pub const RPL_ENDOFMOTD: Numeric = from(Response::RPL_ENDOFMOTD);
pub const RPL_YOUREOPER: Numeric = from(Response::RPL_YOUREOPER);
pub const RPL_STATSLINKINFO: Numeric = from(Response::RPL_STATSLINKINFO);
pub const RPL_ENDOFSTATS: Numeric = from(Response::RPL_ENDOFSTATS);
pub const RPL_STATSUPTIME: Numeric = from(Response::RPL_STATSUPTIME);
pub const RPL_STATSOLINE: Numeric = from(Response::RPL_STATSOLINE);
pub const ERR_NOPRIVS: Numeric = from(Response::ERR_NOPRIVS);
pub const RPL_REHASHING: Numeric = from(Response::RPL_REHASHING);
pub const RPL_TIME: Numeric = from(Response::RPL_TIME);
/// 396, also called RPL_VISIBLEHOST: the host others see.
pub const RPL_HOSTHIDDEN: Numeric = from(Response::RPL_HOSTHIDDEN);
pub const ERR_NOSUCHNICK: Numeric = from(Response::ERR_NOSUCHNICK);
pub const ERR_NOSUCHSERVER: Numeric = from(Response::ERR_NOSUCHSERVER);
pub const ERR_NOSUCHCHANNEL: Numeric = from(Response::ERR_NOSUCHCHANNEL);
pub const ERR_CANNOTSENDTOCHAN: Numeric = from(Response::ERR_CANNOTSENDTOCHAN);
pub const ERR_TOOMANYCHANNELS: Numeric = from(Response::ERR_TOOMANYCHANNELS);
pub const ERR_WASNOSUCHNICK: Numeric = from(Response::ERR_WASNOSUCHNICK);
pub const ERR_TOOMANYTARGETS: Numeric = from(Response::ERR_TOOMANYTARGETS);
pub const ERR_NORECIPIENT: Numeric = from(Response::ERR_NORECIPIENT);
pub const ERR_NOTEXTTOSEND: Numeric = from(Response::ERR_NOTEXTTOSEND);
pub const ERR_UNKNOWNCOMMAND: Numeric = from(Response::ERR_UNKNOWNCOMMAND);
pub const ERR_NOMOTD: Numeric = from(Response::ERR_NOMOTD);
pub const ERR_NONICKNAMEGIVEN: Numeric = from(Response::ERR_NONICKNAMEGIVEN);
pub const ERR_ERRONEOUSNICKNAME: Numeric = from(Response::ERR_ERRONEOUSNICKNAME);
pub const ERR_NICKNAMEINUSE: Numeric = from(Response::ERR_NICKNAMEINUSE);
pub const ERR_UNAVAILRESOURCE: Numeric = from(Response::ERR_UNAVAILRESOURCE);
pub const ERR_USERNOTINCHANNEL: Numeric = from(Response::ERR_USERNOTINCHANNEL);
pub const ERR_NOTONCHANNEL: Numeric = from(Response::ERR_NOTONCHANNEL);
pub const ERR_USERONCHANNEL: Numeric = from(Response::ERR_USERONCHANNEL);
pub const ERR_NOTREGISTERED: Numeric = from(Response::ERR_NOTREGISTERED);
pub const ERR_NEEDMOREPARAMS: Numeric = from(Response::ERR_NEEDMOREPARAMS);
pub const ERR_ALREADYREGISTRED: Numeric = from(Response::ERR_ALREADYREGISTRED);
pub const ERR_PASSWDMISMATCH: Numeric = from(Response::ERR_PASSWDMISMATCH);
pub const ERR_YOUREBANNEDCREEP: Numeric = from(Response::ERR_YOUREBANNEDCREEP);
pub const ERR_CHANNELISFULL: Numeric = from(Response::ERR_CHANNELISFULL);
pub const ERR_UNKNOWNMODE: Numeric = from(Response::ERR_UNKNOWNMODE);
pub const ERR_INVITEONLYCHAN: Numeric = from(Response::ERR_INVITEONLYCHAN);
pub const ERR_BANNEDFROMCHAN: Numeric = from(Response::ERR_BANNEDFROMCHAN);
pub const ERR_BADCHANNELKEY: Numeric = from(Response::ERR_BADCHANNELKEY);
pub const ERR_BADCHANMASK: Numeric = from(Response::ERR_BADCHANMASK);
pub const ERR_BANLISTFULL: Numeric = from(Response::ERR_BANLISTFULL);
pub const ERR_NOPRIVILEGES: Numeric = from(Response::ERR_NOPRIVILEGES);
pub const ERR_CHANOPRIVSNEEDED: Numeric = from(Response::ERR_CHANOPRIVSNEEDED);
pub const ERR_NOOPERHOST: Numeric = from(Response::ERR_NOOPERHOST);
pub const ERR_UMODEUNKNOWNFLAG: Numeric = from(Response::ERR_UMODEUNKNOWNFLAG);
pub const ERR_USERSDONTMATCH: Numeric = from(Response::ERR_USERSDONTMATCH);
pub const RPL_MONONLINE: Numeric = from(Response::RPL_MONONLINE);
pub const RPL_MONOFFLINE: Numeric = from(Response::RPL_MONOFFLINE);
pub const RPL_MONLIST: Numeric = from(Response::RPL_MONLIST);
pub const RPL_ENDOFMONLIST: Numeric = from(Response::RPL_ENDOFMONLIST);
pub const ERR_MONLISTFULL: Numeric = from(Response::ERR_MONLISTFULL);

// Not in irc-proto.
pub const RPL_ADMINLOC1: Numeric = Numeric(257);
pub const RPL_ADMINLOC2: Numeric = Numeric(258);
pub const RPL_WHOISBOT: Numeric = Numeric(335);
pub const RPL_WHOISACCOUNT: Numeric = Numeric(330);
pub const RPL_WHOISREGNICK: Numeric = Numeric(307);
/// MAP, as UnrealIRCd numbers it (InspIRCd 4 moved to ircu's 015 and 017).
pub const RPL_MAP: Numeric = Numeric(6);
pub const RPL_MAPEND: Numeric = Numeric(7);
/// Accounts and SASL (Modern IRC, IRCv3 sasl).
pub const RPL_LOGGEDIN: Numeric = Numeric(900);
pub const RPL_LOGGEDOUT: Numeric = Numeric(901);
pub const ERR_NICKLOCKED: Numeric = Numeric(902);
pub const RPL_SASLSUCCESS: Numeric = Numeric(903);
pub const ERR_SASLFAIL: Numeric = Numeric(904);
pub const ERR_SASLTOOLONG: Numeric = Numeric(905);
pub const ERR_SASLABORTED: Numeric = Numeric(906);
pub const ERR_SASLALREADY: Numeric = Numeric(907);
pub const RPL_SASLMECHS: Numeric = Numeric(908);
pub const RPL_CREATIONTIME: Numeric = Numeric(329);
pub const RPL_WHOSPCRPL: Numeric = Numeric(354);
pub const RPL_WHOISHOST: Numeric = Numeric(378);
pub const ERR_INPUTTOOLONG: Numeric = Numeric(417);
pub const ERR_TOOMANYMATCHES: Numeric = Numeric(416);
pub const ERR_INVALIDCAPCMD: Numeric = Numeric(410);
pub const ERR_INVALIDMODEPARAM: Numeric = Numeric(696);
/// JOIN refused by `+R` to a client logged in to no account (irc-proto
/// calls 477 ERR_NOCHANMODES, its RFC 2812 meaning).
pub const ERR_NEEDREGGEDNICK: Numeric = Numeric(477);
/// INVITE with no parameter: the rooms the client is invited to (Modern
/// IRC; irc-proto gives these names to 346/347, the RFC 2812 numbers).
pub const RPL_INVITELIST: Numeric = Numeric(336);
pub const RPL_ENDOFINVITELIST: Numeric = Numeric(337);
/// A nick change refused while a ban silences the client in a room
/// (`<client> <nick> <channel>`, as Solanum sends it; not in Modern IRC).
pub const ERR_BANNICKCHANGE: Numeric = Numeric(435);
/// irc-proto calls 346/347 `RPL_INVITELIST`, the RFC 2812 name; Modern IRC
/// gives that name to 336 (INVITE with no parameter) and calls these:
pub const RPL_INVEXLIST: Numeric = Numeric(346);
pub const RPL_ENDOFINVEXLIST: Numeric = Numeric(347);
pub const RPL_WHOISSECURE: Numeric = Numeric(671);
pub const RPL_WHOISCERTFP: Numeric = Numeric(276);
pub const RPL_HELPSTART: Numeric = Numeric(704);
pub const RPL_HELPTXT: Numeric = Numeric(705);
pub const RPL_ENDOFHELP: Numeric = Numeric(706);
pub const ERR_HELPNOTFOUND: Numeric = Numeric(524);
pub const RPL_STATSKLINE: Numeric = Numeric(216);
pub const RPL_STATSDLINE: Numeric = Numeric(225);
/// IRCv3 metadata (`draft/metadata-3`).
pub const RPL_WHOISKEYVALUE: Numeric = Numeric(760);
pub const RPL_KEYVALUE: Numeric = Numeric(761);
/// The spec's ERR_NOMATCHINGKEY: GET of a key that is not set, and the
/// answer to removing one.
pub const RPL_KEYNOTSET: Numeric = Numeric(766);
pub const RPL_METADATASUBOK: Numeric = Numeric(770);
pub const RPL_METADATAUNSUBOK: Numeric = Numeric(771);
pub const RPL_METADATASUBS: Numeric = Numeric(772);
pub const RPL_METADATASYNCLATER: Numeric = Numeric(774);
