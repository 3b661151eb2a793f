//! HELP and HELPOP: a text for every command the server knows (704, 705s,
//! 706), the list of commands without a subject, and 524 for an unknown one.
//! The texts sit here beside the command table; a test there checks that
//! every command has one and every text a command.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

/// Each command's help: its syntax first, then what it does. Sorted by name.
static TEXTS: &[(&str, &[&str])] = &[
    (
        "ADMIN",
        &["ADMIN [<server>]", "Shows who runs this server."],
    ),
    (
        "AUTHENTICATE",
        &[
            "AUTHENTICATE <mechanism> | <base64 data> | + | *",
            "Logs in to an account with SASL (PLAIN, SCRAM-SHA-256) while connecting;",
            "clients do this themselves. * aborts.",
        ],
    ),
    (
        "AWAY",
        &[
            "AWAY [:<message>]",
            "Marks you away; who messages you is told <message>.",
            "Without a message, marks you back.",
        ],
    ),
    (
        "BATCH",
        &[
            "BATCH +<ref> draft/multiline <target> | -<ref>",
            "Sends the PRIVMSG or NOTICE lines tagged batch=<ref> between",
            "the two as one multiline message (draft/multiline).",
        ],
    ),
    (
        "CAP",
        &[
            "CAP LS [302] | LIST | REQ :<capabilities> | END",
            "Negotiates IRCv3 capabilities; clients do this themselves.",
        ],
    ),
    (
        "CHATHISTORY",
        &[
            "CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <reference> <limit>",
            "CHATHISTORY BETWEEN <target> <reference> <reference> <limit>",
            "CHATHISTORY TARGETS <timestamp> <timestamp> <limit>",
            "Fetches a room's or a conversation's stored history.",
            "A reference is msgid=<id>, timestamp=<time> or *.",
        ],
    ),
    (
        "CS",
        &[
            "CS <command> [<arguments>]",
            "Talks to ChanServ, the registered room service: CS HELP lists its commands.",
        ],
    ),
    (
        "DLINE",
        &[
            "DLINE [<minutes>] <ip[/bits]> [:<reason>]",
            "Operators: bans an address or range from connecting, for",
            "<minutes> or for good. Matching clients are disconnected.",
        ],
    ),
    (
        "HELP",
        &[
            "HELP [<command>]",
            "Explains <command>; without one, lists every command.",
        ],
    ),
    ("HELPOP", &["HELPOP [<command>]", "The same as HELP."]),
    (
        "INFO",
        &["INFO [<server>]", "Tells about the server software."],
    ),
    (
        "INVITE",
        &[
            "INVITE <nick> <#room>",
            "Asks <nick> into <#room>; the invite lets them past +i once.",
            "On a +i room only its operators may invite.",
        ],
    ),
    (
        "ISON",
        &[
            "ISON <nick> [<nick> ...]",
            "Answers which of the nicks are online.",
        ],
    ),
    (
        "ISUPPORT",
        &[
            "ISUPPORT",
            "Sends the server's 005 lines again; with draft/extended-isupport,",
            "also before you register.",
        ],
    ),
    (
        "JOIN",
        &[
            "JOIN <#room>{,<#room>} [<key>{,<key>}]",
            "Enters the rooms, creating those that do not exist yet.",
            "JOIN 0 leaves every room.",
        ],
    ),
    (
        "KICK",
        &[
            "KICK <#room> <nick> [:<reason>]",
            "Room operators: removes <nick> from <#room>.",
        ],
    ),
    (
        "KILL",
        &["KILL <nick> [:<reason>]", "Operators: disconnects <nick>."],
    ),
    (
        "KLINE",
        &[
            "KLINE [<minutes>] <user@host|nick> [:<reason>]",
            "Operators: bans a user@host mask, for <minutes> or for good.",
            "Matching clients are disconnected, on every node of the network.",
        ],
    ),
    (
        "LINKS",
        &[
            "LINKS [[<server>] <mask>]",
            "Lists the servers of the network.",
        ],
    ),
    (
        "LIST",
        &[
            "LIST [<condition>{,<condition>}]",
            "Lists the rooms with their user counts and topics.",
            "Conditions: a mask (#rust*), a negated mask (!*bots*),",
            ">n or <n users, C>n or C<n minutes since the room was",
            "created, T>n or T<n minutes since its topic was set.",
        ],
    ),
    (
        "LUSERS",
        &["LUSERS", "Counts users, operators, rooms and connections."],
    ),
    (
        "MAP",
        &[
            "MAP",
            "Lists the servers of the network with their user counts.",
        ],
    ),
    (
        "MARKREAD",
        &[
            "MARKREAD <target> [timestamp=<time>]",
            "Sets where you last read <target> (a room or a nick), or asks for it;",
            "your other connections of the same account are told (draft/read-marker).",
        ],
    ),
    (
        "METADATA",
        &[
            "METADATA <target> GET <key>... | LIST | SYNC | SET <key> [:<value>] | CLEAR",
            "METADATA * SUB <key>... | UNSUB <key>... | SUBS",
            "Reads or sets a user's or a channel's metadata (avatar, display-name, ...),",
            "or chooses the keys you are told about when they change.",
        ],
    ),
    (
        "MODE",
        &[
            "MODE <nick> [+|-<modes>]",
            "MODE <#room> [+|-<modes> [<arguments>]]",
            "Shows or changes your user modes or a room's modes.",
            "Room modes: b e I (lists), k <key>, l <limit>, C i m M n p R s t,",
            "u (auditorium: members without @ or + are seen only by ops),",
            "o <nick> and v <nick>. User modes: B (bot), i (invisible),",
            "w (wallops), o (operator, which MODE can only remove).",
        ],
    ),
    (
        "MONITOR",
        &[
            "MONITOR + <nick>{,<nick>} | - <nick>{,<nick>} | C | L | S",
            "Tells you when the nicks you follow come online or leave.",
        ],
    ),
    (
        "MOTD",
        &["MOTD [<server>]", "Shows the message of the day."],
    ),
    (
        "NAMES",
        &["NAMES <#room>{,<#room>}", "Lists who is in the rooms."],
    ),
    ("NICK", &["NICK <nick>", "Sets or changes your nick."]),
    (
        "NOTICE",
        &[
            "NOTICE <target>{,<target>} :<text>",
            "Like PRIVMSG, but never answered automatically.",
        ],
    ),
    (
        "NS",
        &[
            "NS <command> [<arguments>]",
            "Talks to NickServ, the account service: NS HELP lists its commands.",
        ],
    ),
    (
        "OPER",
        &[
            "OPER <name> <password>",
            "Makes you an IRC operator, if an operator block allows it.",
        ],
    ),
    (
        "PART",
        &["PART <#room>{,<#room>} [:<reason>]", "Leaves the rooms."],
    ),
    (
        "PASS",
        &[
            "PASS <password>",
            "Gives the server password, before NICK and USER.",
            "Without a server password, PASS <account>:<password> logs in to an account.",
        ],
    ),
    (
        "PING",
        &["PING <token>", "Asks the server to answer PONG <token>."],
    ),
    ("PONG", &["PONG <token>", "Answers the server's PING."]),
    (
        "PRIVMSG",
        &[
            "PRIVMSG <target>{,<target>} :<text>",
            "Sends <text> to a room, a nick, or a room's operators",
            "(@#room) or voiced members (+#room).",
        ],
    ),
    (
        "QUIT",
        &["QUIT [:<reason>]", "Disconnects; your rooms see <reason>."],
    ),
    (
        "REDACT",
        &[
            "REDACT <target> <msgid> [:<reason>]",
            "Deletes a message from <target> and its history: your own, any in",
            "a room you are an operator of, or as an IRC operator any.",
        ],
    ),
    (
        "REGISTER",
        &[
            "REGISTER <account> {<email> | *} <password>",
            "Creates an account and logs you in to it (draft/account-registration);",
            "* as <account> names it after your nick. Clients do this themselves.",
        ],
    ),
    (
        "REHASH",
        &[
            "REHASH [<server mask>]",
            "Operators: reloads the configuration file; with a mask, every",
            "server of the network whose name matches reloads its own (* for all).",
        ],
    ),
    (
        "RENAME",
        &[
            "RENAME <#room> <#new name> [:<reason>]",
            "Room operators: renames the room, keeping its members, modes, lists,",
            "registration and history (draft/channel-rename).",
        ],
    ),
    (
        "SETNAME",
        &["SETNAME :<real name>", "Changes your real name."],
    ),
    (
        "STATS",
        &[
            "STATS <letter>",
            "u: uptime. Operators also have k and d (server bans),",
            "o (operator blocks) and l (connections).",
        ],
    ),
    (
        "TAGMSG",
        &[
            "TAGMSG <target>",
            "Sends client tags without text (typing notices, reactions).",
        ],
    ),
    ("TIME", &["TIME [<server>]", "Shows the server's time."]),
    (
        "TOPIC",
        &[
            "TOPIC <#room> [:<topic>]",
            "Shows or sets a room's topic; TOPIC <#room> : clears it.",
        ],
    ),
    (
        "UNDLINE",
        &["UNDLINE <ip[/bits]>", "Operators: removes a DLINE."],
    ),
    (
        "UNKLINE",
        &[
            "UNKLINE <user@host>",
            "Operators: removes a KLINE, on every node of the network.",
        ],
    ),
    (
        "USER",
        &[
            "USER <user> 0 * :<real name>",
            "Gives your user name and real name while connecting.",
        ],
    ),
    (
        "USERHOST",
        &[
            "USERHOST <nick> [<nick> ...]",
            "Shows user@host of up to five nicks.",
        ],
    ),
    (
        "VERIFY",
        &[
            "VERIFY <account> <code>",
            "Completes a registration that asked for a verification code.",
        ],
    ),
    (
        "VERSION",
        &[
            "VERSION [<server>]",
            "Shows the server's version and what it supports.",
        ],
    ),
    (
        "WALLOPS",
        &[
            "WALLOPS :<text>",
            "Operators: sends <text> to every user with mode +w.",
        ],
    ),
    (
        "WHO",
        &[
            "WHO <#room|mask> [<flags>[%<fields>]]",
            "Lists the members of a room, or the users matching a mask.",
        ],
    ),
    (
        "WHOIS",
        &[
            "WHOIS [<server>] <nick>",
            "Tells who <nick> is: name, host, rooms, idle time.",
        ],
    ),
    (
        "WHOWAS",
        &["WHOWAS <nick> [<count>]", "Tells who used <nick> before."],
    ),
];

/// The help for `command` (uppercased), when there is any.
pub fn text(command: &str) -> Option<&'static [&'static str]> {
    TEXTS
        .binary_search_by(|(name, _)| (*name).cmp(command))
        .ok()
        .map(|i| TEXTS[i].1)
}

/// Every command that has help, in order.
pub fn subjects() -> impl Iterator<Item = &'static str> {
    TEXTS.iter().map(|(name, _)| *name)
}

/// How many command names one line of the index holds.
const INDEX_COLUMNS: usize = 8;

/// `HELP [<subject>]`
///
/// HELP and HELPOP.
pub fn help(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let asked = message.param(0);
    if asked.is_empty() {
        let names: Vec<&str> = subjects().collect();
        let mut lines = vec!["Commands (HELP <command> for more):".to_owned()];
        lines.extend(names.chunks(INDEX_COLUMNS).map(|row| row.join(" ")));
        send(state, id, "index", &lines);
        return Ok(());
    }
    let subject = asked.to_ascii_uppercase();
    let Some(text) = text(&subject) else {
        return Err(Refusal::new(numeric::ERR_HELPNOTFOUND, &[asked]));
    };
    let lines: Vec<String> = text.iter().map(|line| (*line).to_owned()).collect();
    send(state, id, &subject, &lines);
    Ok(())
}

/// 704 with the first line, 705 with each other, 706 to end.
fn send(state: &mut State, id: ClientId, subject: &str, lines: &[String]) {
    let Some((first, rest)) = lines.split_first() else {
        return;
    };
    state.reply(id, numeric::RPL_HELPSTART, &[subject], first);
    for line in rest {
        state.reply(id, numeric::RPL_HELPTXT, &[subject], line);
    }
    state.reply(id, numeric::RPL_ENDOFHELP, &[subject], "End of /HELP");
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn the_texts_are_sorted_and_each_has_more_than_its_syntax() {
        for pair in super::TEXTS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (name, text) in super::TEXTS {
            assert!(text.len() >= 2, "{name}");
            assert!(text[0].starts_with(name), "{name}: {}", text[0]);
        }
    }

    #[test]
    fn help_on_a_command_is_a_704_705_706_block() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "HELP privmsg");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 704 alice PRIVMSG :PRIVMSG <target>{,<target>} :<text>",
                ":irc.test 705 alice PRIVMSG :Sends <text> to a room, a nick, or a room's operators",
                ":irc.test 705 alice PRIVMSG :(@#room) or voiced members (+#room).",
                ":irc.test 706 alice PRIVMSG :End of /HELP",
            ]
        );
        h.send("alice", "HELPOP PRIVMSG");
        assert_eq!(h.take("alice").len(), 4);
    }

    #[test]
    fn help_alone_lists_every_command() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "HELP");
        let lines = h.take("alice");
        assert!(lines[0].starts_with(":irc.test 704 alice index :"));
        assert_eq!(
            lines[lines.len() - 1],
            ":irc.test 706 alice index :End of /HELP"
        );
        let listed: Vec<&str> = lines[1..lines.len() - 1]
            .iter()
            .flat_map(|line| line.split_once(" :").unwrap().1.split(' '))
            .collect();
        assert!(listed.contains(&"PRIVMSG") && listed.contains(&"WHOWAS"));
    }

    #[test]
    fn help_on_an_unknown_subject_is_524() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "HELPOP thisisnotacommand");
        assert_eq!(
            h.take("alice"),
            [":irc.test 524 alice thisisnotacommand :No help available on this topic"]
        );
    }
}
