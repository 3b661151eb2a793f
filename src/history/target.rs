//! What a stored line belongs to: a room, or a private conversation
//! between two parties, each an account (a party that was logged in) or a
//! nick. The store keeps it as one text column; the conversion both ways
//! is here and nowhere else.

use std::borrow::Cow;

use crate::proto::{Casemapping, Folded};

/// A room or a private conversation, as history keys them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistoryTarget {
    /// A room, by its casefolded name.
    Room(Folded),
    /// A private conversation between two parties.
    Private(Conversation),
}

/// One side of a private conversation: the account a party was logged in
/// to, or the nick of one that was not. An account's side is read from
/// any connection logged in to it, a nick's only by whoever holds the nick
/// (from the moment it took it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    /// A casefolded nick.
    Nick(Folded),
    /// A casefolded account name.
    Account(Folded),
}

/// What marks an account in the `target` column: no nick or room name
/// starts with it, so `@alice` and the nick `alice` never meet.
const ACCOUNT_MARK: char = '@';

impl Party {
    /// The folded nick or account name, without its mark.
    pub fn name(&self) -> &Folded {
        match self {
            Party::Nick(name) | Party::Account(name) => name,
        }
    }

    /// The party as the store writes it: a nick as it is, an account
    /// after [`ACCOUNT_MARK`].
    pub(crate) fn column(&self) -> Cow<'_, str> {
        match self {
            Party::Nick(nick) => Cow::Borrowed(nick.as_str()),
            Party::Account(account) => Cow::Owned(format!("{ACCOUNT_MARK}{}", account.as_str())),
        }
    }

    fn from_column(column: &str) -> Party {
        match column.strip_prefix(ACCOUNT_MARK) {
            Some(account) => Party::Account(stored(account)),
            None => Party::Nick(stored(column)),
        }
    }
}

/// Two parties, the lesser first, so either side's view of a conversation
/// is the same one; only [`HistoryTarget::private`] makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conversation {
    lesser: Party,
    greater: Party,
}

impl Conversation {
    /// Both parties, the lesser first.
    pub fn parties(&self) -> (&Party, &Party) {
        (&self.lesser, &self.greater)
    }
}

impl HistoryTarget {
    /// The conversation between two parties, whichever of them speaks.
    pub fn private(a: Party, b: Party) -> HistoryTarget {
        let (lesser, greater) = if a <= b { (a, b) } else { (b, a) };
        HistoryTarget::Private(Conversation { lesser, greater })
    }

    /// The `target` column: a room's name, or a conversation's two parties
    /// in order, joined by a space (which no nick or room name contains).
    pub(crate) fn column(&self) -> Cow<'_, str> {
        match self {
            HistoryTarget::Room(room) => Cow::Borrowed(room.as_str()),
            HistoryTarget::Private(conversation) => {
                let (lesser, greater) = conversation.parties();
                Cow::Owned(format!("{} {}", lesser.column(), greater.column()))
            }
        }
    }

    /// A `target` column read back.
    pub(crate) fn from_column(column: &str) -> HistoryTarget {
        match column.split_once(' ') {
            Some((a, b)) => HistoryTarget::private(Party::from_column(a), Party::from_column(b)),
            None => HistoryTarget::Room(stored(column)),
        }
    }
}

/// A name as the store keeps it: folded when it was written, under the
/// casemapping of the day. Both casemappings fold `A`–`Z`, so the stored
/// name has none, and folding it again under ascii changes nothing: this
/// only gives the name back its type.
fn stored(name: &str) -> Folded {
    Casemapping::Ascii.fold(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_the_same_whichever_side_speaks() {
        let alice = Casemapping::Ascii.fold("Alice");
        let bob = Casemapping::Ascii.fold("bob");
        let one = HistoryTarget::private(Party::Nick(alice.clone()), Party::Nick(bob.clone()));
        let other_way =
            HistoryTarget::private(Party::Nick(bob.clone()), Party::Nick(alice.clone()));
        assert_eq!(one, other_way);
        assert_eq!(one.column(), "alice bob");
        let accounts = HistoryTarget::private(Party::Account(bob), Party::Account(alice.clone()));
        assert_eq!(accounts.column(), "@alice @bob");
        let mixed = HistoryTarget::private(Party::Account(alice), Party::Nick(folded("bob")));
        assert_eq!(mixed.column(), "bob @alice");
    }

    #[test]
    fn an_account_and_a_nick_of_the_same_name_are_two_parties() {
        let nick = HistoryTarget::private(Party::Nick(folded("alice")), Party::Nick(folded("bob")));
        let account =
            HistoryTarget::private(Party::Account(folded("alice")), Party::Nick(folded("bob")));
        assert_ne!(nick, account);
        assert_ne!(nick.column(), account.column());
        assert_eq!(HistoryTarget::from_column(&account.column()), account);
    }

    fn folded(name: &str) -> Folded {
        Casemapping::Ascii.fold(name)
    }

    #[test]
    fn the_column_reads_back_as_the_target_it_was_written_from() {
        for mapping in [Casemapping::Ascii, Casemapping::Rfc1459] {
            let room = HistoryTarget::Room(mapping.fold("#Room[1]"));
            let conversation = HistoryTarget::private(
                Party::Nick(mapping.fold("Zed^")),
                Party::Nick(mapping.fold("[Alice]")),
            );
            let accounts = HistoryTarget::private(
                Party::Account(mapping.fold("Zed^")),
                Party::Nick(mapping.fold("[Alice]")),
            );
            for target in [room, conversation, accounts] {
                assert_eq!(HistoryTarget::from_column(&target.column()), target);
            }
        }
        assert_eq!(
            HistoryTarget::from_column("#room"),
            HistoryTarget::Room(Casemapping::Ascii.fold("#room"))
        );
        assert!(matches!(
            HistoryTarget::from_column("alice bob"),
            HistoryTarget::Private(..)
        ));
    }
}
