//! STATS: `u` (uptime) for everyone; for operators `k` and `d` (server
//! bans), `o` (operator blocks) and `l` (each client's send queue and time
//! connected).

use crate::core::Refusal;
use crate::core::bans::{self, BanKind};
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

/// `STATS <query> [<server>]`
pub fn stats(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let letter = message.param(0).chars().next().unwrap_or('u');
    let oper = state
        .clients
        .get(&id)
        .is_some_and(|client| client.modes.oper);
    let shown = letter.to_string();
    if letter != 'u' && !oper {
        return Err(Refusal::not_an_operator());
    }
    match letter {
        'u' => uptime(state, id),
        'k' | 'K' => bans(state, id, BanKind::K),
        'd' | 'D' => bans(state, id, BanKind::D),
        'o' | 'O' => opers(state, id),
        'l' | 'L' => links(state, id),
        _ => {}
    }
    state.reply(
        id,
        numeric::RPL_ENDOFSTATS,
        &[&shown],
        "End of /STATS report",
    );
    Ok(())
}

fn uptime(state: &mut State, id: ClientId) {
    let up = state
        .clock
        .now()
        .duration_since(state.created)
        .unwrap_or_default()
        .as_secs();
    let text = format!(
        "Server Up {} days {}:{:02}:{:02}",
        up / 86_400,
        up / 3600 % 24,
        up / 60 % 60,
        up % 60
    );
    state.reply(id, numeric::RPL_STATSUPTIME, &[], &text);
}

fn bans(state: &mut State, id: ClientId, kind: BanKind) {
    let now = bans::now_secs(state);
    let (numeric, letter) = match kind {
        BanKind::K => (numeric::RPL_STATSKLINE, "K"),
        BanKind::D => (numeric::RPL_STATSDLINE, "D"),
    };
    let lines: Vec<_> = state
        .admin
        .bans
        .lines(kind)
        .iter()
        .filter(|line| line.active(now))
        .cloned()
        .collect();
    for line in lines {
        let expiry = match line.expires {
            Some(expires) => format!("{} min left", expires.saturating_sub(now).div_ceil(60)),
            None => "permanent".to_owned(),
        };
        let text = format!("{} (set by {}, {expiry})", line.reason, line.set_by);
        state.reply(id, numeric, &[letter, &line.mask], &text);
    }
}

fn opers(state: &mut State, id: ClientId) {
    let rows: Vec<(String, String)> = state
        .config
        .oper
        .iter()
        .map(|block| {
            let hosts = if block.hosts.is_empty() {
                "*@*".to_owned()
            } else {
                block.hosts.join(",")
            };
            (hosts, block.name.clone())
        })
        .collect();
    for (hosts, name) in rows {
        let line = state
            .numeric_line(id, numeric::RPL_STATSOLINE)
            .arg("O")
            .arg(&hosts)
            .arg("*")
            .arg(&name)
            .finish();
        state.send(id, line);
    }
}

fn links(state: &mut State, id: ClientId) {
    let now = state.clock.now();
    let mut rows: Vec<(String, String, String)> = state
        .clients
        .values()
        .filter(|client| client.registered)
        .map(|client| {
            let open = now
                .duration_since(client.connected_at)
                .unwrap_or_default()
                .as_secs();
            (
                format!("{}[{}@{}]", client.nick, client.user, client.host),
                client.outbox.queued_bytes().to_string(),
                open.to_string(),
            )
        })
        .collect();
    rows.sort();
    for (link, sendq, open) in rows {
        let text = format!("{open} seconds connected");
        state.reply(id, numeric::RPL_STATSLINKINFO, &[&link, &sendq], &text);
    }
}
