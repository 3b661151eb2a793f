//! Replays every transcript under tests/transcripts/ against a fresh
//! in-process server. The format is described in tests/transcripts/README.md.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{Client, TempDir, test_config};
use regex::Regex;

/// One line of a transcript, with where it came from.
#[derive(Debug)]
struct Step {
    line_no: usize,
    client: String,
    action: Action,
}

#[derive(Debug)]
enum Action {
    Send(String),
    Expect { pattern: String, skip_others: bool },
    Register,
    Quiet,
    Closed,
    Disconnect,
}

struct Transcript {
    path: PathBuf,
    config: String,
    steps: Vec<Step>,
}

fn parse_transcript(path: &Path) -> Result<Transcript, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config = String::new();
    let mut steps = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let where_ = || format!("{}:{line_no}", path.display());
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(setting) = raw.strip_prefix("%config ") {
            if !steps.is_empty() {
                return Err(format!("{}: %config after the first client line", where_()));
            }
            config.push_str(setting);
            config.push('\n');
            continue;
        }
        let name_end = raw
            .find(['>', '<', '!'])
            .ok_or_else(|| format!("{}: no client action", where_()))?;
        let client = raw[..name_end].to_owned();
        if client.is_empty() || !client.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{}: bad client name {client:?}", where_()));
        }
        let rest = &raw[name_end..];
        let action = if let Some(line) = rest.strip_prefix("> ") {
            Action::Send(line.to_owned())
        } else if let Some(pattern) = rest.strip_prefix("<~ ") {
            Action::Expect {
                pattern: pattern.to_owned(),
                skip_others: true,
            }
        } else if let Some(pattern) = rest.strip_prefix("< ") {
            Action::Expect {
                pattern: pattern.to_owned(),
                skip_others: false,
            }
        } else {
            match rest {
                "! register" => Action::Register,
                "! quiet" => Action::Quiet,
                "! closed" => Action::Closed,
                "! disconnect" => Action::Disconnect,
                _ => return Err(format!("{}: unknown action {rest:?}", where_())),
            }
        };
        steps.push(Step {
            line_no,
            client,
            action,
        });
    }
    Ok(Transcript {
        path: path.to_owned(),
        config,
        steps,
    })
}

/// Turns a pattern with placeholders into an anchored regex.
fn compile(pattern: &str, server: &str) -> Regex {
    let mut regex = String::from("^");
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let (literal, tail) = rest.split_at(start);
        regex.push_str(&regex::escape(literal));
        let Some(end) = tail.find('}') else {
            regex.push_str(&regex::escape(tail));
            rest = "";
            break;
        };
        match &tail[1..end] {
            "server" => regex.push_str(&regex::escape(server)),
            "*" => regex.push_str(".*"),
            "word" => regex.push_str(r"\S+"),
            name if name.starts_with('=') => {
                let _ = write!(regex, r"(?P<{}>[^\s;]+)", &name[1..]);
            }
            "num" => regex.push_str("[0-9]+"),
            _ => regex.push_str(&regex::escape(&tail[..=end])),
        }
        rest = &tail[end + 1..];
    }
    regex.push_str(&regex::escape(rest));
    regex.push('$');
    Regex::new(&regex).expect("escaped pattern compiles")
}

/// `line` with each `{$name}` replaced by what `{=name}` captured.
fn substitute(line: &str, captured: &HashMap<String, String>) -> String {
    captured
        .iter()
        .fold(line.to_owned(), |line, (name, value)| {
            line.replace(&format!("{{${name}}}"), value)
        })
}

/// Keeps what the named groups of `regex` matched in `line`.
fn capture(regex: &Regex, line: &str, captured: &mut HashMap<String, String>) {
    let Some(found) = regex.captures(line) else {
        return;
    };
    for name in regex.capture_names().flatten() {
        if let Some(value) = found.name(name) {
            captured.insert(name.to_owned(), value.as_str().to_owned());
        }
    }
}

/// Replays one transcript; returns a readable failure.
async fn replay(transcript: &Transcript) -> Result<(), String> {
    // `{tmp}` in a %config value: a directory of this run's own, removed after.
    let tmp = TempDir::new("transcript");
    let config_text = transcript
        .config
        .replace("{tmp}", &tmp.0.display().to_string());
    let config = test_config(&config_text);
    let server_name = config.server.name.clone();
    let server = rookery::start(config)
        .await
        .map_err(|e| format!("server did not start: {e}"))?;
    let addr = server.local_addrs()[0];
    let mut clients: HashMap<String, Client> = HashMap::new();
    let mut pings = 0;
    // What `{=name}` placeholders captured, for `{$name}` to stand for.
    let mut captured: HashMap<String, String> = HashMap::new();
    for step in &transcript.steps {
        if !clients.contains_key(&step.client) {
            clients.insert(step.client.clone(), Client::connect(addr).await);
        }
        let Some(client) = clients.get_mut(&step.client) else {
            continue;
        };
        let fail = |client: &Client, what: String| {
            let mut report = format!("{}:{}: {what}\n", transcript.path.display(), step.line_no);
            let _ = writeln!(report, "  {} received (last lines):", step.client);
            let from = client.received.len().saturating_sub(12);
            for line in &client.received[from..] {
                let _ = writeln!(report, "    {line}");
            }
            report
        };
        match &step.action {
            Action::Send(line) => client.send(&substitute(line, &captured)).await,
            Action::Expect {
                pattern,
                skip_others,
            } => {
                let regex = compile(&substitute(pattern, &captured), &server_name);
                loop {
                    match client.next_line().await {
                        Some(line) if regex.is_match(&line) => {
                            capture(&regex, &line, &mut captured);
                            break;
                        }
                        Some(_) if *skip_others => continue,
                        Some(line) => {
                            return Err(fail(
                                client,
                                format!("expected {pattern:?}, got {line:?}"),
                            ));
                        }
                        None => {
                            return Err(fail(client, format!("expected {pattern:?}, got nothing")));
                        }
                    }
                }
            }
            Action::Register => {
                client.send(&format!("NICK {}", step.client)).await;
                client
                    .send(&format!("USER {0} 0 * :{0}", step.client))
                    .await;
                loop {
                    match client.next_line().await {
                        Some(line) if line.contains(" 376 ") || line.contains(" 422 ") => break,
                        Some(_) => continue,
                        None => return Err(fail(client, "registration did not finish".into())),
                    }
                }
            }
            Action::Quiet => {
                pings += 1;
                let token = format!("quiet-{pings}");
                client.send(&format!("PING :{token}")).await;
                let pong = format!(":{server_name} PONG {server_name} :{token}");
                match client.next_line().await {
                    Some(line) if line == pong => {}
                    Some(line) => {
                        return Err(fail(client, format!("expected nothing more, got {line:?}")));
                    }
                    None => {
                        return Err(fail(
                            client,
                            "expected the PONG of a quiet check, got nothing".into(),
                        ));
                    }
                }
            }
            Action::Closed => {
                let before = client.received.len();
                if !client.is_closed().await {
                    return Err(fail(client, "expected the connection to be closed".into()));
                }
                if client.received.len() > before {
                    return Err(fail(client, "lines arrived before the close".into()));
                }
            }
            Action::Disconnect => {
                clients.remove(&step.client);
            }
        }
    }
    drop(clients);
    server.shutdown().await;
    Ok(())
}

fn transcript_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            transcript_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "irc") {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transcript_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files = Vec::new();
    transcript_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no transcripts under {}", root.display());
    let filter = std::env::var("TRANSCRIPT").unwrap_or_default();
    let mut tasks = tokio::task::JoinSet::new();
    for file in files
        .into_iter()
        .filter(|f| f.to_string_lossy().contains(&filter))
    {
        tasks.spawn(async move {
            let result = match parse_transcript(&file) {
                Ok(transcript) => replay(&transcript).await,
                Err(error) => Err(error),
            };
            (file, result)
        });
    }
    let mut failures = Vec::new();
    let mut passed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => passed += 1,
            Ok((_, Err(report))) => failures.push(report),
            Err(error) => failures.push(format!("a transcript task panicked: {error}")),
        }
    }
    eprintln!("{passed} transcripts replayed");
    assert!(
        failures.is_empty(),
        "{} transcript(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn patterns_match_placeholders_and_escape_the_rest() {
    let regex = compile(":{server} 001 alice :Welcome {*}", "irc.test");
    assert!(regex.is_match(":irc.test 001 alice :Welcome to it"));
    assert!(!regex.is_match(":irc.testx 001 alice :Welcome"));
    assert!(compile("a.b {num}", "s").is_match("a.b 42"));
    assert!(!compile("a.b {num}", "s").is_match("axb 42"));
    assert!(!compile("{word}", "s").is_match("two words"));
}

#[test]
fn a_captured_value_stands_in_later_lines() {
    let mut captured = HashMap::new();
    let regex = compile("@msgid={=id} :a PRIVMSG #r :hi", "s");
    assert!(regex.is_match("@msgid=x1 :a PRIVMSG #r :hi"));
    capture(&regex, "@msgid=x1 :a PRIVMSG #r :hi", &mut captured);
    assert_eq!(substitute("REDACT #r {$id}", &captured), "REDACT #r x1");
    let later = compile(&substitute("@batch=b;msgid={$id} {*}", &captured), "s");
    assert!(later.is_match("@batch=b;msgid=x1 :a PRIVMSG #r :hi"));
    assert!(!later.is_match("@batch=b;msgid=x2 :a PRIVMSG #r :hi"));
}
