//! Extended bans: `~<letter>:<mask>` entries in a room's lists. An acting
//! type (`~m:`) restricts what a matching user may do in the room instead
//! of keeping it out; a matching type (`~a:`) matches users some other way
//! than by `nick!user@host`, and bans, excepts or invite-excepts as a plain
//! mask would. EXTBAN in 005 lists the prefix and the letters,
//! ACCOUNTEXTBAN the account type.

/// What a matching extban takes away from a user in the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// May join, but not speak (PRIVMSG, NOTICE, TAGMSG), unless voiced.
    Mute,
}

/// What an extban type does with the mask after its `:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Matches `nick!user@host`, and takes this away instead of banning.
    Restricts(Restriction),
    /// Matches the account a user is logged in to (IRCv3 account-extban);
    /// a user logged in to none never matches.
    Account,
}

/// One extban type.
#[derive(Debug, PartialEq, Eq)]
pub struct Extban {
    /// The letter after the prefix, as in `~m:`.
    pub letter: char,
    pub kind: Kind,
}

impl Extban {
    /// What a matching entry takes away; none for a type that only
    /// changes how users are matched, so it bans as a plain mask does.
    pub fn restriction(&self) -> Option<Restriction> {
        match self.kind {
            Kind::Restricts(restriction) => Some(restriction),
            Kind::Account => None,
        }
    }
}

/// What marks an extban in a mask; no nick may start with it.
pub const PREFIX: char = '~';

/// Every extban type. A new one is a row here and a check where its
/// restriction applies; 005, parsing and listing follow from this table.
pub const EXTBANS: &[Extban] = &[
    Extban {
        letter: 'a',
        kind: Kind::Account,
    },
    Extban {
        letter: 'm',
        kind: Kind::Restricts(Restriction::Mute),
    },
];

/// The EXTBAN value: the prefix, a comma, the letters.
pub fn isupport_value() -> String {
    let letters: String = EXTBANS.iter().map(|extban| extban.letter).collect();
    format!("{PREFIX},{letters}")
}

/// The ACCOUNTEXTBAN value: the letters of the types matching accounts.
pub fn account_letters() -> String {
    EXTBANS
        .iter()
        .filter(|extban| extban.kind == Kind::Account)
        .map(|extban| extban.letter.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// How a b/e/I list entry was written.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A plain `nick!user@host` mask (perhaps still to be completed).
    Plain(&'a str),
    /// `~m:mask`, `~a:account`: the type and the mask after the `:`.
    Extended(&'static Extban, &'a str),
    /// Starts with the prefix but names no known type.
    Unknown,
}

/// Splits an entry into its extban type, if any, and its mask.
pub fn parse(entry: &str) -> Parsed<'_> {
    let Some(rest) = entry.strip_prefix(PREFIX) else {
        return Parsed::Plain(entry);
    };
    let mut chars = rest.chars();
    let (Some(letter), Some(':')) = (chars.next(), chars.next()) else {
        return Parsed::Unknown;
    };
    match EXTBANS.iter().find(|extban| extban.letter == letter) {
        Some(extban) => Parsed::Extended(extban, chars.as_str()),
        None => Parsed::Unknown,
    }
}

/// The entry as set and listed: `~m:mask`, or the mask alone.
pub fn text(extban: Option<&Extban>, mask: &str) -> String {
    match extban {
        Some(extban) => format!("{PREFIX}{}:{mask}", extban.letter),
        None => mask.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mute_and_account_types_are_advertised_and_parsed() {
        assert_eq!(isupport_value(), "~,am");
        assert_eq!(account_letters(), "a");
        let mute = &EXTBANS[1];
        assert_eq!(parse("~m:bar!*@*"), Parsed::Extended(mute, "bar!*@*"));
        assert_eq!(parse("~a:bob"), Parsed::Extended(&EXTBANS[0], "bob"));
        assert_eq!(EXTBANS[0].restriction(), None);
        assert_eq!(mute.restriction(), Some(Restriction::Mute));
        assert_eq!(parse("bar!*@*"), Parsed::Plain("bar!*@*"));
        assert_eq!(parse("~z:bar"), Parsed::Unknown);
        assert_eq!(parse("~m"), Parsed::Unknown);
        assert_eq!(parse("~"), Parsed::Unknown);
        assert_eq!(text(Some(mute), "bar!*@*"), "~m:bar!*@*");
    }
}
