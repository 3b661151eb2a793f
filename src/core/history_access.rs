//! Who may read which stored lines: the one rule that playback on join,
//! CHATHISTORY and CHATHISTORY TARGETS all follow.
//!
//! - A room's lines are read by its members only, and never from before
//!   the room's current incarnation: a room that empties disappears, and
//!   one created later under the same name (or after a restart) is a new
//!   room that has said nothing yet. A standing `[[room]]` never
//!   disappears: it is one incarnation for ever.
//! - Within that, a room's history is shared by default: a joiner reads
//!   what was said before it came (playback shows the last lines, and
//!   CHATHISTORY at least as much). A room can be made join-time-only, for
//!   every room with `[history] visibility = "since_join"` or for one
//!   standing room with its `history = "since_join"`: a member then reads
//!   only what was said since it joined, and is played nothing back.
//! - A private conversation is read by the two nicks that hold it, each
//!   from the moment it took its nick: whoever had the nick before held
//!   the earlier lines, not the reader.
//!
//! A floor is the oldest time (milliseconds, inclusive) a reader may see.
//! Times are stored to the millisecond, so a line from the very
//! millisecond of a join cannot be ordered against it: a join-time floor
//! starts one millisecond later, as the line may have come before. A room
//! or nick that starts in the very millisecond another one ended likewise
//! starts one later ([`starting_floor`]), so the earlier one's last lines
//! stay out.

use super::{ClientId, State};
use crate::config::HistoryVisibility;
use crate::history;
use crate::proto::Folded;

/// The oldest time `id` may read in `room`, or `None` if it may not read
/// the room at all (it is not a member, or the room does not exist).
pub fn room_floor(state: &State, id: ClientId, room: &Folded) -> Option<i64> {
    let channel = state.channels.get(room)?;
    channel.members.get(&id)?;
    let incarnation = channel.history_floor;
    let visibility = channel.history.unwrap_or(state.config.history.visibility);
    Some(match visibility {
        HistoryVisibility::Shared => incarnation,
        HistoryVisibility::SinceJoin => {
            let joined = channel
                .joined
                .get(&id)
                .copied()
                .unwrap_or_else(|| state.clock.now());
            incarnation.max(after(joined))
        }
    })
}

/// The oldest time `id` may read its private conversations from, or `None`
/// when they are not kept.
pub fn conversation_floor(state: &State, id: ClientId) -> Option<i64> {
    if !state.config.history.private_messages {
        return None;
    }
    Some(state.clients.get(&id)?.nick_floor)
}

/// The floor of a history that starts `now` (a room's incarnation, a
/// client's nick): `now`, unless one of the same kind ended at `ended_ms`
/// in this very millisecond, whose last lines may share it.
pub fn starting_floor(now: std::time::SystemTime, ended_ms: i64) -> i64 {
    let now = history::millis(now);
    if now <= ended_ms {
        ended_ms.saturating_add(1)
    } else {
        now
    }
}

/// The first millisecond surely after `time`.
fn after(time: std::time::SystemTime) -> i64 {
    history::millis(time).saturating_add(1)
}
