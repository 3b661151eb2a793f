//! Extended bans: `~<letter>:<mask>` entries in a room's ban and exception
//! lists that, instead of keeping a matching user out, restrict what it may
//! do in the room. EXTBAN in 005 lists the prefix and the letters.

/// What a matching extban takes away from a user in the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// May join, but not speak (PRIVMSG, NOTICE, TAGMSG), unless voiced.
    Mute,
}

/// One extban type.
#[derive(Debug, PartialEq, Eq)]
pub struct Extban {
    /// The letter after the prefix, as in `~m:`.
    pub letter: char,
    pub restriction: Restriction,
}

/// What marks an extban in a mask; no nick may start with it.
pub const PREFIX: char = '~';

/// Every extban type. A new one is a row here and a check where its
/// restriction applies; 005, parsing and listing follow from this table.
pub const EXTBANS: &[Extban] = &[Extban {
    letter: 'm',
    restriction: Restriction::Mute,
}];

/// The EXTBAN value: the prefix, a comma, the letters.
pub fn isupport_value() -> String {
    let letters: String = EXTBANS.iter().map(|extban| extban.letter).collect();
    format!("{PREFIX},{letters}")
}

/// How a b/e list entry was written.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A plain `nick!user@host` mask (perhaps still to be completed).
    Plain(&'a str),
    /// `~m:mask`: the type and the mask after the `:`.
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
    fn the_mute_type_is_advertised_and_parsed() {
        assert_eq!(isupport_value(), "~,m");
        assert_eq!(
            parse("~m:bar!*@*"),
            Parsed::Extended(&EXTBANS[0], "bar!*@*")
        );
        assert_eq!(parse("bar!*@*"), Parsed::Plain("bar!*@*"));
        assert_eq!(parse("~z:bar"), Parsed::Unknown);
        assert_eq!(parse("~m"), Parsed::Unknown);
        assert_eq!(parse("~"), Parsed::Unknown);
        assert_eq!(text(Some(&EXTBANS[0]), "bar!*@*"), "~m:bar!*@*");
    }
}
