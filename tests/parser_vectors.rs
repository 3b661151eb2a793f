//! The ircdocs parser-tests vectors (tests/data/parser-tests), run against
//! the proto module. Every failing vector is listed before the test fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rookery::proto::Casemapping;
use rookery::proto::mask::Mask;
use rookery::proto::message::{Message, parse, split_userhost};
use rookery::proto::serialize::join;
use rookery::proto::validate::is_valid_hostname;
use yaml_rust2::{Yaml, YamlLoader};

/// The `tests` list of one vector file.
fn vectors(file: &str) -> Vec<Yaml> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "parser-tests",
        file,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let tests = docs.first().and_then(|doc| doc["tests"].as_vec()).cloned();
    tests.unwrap_or_else(|| panic!("{} has no `tests` list", path.display()))
}

/// Fails the test with every collected failure, or passes if there are none.
fn report(file: &str, checked: usize, failures: &[String]) {
    assert!(checked > 0, "{file}: no vectors checked");
    assert!(
        failures.is_empty(),
        "{file}: {} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn string(yaml: &Yaml) -> Option<String> {
    yaml.as_str().map(str::to_owned)
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .map(|items| items.iter().filter_map(string).collect())
        .unwrap_or_default()
}

/// A YAML tags map; the vectors write a missing value as "".
fn tag_map(yaml: &Yaml) -> BTreeMap<String, String> {
    let Some(hash) = yaml.as_hash() else {
        return BTreeMap::new();
    };
    hash.iter()
        .filter_map(|(k, v)| Some((string(k)?, string(v)?)))
        .collect()
}

/// The parts of a message that the vectors compare, tags in key order and
/// with a missing value the same as an empty one.
#[derive(Debug, PartialEq, Eq)]
struct Atoms {
    tags: BTreeMap<String, String>,
    source: Option<String>,
    verb: String,
    params: Vec<String>,
}

impl Atoms {
    fn from_yaml(atoms: &Yaml) -> Atoms {
        Atoms {
            tags: tag_map(&atoms["tags"]),
            source: string(&atoms["source"]),
            verb: string(&atoms["verb"]).unwrap_or_default(),
            params: strings(&atoms["params"]),
        }
    }

    /// `verb` keeps the line's case: the vectors expect it as sent.
    fn parsed(line: &str) -> Result<Atoms, String> {
        let parsed = parse(line).map_err(|e| format!("parse error: {e}"))?;
        let owned: Message = parsed.to_owned();
        Ok(Atoms {
            tags: owned
                .tags
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect(),
            source: owned.source,
            verb: parsed.command.to_owned(),
            params: owned.params,
        })
    }
}

#[test]
fn msg_split() {
    let tests = vectors("msg-split.yaml");
    let mut failures = Vec::new();
    for test in &tests {
        let input = string(&test["input"]).unwrap_or_default();
        let expected = Atoms::from_yaml(&test["atoms"]);
        match Atoms::parsed(&input) {
            Ok(actual) if actual == expected => {}
            Ok(actual) => failures.push(format!(
                "  {input:?}\n    expected {expected:?}\n    got      {actual:?}"
            )),
            Err(e) => failures.push(format!("  {input:?}: {e}")),
        }
    }
    report("msg-split.yaml", tests.len(), &failures);
}

#[test]
fn msg_join() {
    let tests = vectors("msg-join.yaml");
    let mut failures = Vec::new();
    for test in &tests {
        let desc = string(&test["desc"]).unwrap_or_default();
        let atoms = Atoms::from_yaml(&test["atoms"]);
        let matches = strings(&test["matches"]);

        let tags: Vec<(&str, Option<&str>)> = atoms
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str()).filter(|v| !v.is_empty())))
            .collect();
        let params: Vec<&str> = atoms.params.iter().map(String::as_str).collect();
        let joined = join(&tags, atoms.source.as_deref(), &atoms.verb, &params);

        // Tag order is free, so a line that reads back like a listed one passes too.
        let reads_like_a_match = || {
            let Ok(ours) = Atoms::parsed(&joined) else {
                return false;
            };
            matches
                .iter()
                .any(|line| Atoms::parsed(line).is_ok_and(|theirs| theirs == ours))
        };
        if !matches.contains(&joined) && !reads_like_a_match() {
            failures.push(format!(
                "  {desc}\n    got {joined:?}\n    want one of {matches:?}"
            ));
        }
    }
    report("msg-join.yaml", tests.len(), &failures);
}

#[test]
fn userhost_split() {
    let tests = vectors("userhost-split.yaml");
    let mut failures = Vec::new();
    for test in &tests {
        let source = string(&test["source"]).unwrap_or_default();
        let atoms = &test["atoms"];
        let part = |key: &str| string(&atoms[key]).unwrap_or_default();
        let expected = (part("nick"), part("user"), part("host"));

        let (nick, user, host) = split_userhost(&source);
        let actual = (
            nick.to_owned(),
            user.unwrap_or("").to_owned(),
            host.unwrap_or("").to_owned(),
        );
        if actual != expected {
            failures.push(format!(
                "  {source:?}: expected {expected:?}, got {actual:?}"
            ));
        }
    }
    report("userhost-split.yaml", tests.len(), &failures);
}

#[test]
fn mask_match() {
    let tests = vectors("mask-match.yaml");
    let mut failures = Vec::new();
    let mut checked = 0;
    for test in &tests {
        let pattern = string(&test["mask"]).unwrap_or_default();
        let mask = Mask::new(&pattern, Casemapping::Ascii);
        for (key, should_match) in [("matches", true), ("fails", false)] {
            for subject in strings(&test[key]) {
                checked += 1;
                if mask.matches(&subject) != should_match {
                    let verb = if should_match {
                        "should match"
                    } else {
                        "should not match"
                    };
                    failures.push(format!("  mask {pattern:?} {verb} {subject:?}"));
                }
            }
        }
    }
    report("mask-match.yaml", checked, &failures);
}

#[test]
fn validate_hostname() {
    let tests = vectors("validate-hostname.yaml");
    let mut failures = Vec::new();
    for test in &tests {
        let host = string(&test["host"]).unwrap_or_default();
        let Some(valid) = test["valid"].as_bool() else {
            failures.push(format!("  {host:?}: vector has no `valid`"));
            continue;
        };
        if is_valid_hostname(&host) != valid {
            failures.push(format!("  {host:?}: expected valid = {valid}"));
        }
    }
    report("validate-hostname.yaml", tests.len(), &failures);
}
