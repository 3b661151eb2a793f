//! KLINE, UNKLINE, DLINE and UNDLINE: server bans by `user@host` mask or by
//! address range, with an optional duration in minutes:
//! `KLINE [minutes] <user@host|nick> [:reason]`, `DLINE [minutes] <ip[/bits]> [:reason]`.
//! Matching clients are disconnected at once; the lines are written to the
//! bans file so they survive a restart. On a network, K-lines (not
//! D-lines) reach every node, which applies them to its own users
//! (`core/network/klines.rs`).

use tracing::info;

use crate::core::Refusal;
use crate::core::bans::{self, BanKind, BanLine};
use crate::core::jobs;
use crate::core::network::klines;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::mask::Mask;
use crate::proto::{Casemapping, Cidr};

/// `KLINE [<minutes>] <user@host|nick> [<reason>]`
pub fn kline(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    add(state, id, message, BanKind::K)
}

/// `DLINE [<minutes>] <ip[/bits]> [<reason>]`
pub fn dline(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    add(state, id, message, BanKind::D)
}

/// `UNKLINE <user@host>`
pub fn unkline(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    remove(state, id, message.param(0), BanKind::K)
}

/// `UNDLINE <ip[/bits]>`
pub fn undline(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    remove(state, id, message.param(0), BanKind::D)
}

fn add(state: &mut State, id: ClientId, message: &Message, kind: BanKind) -> Result<(), Refusal> {
    let first = message.param(0);
    let (minutes, at) = match first.parse::<u64>() {
        Ok(minutes) if first.bytes().all(|b| b.is_ascii_digit()) => (minutes, 1),
        _ => (0, 0),
    };
    let target = message.param(at);
    if target.is_empty() {
        let command = if kind == BanKind::K { "KLINE" } else { "DLINE" };
        return Err(Refusal::need_more_params(command));
    }
    let Some(mask) = ban_mask(state, kind, target) else {
        let text = format!("DLINE: `{target}` is not an address or a range such as 192.0.2.0/24");
        state.server_notice(id, &text);
        return Ok(());
    };
    if kind == BanKind::K
        && let Err(problem) = klines::check_mask(&mask)
    {
        state.server_notice(id, &format!("KLINE: `{mask}` {problem}"));
        return Ok(());
    }
    let reason = match message.param(at + 1) {
        "" => "No reason given".to_owned(),
        reason => reason.to_owned(),
    };
    let now = bans::now_secs(state);
    let set_by = state
        .clients
        .get(&id)
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    let line = BanLine {
        mask: mask.clone(),
        reason: reason.clone(),
        set_by: set_by.clone(),
        set_at: now,
        expires: (minutes > 0).then(|| now.saturating_add(minutes.saturating_mul(60))),
    };
    if kind == BanKind::K {
        state.network_kline(&line);
    }
    store(state, kind, line);
    let duration = if minutes > 0 {
        format!("{minutes} min")
    } else {
        "permanent".to_owned()
    };
    info!(by = ?set_by, ?mask, %duration, ?reason, "{}-line added", kind.letter());
    let text = format!(
        "Added {}-line for {mask} ({duration}): {reason}",
        kind.letter()
    );
    state.server_notice(id, &text);
    jobs::save_bans(state);
    refuse_matching(state, kind);
    Ok(())
}

/// Puts `line` in place of any line of `kind` on the same mask; the caller
/// writes the bans file.
pub fn store(state: &mut State, kind: BanKind, line: BanLine) {
    let now = bans::now_secs(state);
    let bans = &mut state.admin.bans;
    bans.prune(now);
    let lines = bans.lines_mut(kind);
    lines.retain(|existing| !existing.mask.eq_ignore_ascii_case(&line.mask));
    lines.push(line);
}

/// Disconnects this node's clients that a line of `kind` now bans, each
/// with the reason of the line that matches it.
pub fn refuse_matching(state: &mut State, kind: BanKind) {
    let victims: Vec<(ClientId, String)> = state
        .clients
        .values()
        // A ban is this node's: users of other nodes are theirs to judge.
        .filter(|client| client.remote.is_none())
        .filter(|client| match kind {
            BanKind::K => client.registered,
            BanKind::D => true,
        })
        .filter_map(|client| {
            let line = bans::server_ban_for(state, client, kind)?;
            Some((client.id, line.reason.clone()))
        })
        .collect();
    for (victim, reason) in victims {
        bans::refuse_banned(state, victim, kind, &reason);
    }
}

/// Disconnects this node's registered clients that the K-line `line`
/// bans: what one new line changes, checked against that line alone.
pub fn refuse_matching_kline(state: &mut State, line: &BanLine) {
    let mask = Mask::new(&line.mask, Casemapping::Ascii);
    let victims: Vec<ClientId> = state
        .clients
        .values()
        .filter(|client| client.remote.is_none() && client.registered)
        .filter(|client| {
            bans::userhosts(client)
                .iter()
                .any(|userhost| mask.matches(userhost))
        })
        .map(|client| client.id)
        .collect();
    for victim in victims {
        bans::refuse_banned(state, victim, BanKind::K, &line.reason);
    }
}

/// The mask as stored: a K-line target without `@` is a nick (its host is
/// banned) or a host; a D-line target must be an address or range.
fn ban_mask(state: &State, kind: BanKind, target: &str) -> Option<String> {
    match kind {
        BanKind::D => target.parse::<Cidr>().ok().map(|_| target.to_owned()),
        BanKind::K if target.contains('@') => Some(target.to_owned()),
        BanKind::K => {
            let host = state
                .nicks
                .get(&state.fold(target))
                .and_then(|owner| state.clients.get(owner))
                .map_or(target, |client| client.real_host.as_str());
            Some(format!("*@{host}"))
        }
    }
}

fn remove(state: &mut State, id: ClientId, mask: &str, kind: BanKind) -> Result<(), Refusal> {
    // The other nodes may hold the line even when this one does not.
    if kind == BanKind::K {
        state.network_unkline(mask);
    }
    let removed = lift(state, kind, mask);
    let letter = kind.letter();
    let text = if removed {
        jobs::save_bans(state);
        info!(?mask, "{letter}-line removed");
        format!("Removed {letter}-line for {mask}")
    } else {
        format!("No {letter}-line for {mask}")
    };
    state.server_notice(id, &text);
    Ok(())
}

/// Drops the line of `kind` on `mask`; false when there was none. The
/// caller writes the bans file.
pub fn lift(state: &mut State, kind: BanKind, mask: &str) -> bool {
    let now = bans::now_secs(state);
    let bans = &mut state.admin.bans;
    bans.prune(now);
    let lines = bans.lines_mut(kind);
    let before = lines.len();
    lines.retain(|existing| !existing.mask.eq_ignore_ascii_case(mask));
    lines.len() < before
}
