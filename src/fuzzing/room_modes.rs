//! Channel MODE strings from a fuzzer against one small room: `alice`
//! (operator) and `bob` (voiced) are in `#r` with a ban and a key set;
//! `carol` is outside. Each input line is one MODE from one of them.

use super::Harness;
use super::script::config;

const NICKS: [&str; 3] = ["alice", "bob", "carol"];

/// Runs the room setup, then one `MODE #r …` per line of `data`: the first
/// byte of a line picks the sender, the rest (bytes as the read task would
/// decode them) follows `MODE #r `. Checks the invariants after each.
pub fn run(data: &[u8]) -> Result<(), String> {
    let Some((&first, data)) = data.split_first() else {
        return Ok(());
    };
    let mut harness = Harness::with_config(config(first & 1 == 1));
    for nick in NICKS {
        harness.send_fuzzed(nick, &format!("NICK {nick}"));
        harness.send_fuzzed(nick, &format!("USER {nick} 0 * :{nick}"));
    }
    harness.send_fuzzed("alice", "JOIN #r");
    harness.send_fuzzed("bob", "JOIN #r");
    harness.send_fuzzed("alice", "MODE #r +vbk bob *!*@evil.example key");
    harness.check()?;

    for line in data.split(|&b| b == b'\n') {
        let Some((&sender, modes)) = line.split_first() else {
            continue;
        };
        let modes = String::from_utf8_lossy(modes);
        let line = format!("MODE #r {modes}");
        harness.send_fuzzed(NICKS[usize::from(sender) % NICKS.len()], &line);
        harness
            .check()
            .map_err(|error| format!("after {line:?}: {error}"))?;
    }
    Ok(())
}
