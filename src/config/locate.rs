//! Where a problem in the configuration is, and how to say it: TOML spans
//! and dotted key paths (`listen[1].address`) mapped to line and column,
//! and serde's and toml's messages reworded for an admin.

use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// Splits a dotted path such as `listen[1].address` into segments.
pub(super) fn key_path(dotted: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in dotted.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next() {
            segments.push(Segment::Key(key.to_owned()));
        }
        for index in pieces {
            if let Ok(index) = index.trim_end_matches(']').parse() {
                segments.push(Segment::Index(index));
            }
        }
    }
    segments
}

/// Where a key lives, for messages: "in [limits]", "in [[listen]] #2".
fn in_table(path: &[Segment]) -> String {
    if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {}", describe_table(path))
    }
}

/// A table, for messages: `[limits]`, `[[listen]] #2`, `` `listen[0].tls` ``.
fn describe_table(path: &[Segment]) -> String {
    match path {
        [] => "the document".to_owned(),
        [Segment::Key(table)] => format!("[{table}]"),
        [Segment::Key(table), Segment::Index(index)] => format!("[[{table}]] #{}", index + 1),
        _ => format!("`{}`", dotted(path)),
    }
}

/// A key with its table, for messages: `` `nick_length` in [limits] ``.
pub(super) fn describe_key(path: &[Segment]) -> String {
    match path.split_last() {
        None => "the document".to_owned(),
        Some((Segment::Key(key), [])) => format!("`{key}`"),
        Some((Segment::Key(key), table)) => format!("`{key}` {}", in_table(table)),
        Some((Segment::Index(index), [Segment::Key(table)])) => {
            format!("[[{table}]] #{}", index + 1)
        }
        Some((Segment::Index(index), parent)) => {
            format!("entry #{} of {}", index + 1, describe_key(parent))
        }
    }
}

fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Every key and value in the document with its path and span.
fn spans(document: &DeTable<'_>) -> Vec<(Vec<Segment>, Range<usize>)> {
    type Spans = Vec<(Vec<Segment>, Range<usize>)>;
    fn walk_table(table: &DeTable<'_>, path: &mut Vec<Segment>, out: &mut Spans) {
        for (key, value) in table.iter() {
            path.push(Segment::Key(key.get_ref().to_string()));
            out.push((path.clone(), key.span()));
            out.push((path.clone(), value.span()));
            walk_value(value.get_ref(), path, out);
            path.pop();
        }
    }
    fn walk_value(value: &DeValue<'_>, path: &mut Vec<Segment>, out: &mut Spans) {
        match value {
            DeValue::Table(table) => walk_table(table, path, out),
            DeValue::Array(array) => {
                for (index, item) in array.iter().enumerate() {
                    path.push(Segment::Index(index));
                    out.push((path.clone(), item.span()));
                    walk_value(item.get_ref(), path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk_table(document, &mut Vec::new(), &mut out);
    out
}

/// The innermost key or value whose span holds `span`.
pub(super) fn path_at(document: &DeTable<'_>, span: &Range<usize>) -> Vec<Segment> {
    spans(document)
        .into_iter()
        .filter(|(_, candidate)| candidate.start <= span.start && span.end <= candidate.end)
        .min_by_key(|(path, candidate)| (candidate.len(), std::cmp::Reverse(path.len())))
        .map(|(path, _)| path)
        .unwrap_or_default()
}

/// The span of the value at `path`, or of its nearest written ancestor when
/// the value comes from a default.
pub(super) fn span_of(document: &DeTable<'_>, path: &[Segment]) -> Range<usize> {
    let mut span = 0..0;
    let mut table = Some(document);
    let mut array = None;
    for segment in path {
        let found = match segment {
            Segment::Key(key) => table
                .and_then(|table| table.iter().find(|(k, _)| k.get_ref() == key))
                .map(|(_, v)| v),
            Segment::Index(index) => array.and_then(|array: &DeArray<'_>| array.get(*index)),
        };
        let Some(value) = found else { break };
        span = value.span();
        table = value.get_ref().as_table();
        array = value.get_ref().as_array();
    }
    span
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

pub(super) fn describe_syntax_error(message: &str, snippet: &str) -> String {
    if message == "duplicate key" && !snippet.is_empty() {
        format!("duplicate key `{snippet}`; each key may be set once per table")
    } else {
        format!("invalid TOML: {message}")
    }
}

/// Rewords a serde message about the value or key at `path` for an admin.
pub(super) fn describe_schema_error(message: &str, path: &[Segment]) -> String {
    let names = backticked(message);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (unknown, expected) = names
            .split_first()
            .map_or(("", &[][..]), |(first, rest)| (first.as_str(), rest));
        let table = path.split_last().map_or(&[][..], |(_, table)| table);
        let mut out = format!("unknown key `{unknown}` {}", in_table(table));
        if let Some(close) = closest(unknown, expected) {
            out.push_str(&format!(" (did you mean `{close}`?)"));
        }
        if expected.is_empty() || rest.contains("there are no fields") {
            out.push_str("; this table takes no keys");
        } else {
            out.push_str(&format!("; expected one of {}", expected.join(", ")));
        }
        return out;
    }
    if message.starts_with("missing field ") {
        let missing = names.first().map_or("", String::as_str);
        return format!(
            "{} is missing the required key `{missing}`",
            describe_table(path)
        );
    }
    if message.starts_with("unknown variant ") {
        let (unknown, expected) = names
            .split_first()
            .map_or(("", &[][..]), |(first, rest)| (first.as_str(), rest));
        return format!(
            "{} has the unknown value `{unknown}`; expected one of {}",
            describe_key(path),
            expected.join(", ")
        );
    }
    if message == "invalid socket address syntax" {
        return format!(
            "{} is not an address with a port, such as \"127.0.0.1:6667\" or \"[::1]:6667\"",
            describe_key(path)
        );
    }
    let invalid = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = invalid.and_then(|rest| rest.rsplit_once(", expected ")) {
        let mut out = format!(
            "{} must be {}, found {}",
            describe_key(path),
            describe_expected(expected),
            describe_found(found)
        );
        if let ([Segment::Key(array)], "map") = (path, found) {
            out.push_str(&format!(
                "; write [[{array}]], with two brackets, for each entry"
            ));
        }
        return out;
    }
    format!("{}: {message}", describe_key(path))
}

/// Serde's names for the expected types, in an admin's words.
fn describe_expected(expected: &str) -> String {
    match expected {
        "usize" | "u64" => "a whole number, 0 or more".to_owned(),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "path string" => "a path string".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// Serde's names for the value found, in an admin's words.
fn describe_found(found: &str) -> String {
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.to_owned(),
    }
}

/// The words between backticks, in order.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The expected key a misspelling most likely meant, if any is close.
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(a_char != *b_char);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
