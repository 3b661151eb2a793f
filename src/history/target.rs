//! What a stored line belongs to: a room, or a private conversation
//! between two nicks. The store keeps it as one text column; the
//! conversion both ways is here and nowhere else.

use std::borrow::Cow;

use crate::proto::{Casemapping, Folded};

/// A room or a private conversation, as history keys them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistoryTarget {
    /// A room, by its casefolded name.
    Room(Folded),
    /// A private conversation between two casefolded nicks.
    Private(Conversation),
}

/// Two nicks, the lesser first, so either side's view of a conversation
/// is the same one; only [`HistoryTarget::private`] makes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conversation {
    lesser: Folded,
    greater: Folded,
}

impl Conversation {
    /// Both parties, the lesser first.
    pub fn parties(&self) -> (&Folded, &Folded) {
        (&self.lesser, &self.greater)
    }
}

impl HistoryTarget {
    /// The conversation between two nicks, whichever of them speaks.
    pub(crate) fn private(a: &Folded, b: &Folded) -> HistoryTarget {
        let (lesser, greater) = if a <= b { (a, b) } else { (b, a) };
        HistoryTarget::Private(Conversation {
            lesser: lesser.clone(),
            greater: greater.clone(),
        })
    }

    /// The `target` column: a room's name, or a conversation's two nicks
    /// in order, joined by a space (which no nick or room name contains).
    pub(crate) fn column(&self) -> Cow<'_, str> {
        match self {
            HistoryTarget::Room(room) => Cow::Borrowed(room.as_str()),
            HistoryTarget::Private(conversation) => {
                let (lesser, greater) = conversation.parties();
                Cow::Owned(format!("{} {}", lesser.as_str(), greater.as_str()))
            }
        }
    }

    /// A `target` column read back.
    pub(crate) fn from_column(column: &str) -> HistoryTarget {
        match column.split_once(' ') {
            Some((a, b)) => HistoryTarget::private(&stored(a), &stored(b)),
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
        let one = HistoryTarget::private(&alice, &bob);
        assert_eq!(one, HistoryTarget::private(&bob, &alice));
        assert_eq!(one.column(), "alice bob");
    }

    #[test]
    fn the_column_reads_back_as_the_target_it_was_written_from() {
        for mapping in [Casemapping::Ascii, Casemapping::Rfc1459] {
            let room = HistoryTarget::Room(mapping.fold("#Room[1]"));
            let conversation =
                HistoryTarget::private(&mapping.fold("Zed^"), &mapping.fold("[Alice]"));
            for target in [room, conversation] {
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
