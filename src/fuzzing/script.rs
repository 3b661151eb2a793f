//! Fuzz bytes as a script: each step is [`STEP_BYTES`] bytes naming a client
//! slot, a command and its arguments from small alphabets. The alphabets are
//! small on purpose: nicks that differ only in case (`ann`/`Ann`, and `c[`/
//! `c{` under rfc1459) and rooms that fold together (`#a`/`#A`) make
//! collisions, re-joins and kicks of the last operator common.

use super::Harness;
use crate::config::Config;
use crate::proto::Casemapping;

/// How many clients a script drives.
pub const SLOTS: usize = 4;
/// What the harness calls the client in each slot.
const SLOT_NAMES: [&str; SLOTS] = ["slot0", "slot1", "slot2", "slot3"];
/// Bytes per step: slot, command, then four argument bytes.
pub const STEP_BYTES: usize = 6;

const NICKS: &[&str] = &["ann", "Ann", "bob", "BOB", "c[", "c{", "dee", "9no"];
const ROOMS: &[&str] = &["#a", "#A", "#b", "&c", "#a,#b", "#b,&c,#A", "0", "nope"];
const MODES: &[&str] = &[
    "+o", "-o", "+v", "-v", "+ov", "-ov", "+i", "-i", "+k", "-k", "+l", "-l", "+b", "-b", "b",
    "+e", "-e", "+I", "+ntmsp", "-ntmsp", "+kl", "+bbbb", "+x", "+C", "-C", "",
];
const MODE_ARGS: &[&str] = &[
    "ann",
    "bob",
    "BOB",
    "c{",
    "key",
    "2",
    "0",
    "*!*@*",
    "ann!*@*",
    "*!~bob@*",
    "127.0.0.1",
    ":x",
    "~m:bob",
    "~m:*!*@*",
    "~z:x",
];
const TEXTS: &[&str] = &["hi", "", "a b", ":colon", "\x01PING x\x01"];
/// Tag sections a message may carry, hostile ones included: a raw CR that
/// would start a forged line, NUL and ESC in values, keys off the grammar.
const TAGS: &[&str] = &[
    "",
    "@+typing=active ",
    "@+x\r@account=admin;+y ",
    "@+nul=a\0b;+esc=\x1b[2J;+ok=a\\sb ",
    "@+k\x01=v;+=2;+\u{fffd}=1;+draft/reply=1 ",
    "@batch=m ",
    "@batch=m;draft/multiline-concat ",
];

/// One thing that happens to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The client in `slot` sends `line`.
    Line { slot: usize, line: String },
    /// The connection in `slot` ends without a QUIT.
    Close { slot: usize },
}

/// A configuration with small limits, so that a short script reaches them.
pub fn config(rfc1459: bool) -> Config {
    let mut config = Config::default();
    config.server.name = "irc.test".into();
    if rfc1459 {
        config.server.casemapping = Casemapping::Rfc1459;
    }
    config.limits.max_list_entries = 3;
    config.limits.channels_per_client = 3;
    config
}

fn pick(list: &[&'static str], byte: u8) -> &'static str {
    list[usize::from(byte) % list.len()]
}

/// Decodes one step.
pub fn step(bytes: [u8; STEP_BYTES]) -> Step {
    let [slot, verb, a, b, c, d] = bytes;
    let slot = usize::from(slot) % SLOTS;
    let nick = pick(NICKS, a);
    let room = pick(ROOMS, b);
    let text = pick(TEXTS, c);
    let line = match verb % 13 {
        0 => format!("NICK {nick}"),
        1 => format!("USER {nick} 0 * :{text}"),
        2 => format!("JOIN {room}"),
        3 => format!("JOIN {room} {}", pick(MODE_ARGS, c)),
        4 => format!("PART {room} :{text}"),
        5 => {
            let target = if d & 0x80 == 0 { room } else { nick };
            let mut line = format!("MODE {target} {}", pick(MODES, c));
            for i in 0..(d & 3) {
                line.push(' ');
                line.push_str(pick(MODE_ARGS, (d >> 2).wrapping_add(i * 5)));
            }
            line
        }
        6 => format!("KICK {room} {nick} :{text}"),
        7 => format!("INVITE {nick} {room}"),
        8 if c & 1 == 0 => format!("TOPIC {room}"),
        8 => format!("TOPIC {room} :{text}"),
        9 => format!("QUIT :{text}"),
        10 => format!(
            "{}PRIVMSG {} :{text}",
            pick(TAGS, d >> 1),
            if d & 1 == 0 { room } else { nick }
        ),
        // draft/multiline: the capabilities, and a batch opened or closed.
        11 => match c % 4 {
            0 => "CAP REQ :message-tags".to_owned(),
            1 => "CAP REQ :batch draft/multiline echo-message".to_owned(),
            2 => format!(
                "BATCH +m draft/multiline {}",
                if d & 1 == 0 { room } else { nick }
            ),
            _ => "BATCH -m".to_owned(),
        },
        _ => return Step::Close { slot },
    };
    Step::Line { slot, line }
}

/// Decodes a whole script; trailing bytes short of a step are ignored.
pub fn decode(data: &[u8]) -> impl Iterator<Item = Step> + '_ {
    data.chunks_exact(STEP_BYTES).map(|chunk| {
        let mut bytes = [0; STEP_BYTES];
        bytes.copy_from_slice(chunk);
        step(bytes)
    })
}

/// Runs a script: the first byte picks the casemapping, the rest are steps.
/// The invariants are checked after every step; the error names the step.
pub fn run(data: &[u8]) -> Result<(), String> {
    let Some((&first, steps)) = data.split_first() else {
        return Ok(());
    };
    let mut harness = Harness::with_config(config(first & 1 == 1));
    for (i, step) in decode(steps).enumerate() {
        match &step {
            Step::Line { slot, line } => harness.send_fuzzed(SLOT_NAMES[*slot], line),
            Step::Close { slot } => harness.close(SLOT_NAMES[*slot]),
        }
        harness
            .check()
            .map_err(|error| format!("after step {i} ({step:?}): {error}"))?;
    }
    Ok(())
}
