//! Every channel and user mode letter, one row each. 005 CHANMODES, PREFIX
//! and STATUSMSG, 004, MODE parsing, applying and display, and the check of
//! `default_modes` and `[[room]] modes` all read these tables, so a mode is
//! added by adding its row (and the rule it enforces).

/// A channel mode: its letter and what it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelMode {
    pub letter: char,
    pub kind: ChannelModeKind,
}

/// What a channel mode letter stands for, which also fixes its CHANMODES
/// class and when it takes an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelModeKind {
    /// Type A: a list of masks; a mask to add or remove one, none to read it.
    List(ListKind),
    /// Type B: the key; an argument to set it, and (optionally) to unset it.
    Key,
    /// Type C: the member limit; an argument only when set.
    Limit,
    /// Type D: a flag that is on or off.
    Flag(ChannelFlag),
    /// A member's status (PREFIX), shown before its nick as `symbol`.
    Prefix { status: MemberStatus, symbol: char },
}

/// The list modes (type A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Bans,
    Exceptions,
    InviteExceptions,
}

/// The flag modes (type D); `core::ChannelModes` has a field for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelFlag {
    /// No CTCP but ACTION from anyone but channel operators.
    NoCtcp,
    InviteOnly,
    Moderated,
    NoExternal,
    Private,
    /// `+R`: only users logged in to an account may join.
    RegisteredOnly,
    /// `+M`: only users logged in to an account, voiced members and ops
    /// may speak.
    RegisteredOnlySpeak,
    Secret,
    TopicOpsOnly,
    /// `+u` (auditorium): members without a status are seen only by the
    /// room's operators and themselves.
    Auditorium,
}

/// A member's status in a room; `core::Membership` has a field for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    Op,
    Voice,
}

/// The channel modes, in the order 005 and 324 list them within a class;
/// the prefixes from highest to lowest, as PREFIX needs.
pub const CHANNEL_MODES: &[ChannelMode] = &[
    ChannelMode::new('b', ChannelModeKind::List(ListKind::Bans)),
    ChannelMode::new('e', ChannelModeKind::List(ListKind::Exceptions)),
    ChannelMode::new('I', ChannelModeKind::List(ListKind::InviteExceptions)),
    ChannelMode::new('k', ChannelModeKind::Key),
    ChannelMode::new('l', ChannelModeKind::Limit),
    ChannelMode::new('C', ChannelModeKind::Flag(ChannelFlag::NoCtcp)),
    ChannelMode::new('M', ChannelModeKind::Flag(ChannelFlag::RegisteredOnlySpeak)),
    ChannelMode::new('R', ChannelModeKind::Flag(ChannelFlag::RegisteredOnly)),
    ChannelMode::new('i', ChannelModeKind::Flag(ChannelFlag::InviteOnly)),
    ChannelMode::new('m', ChannelModeKind::Flag(ChannelFlag::Moderated)),
    ChannelMode::new('n', ChannelModeKind::Flag(ChannelFlag::NoExternal)),
    ChannelMode::new('p', ChannelModeKind::Flag(ChannelFlag::Private)),
    ChannelMode::new('s', ChannelModeKind::Flag(ChannelFlag::Secret)),
    ChannelMode::new('t', ChannelModeKind::Flag(ChannelFlag::TopicOpsOnly)),
    ChannelMode::new('u', ChannelModeKind::Flag(ChannelFlag::Auditorium)),
    ChannelMode::new(
        'o',
        ChannelModeKind::Prefix {
            status: MemberStatus::Op,
            symbol: '@',
        },
    ),
    ChannelMode::new(
        'v',
        ChannelModeKind::Prefix {
            status: MemberStatus::Voice,
            symbol: '+',
        },
    ),
];

impl ChannelMode {
    const fn new(letter: char, kind: ChannelModeKind) -> ChannelMode {
        ChannelMode { letter, kind }
    }

    /// The CHANMODES class (0 for A to 3 for D); `None` for a prefix,
    /// which PREFIX lists instead.
    fn class(self) -> Option<usize> {
        match self.kind {
            ChannelModeKind::List(_) => Some(0),
            ChannelModeKind::Key => Some(1),
            ChannelModeKind::Limit => Some(2),
            ChannelModeKind::Flag(_) => Some(3),
            ChannelModeKind::Prefix { .. } => None,
        }
    }

    /// Whether 004 lists it among the modes that take an argument: all
    /// but the flags (`l` only when set, `k` optionally when unset).
    fn takes_argument(self) -> bool {
        !matches!(self.kind, ChannelModeKind::Flag(_))
    }
}

/// The channel mode a letter names, if any.
pub fn channel_mode(letter: char) -> Option<ChannelModeKind> {
    CHANNEL_MODES
        .iter()
        .find(|mode| mode.letter == letter)
        .map(|mode| mode.kind)
}

/// The letter of a list mode, for EXCEPTS and INVEX.
pub fn list_letter(kind: ListKind) -> Option<char> {
    CHANNEL_MODES
        .iter()
        .find(|mode| mode.kind == ChannelModeKind::List(kind))
        .map(|mode| mode.letter)
}

/// The list modes' letters, e.g. `beI`, for MAXLIST.
pub fn list_letters() -> impl Iterator<Item = char> {
    CHANNEL_MODES
        .iter()
        .filter(|mode| matches!(mode.kind, ChannelModeKind::List(_)))
        .map(|mode| mode.letter)
}

/// The flag a letter names, for `+nt`-style lists of flags.
pub fn channel_flag(letter: char) -> Option<ChannelFlag> {
    match channel_mode(letter)? {
        ChannelModeKind::Flag(flag) => Some(flag),
        _ => None,
    }
}

/// The flags with their letters, in 324's order.
pub fn channel_flags() -> impl Iterator<Item = (char, ChannelFlag)> {
    CHANNEL_MODES.iter().filter_map(|mode| match mode.kind {
        ChannelModeKind::Flag(flag) => Some((mode.letter, flag)),
        _ => None,
    })
}

/// The flag letters, e.g. `Cimnpst`.
pub fn channel_flag_letters() -> String {
    channel_flags().map(|(letter, _)| letter).collect()
}

/// CHANMODES: the letters of classes A, B, C and D, comma-separated.
pub fn chanmodes() -> String {
    let class = |wanted: usize| -> String {
        CHANNEL_MODES
            .iter()
            .filter(|mode| mode.class() == Some(wanted))
            .map(|mode| mode.letter)
            .collect()
    };
    (0..4).map(class).collect::<Vec<_>>().join(",")
}

/// A member status as its prefix row writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatusMode {
    pub status: MemberStatus,
    /// The MODE letter, e.g. `o`.
    pub letter: char,
    /// The prefix shown before a nick, e.g. `@`.
    pub symbol: char,
}

/// The prefix rows, highest status first.
pub(crate) fn status_modes() -> impl Iterator<Item = StatusMode> {
    CHANNEL_MODES.iter().filter_map(|mode| match mode.kind {
        ChannelModeKind::Prefix { status, symbol } => Some(StatusMode {
            status,
            letter: mode.letter,
            symbol,
        }),
        _ => None,
    })
}

/// Whether `symbol` is a status prefix (`@`, `+`), as in `@#room`.
pub(crate) fn is_status_symbol(symbol: char) -> bool {
    status_modes().any(|mode| mode.symbol == symbol)
}

/// PREFIX, e.g. `(ov)@+`.
pub fn prefix() -> String {
    let letters: String = status_modes().map(|mode| mode.letter).collect();
    format!("({letters}){}", status_symbols())
}

/// STATUSMSG: the prefix symbols, e.g. `@+`.
pub fn status_symbols() -> String {
    status_modes().map(|mode| mode.symbol).collect()
}

/// 004's channel modes: every letter, then those that take an argument.
pub fn channel_modes_for_004() -> (String, String) {
    let all = sorted(CHANNEL_MODES.iter().map(|mode| mode.letter));
    let with_argument = sorted(
        CHANNEL_MODES
            .iter()
            .filter(|mode| mode.takes_argument())
            .map(|mode| mode.letter),
    );
    (all, with_argument)
}

/// A user mode: its letter, the flag it sets, and what its user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserMode {
    pub letter: char,
    pub flag: UserFlag,
    pub by_user: ByUser,
}

/// The user modes; `core::UserModes` has a field for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserFlag {
    /// bot-mode: shown in WHOIS and WHO, and tagged on messages.
    Bot,
    Invisible,
    Oper,
    /// +r: logged in to an account.
    Registered,
    Wallops,
}

/// What MODE lets a user do with its own mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByUser {
    SetAndUnset,
    /// Granted elsewhere (`+o` by OPER); `+` is ignored, `-` drops it.
    UnsetOnly,
    /// The server's alone (`+r` follows logging in and out); both are ignored.
    Never,
}

/// The user mode that marks a bot (bot-mode), also its WHO flag.
pub const BOT_MODE: char = 'B';

/// The user modes, in the order 221 lists them.
pub const USER_MODES: &[UserMode] = &[
    UserMode::new(BOT_MODE, UserFlag::Bot, ByUser::SetAndUnset),
    UserMode::new('i', UserFlag::Invisible, ByUser::SetAndUnset),
    UserMode::new('o', UserFlag::Oper, ByUser::UnsetOnly),
    UserMode::new('r', UserFlag::Registered, ByUser::Never),
    UserMode::new('w', UserFlag::Wallops, ByUser::SetAndUnset),
];

impl UserMode {
    const fn new(letter: char, flag: UserFlag, by_user: ByUser) -> UserMode {
        UserMode {
            letter,
            flag,
            by_user,
        }
    }
}

/// The user mode a letter names, if any.
pub fn user_mode(letter: char) -> Option<UserMode> {
    USER_MODES
        .iter()
        .find(|mode| mode.letter == letter)
        .copied()
}

/// 004's user modes, e.g. `Biorw`.
pub fn user_modes_for_004() -> String {
    sorted(USER_MODES.iter().map(|mode| mode.letter))
}

/// Letters in alphabetical order, a capital before its small letter.
fn sorted(letters: impl Iterator<Item = char>) -> String {
    let mut letters: Vec<char> = letters.collect();
    letters.sort_by_key(|letter| (letter.to_ascii_lowercase(), letter.is_ascii_lowercase()));
    letters.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_letter_names_two_modes() {
        for (index, mode) in CHANNEL_MODES.iter().enumerate() {
            let earlier = &CHANNEL_MODES[..index];
            assert!(!earlier.iter().any(|other| other.letter == mode.letter));
            assert!(mode.letter.is_ascii_alphabetic(), "{}", mode.letter);
        }
        for (index, mode) in USER_MODES.iter().enumerate() {
            let earlier = &USER_MODES[..index];
            assert!(!earlier.iter().any(|other| other.letter == mode.letter));
            assert!(mode.letter.is_ascii_alphabetic(), "{}", mode.letter);
        }
    }

    #[test]
    fn the_advertised_strings_are_what_clients_know() {
        assert_eq!(chanmodes(), "beI,k,l,CMRimnpstu");
        assert_eq!(prefix(), "(ov)@+");
        assert_eq!(status_symbols(), "@+");
        assert_eq!(
            channel_modes_for_004(),
            ("bCeIiklMmnopRstuv".to_owned(), "beIklov".to_owned())
        );
        assert_eq!(user_modes_for_004(), "Biorw");
        assert_eq!(channel_flag_letters(), "CMRimnpstu");
    }

    #[test]
    fn status_prefixes_come_from_the_prefix_rows_highest_first() {
        let symbols: Vec<(MemberStatus, char)> = status_modes()
            .map(|mode| (mode.status, mode.symbol))
            .collect();
        assert_eq!(
            symbols,
            [(MemberStatus::Op, '@'), (MemberStatus::Voice, '+')]
        );
        assert!(is_status_symbol('@') && is_status_symbol('+'));
        assert!(!is_status_symbol('#') && !is_status_symbol('%'));
    }

    #[test]
    fn every_channel_mode_is_advertised() {
        let chanmodes = chanmodes();
        let prefix = prefix();
        let (all, _) = channel_modes_for_004();
        for mode in CHANNEL_MODES {
            assert!(all.contains(mode.letter), "{} in 004", mode.letter);
            let advertised = match mode.kind {
                ChannelModeKind::Prefix { symbol, .. } => {
                    prefix.contains(mode.letter) && prefix.contains(symbol)
                }
                _ => chanmodes.contains(mode.letter),
            };
            assert!(advertised, "{} in 005", mode.letter);
        }
    }
}
