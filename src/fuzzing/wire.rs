//! Framing and parsing properties.
//!
//! Round trip: a line that parses is serialized back with
//! [`join`](crate::proto::serialize::join) and parsed again. "The same
//! message" means equal [`Message`]s (the owned form, after unescaping and
//! uppercasing) with tags compared as a map from key to value, where an
//! empty value and no value are one thing: `join` writes `a=` as `a`, which
//! message-tags defines as equal. Duplicate keys are already reduced to the
//! last one by the parser, and escaping is undone by it, so `a=x\sy` and the
//! serializer's own `a=x\sy` compare equal through their unescaped value
//! `x y`. Serializing the reparsed message must also give the same text: the
//! serializer's output is a fixed point.

use std::collections::BTreeMap;

use bytes::BytesMut;

use crate::proto::framing::{Frame, Framer, MAX_BODY, MAX_TAGS};
use crate::proto::message::parse;
use crate::proto::serialize::join;
use crate::proto::{Message, Tag};

/// Feeds `data` to a [`Framer`] in chunks of the given sizes (cycled; a 0
/// counts as 1) and returns every frame. Checks the buffer bound after each
/// chunk.
pub fn frames(data: &[u8], chunk_sizes: &[usize]) -> Result<Vec<Frame>, String> {
    let mut framer = Framer::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = data;
    let mut sizes = chunk_sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        buf.extend_from_slice(chunk);
        while let Some(frame) = framer.next_line(&mut buf) {
            frames.push(frame);
        }
        if buf.len() > MAX_TAGS + MAX_BODY {
            return Err(format!("{} bytes left buffered", buf.len()));
        }
    }
    Ok(frames)
}

/// Frames `data` whole and in the given chunks: the frames must be the same,
/// each line must be within the limits and hold no LF; then every line goes
/// through [`round_trip`] as the read task would decode it.
pub fn framing_and_parsing(data: &[u8], chunk_sizes: &[usize]) -> Result<(), String> {
    let whole = frames(data, &[data.len()])?;
    let chunked = frames(data, chunk_sizes)?;
    if whole != chunked {
        return Err(format!(
            "chunks {chunk_sizes:?} framed differently: {whole:?} vs {chunked:?}"
        ));
    }
    for frame in whole {
        let Frame::Line(line) = frame else {
            continue;
        };
        if line.is_empty() || line.contains(&b'\n') || line.len() > MAX_TAGS + MAX_BODY {
            return Err(format!("bad line from the framer: {line:?}"));
        }
        round_trip(&String::from_utf8_lossy(&line))?;
    }
    Ok(())
}

/// Parse → serialize → parse gives the same message (see the module docs).
/// A line that does not parse passes: not panicking is all it must do.
pub fn round_trip(line: &str) -> Result<(), String> {
    let Ok(first) = parse(line) else {
        return Ok(());
    };
    let first = first.to_owned();
    let text = serialize(&first);
    let second = parse(&text)
        .map_err(|error| format!("{line:?} serialized as {text:?}, which fails: {error}"))?
        .to_owned();
    if !same_message(&first, &second) {
        return Err(format!(
            "{line:?} serialized as {text:?} parses differently: {first:?} vs {second:?}"
        ));
    }
    let again = serialize(&second);
    if again != text {
        return Err(format!("{line:?}: serialized {text:?}, then {again:?}"));
    }
    Ok(())
}

/// A message written back with the generic serializer.
pub fn serialize(message: &Message) -> String {
    let tags: Vec<(&str, Option<&str>)> = message
        .tags
        .iter()
        .map(|tag| (tag.key.as_str(), tag.value.as_deref()))
        .collect();
    let params: Vec<&str> = message.params.iter().map(String::as_str).collect();
    join(&tags, message.source.as_deref(), &message.command, &params)
}

/// Equal, with tags as a map and an empty value the same as none.
pub fn same_message(a: &Message, b: &Message) -> bool {
    a.source == b.source
        && a.command == b.command
        && a.params == b.params
        && tag_map(&a.tags) == tag_map(&b.tags)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<&str, &str> {
    tags.iter()
        .map(|tag| (tag.key.as_str(), tag.value.as_deref().unwrap_or("")))
        .collect()
}
