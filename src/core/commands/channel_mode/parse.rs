//! A mode string and its arguments, split into the changes and list views
//! asked for, within the MODES limit on modes that take an argument.

use super::Request;
use crate::proto::modes::{self, ChannelModeKind};
use crate::proto::serialize::is_middle_safe;

/// Splits a mode string into requests, taking arguments in order. Modes
/// with an argument beyond `budget` (MODES in 005) are ignored, and so is a
/// mode missing its argument, as Modern IRC says. Unknown letters are
/// returned once each.
pub(super) fn parse<'a>(
    modestring: &str,
    args: &'a [String],
    budget: usize,
) -> (Vec<Request<'a>>, Vec<char>) {
    let mut args = Arguments {
        rest: args.iter().map(String::as_str).peekable(),
        used: 0,
        budget,
    };
    let mut requests = Vec::new();
    let mut unknown: Vec<char> = Vec::new();
    let mut adding = true;
    for letter in modestring.chars() {
        if matches!(letter, '+' | '-') {
            adding = letter == '+';
            continue;
        }
        let Some(kind) = modes::channel_mode(letter) else {
            if !unknown.contains(&letter) && is_middle_safe(letter.encode_utf8(&mut [0; 4])) {
                unknown.push(letter);
            }
            continue;
        };
        if let Some(request) = request(kind, letter, adding, &mut args, &requests) {
            requests.push(request);
        }
    }
    (requests, unknown)
}

/// What one known letter asks for, taking its argument if it has one;
/// `None` when it is ignored (no argument left, or its list is already
/// being shown).
fn request<'a, I: Iterator<Item = &'a str>>(
    kind: ChannelModeKind,
    letter: char,
    adding: bool,
    args: &mut Arguments<'a, I>,
    earlier: &[Request<'a>],
) -> Option<Request<'a>> {
    match kind {
        ChannelModeKind::Flag(flag) => Some(Request::Flag {
            adding,
            letter,
            flag,
        }),
        ChannelModeKind::List(kind) => {
            if args.rest.peek().is_none() {
                let shown = earlier
                    .iter()
                    .any(|r| matches!(r, Request::Show(k) if *k == kind));
                (!shown).then_some(Request::Show(kind))
            } else {
                let mask = args.take()?;
                Some(Request::Edit {
                    adding,
                    letter,
                    kind,
                    mask,
                })
            }
        }
        // Type B: unsetting takes an argument too, but works without one.
        ChannelModeKind::Key => {
            let key = match args.take() {
                Some(key) => key,
                None if !adding && args.count() => "",
                None => return None,
            };
            Some(Request::Key {
                adding,
                letter,
                key,
            })
        }
        // Type C: an argument only when set.
        ChannelModeKind::Limit if adding => Some(Request::Limit {
            letter,
            value: Some(args.take()?),
        }),
        ChannelModeKind::Limit => args.count().then_some(Request::Limit {
            letter,
            value: None,
        }),
        ChannelModeKind::Prefix { status, .. } => Some(Request::Member {
            adding,
            letter,
            status,
            nick: args.take()?,
        }),
    }
}

/// The mode arguments and how many variable modes were used so far.
struct Arguments<'a, I: Iterator<Item = &'a str>> {
    rest: std::iter::Peekable<I>,
    used: usize,
    budget: usize,
}

impl<'a, I: Iterator<Item = &'a str>> Arguments<'a, I> {
    /// The next argument, if the budget allows another variable mode.
    fn take(&mut self) -> Option<&'a str> {
        if self.used >= self.budget {
            return None;
        }
        let arg = self.rest.next()?;
        self.used += 1;
        Some(arg)
    }

    /// Counts a variable mode without an argument (`-l`); false when the
    /// budget is spent.
    fn count(&mut self) -> bool {
        if self.used >= self.budget {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ALICE, room};

    #[test]
    fn unknown_letters_get_472_once_each() {
        let mut h = room();
        h.send("alice", "MODE #room +xyxn");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 472 alice x :is unknown mode char to me",
                ":irc.test 472 alice y :is unknown mode char to me",
            ]
        );
    }

    #[test]
    fn key_removal_works_with_or_without_an_argument() {
        let mut h = room();
        h.send("alice", "MODE #room +k one");
        h.send("alice", "MODE #room -k wrong");
        h.send("alice", "MODE #room +k two");
        h.send("alice", "MODE #room -k");
        assert_eq!(
            h.take("bob"),
            [
                format!("{ALICE} MODE #room +k one"),
                format!("{ALICE} MODE #room -k *"),
                format!("{ALICE} MODE #room +k two"),
                format!("{ALICE} MODE #room -k *"),
            ]
        );
    }

    #[test]
    fn at_most_modes_per_command_arguments_are_used() {
        let mut h = room();
        h.send("alice", "MODE #room +bbbbbbbm a b c d e f g");
        let line = h.take("alice").remove(0);
        assert_eq!(
            line,
            format!("{ALICE} MODE #room +bbbbbbm a!*@* b!*@* c!*@* d!*@* e!*@* f!*@*")
        );
    }
}
