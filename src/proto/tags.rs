//! Outbound message tags: the server-time format and adding a tag to a line
//! that is already serialized (labels and batch references are per reply).

use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, SecondsFormat, Utc};

use super::message::{Tag, escape_tag_value};

/// `YYYY-MM-DDThh:mm:ss.sssZ`, as the server-time spec requires.
pub fn server_time(time: SystemTime) -> String {
    let time: DateTime<Utc> = time.into();
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes `key[=escaped value]` into `out`.
pub fn write_tag(out: &mut String, key: &str, value: Option<&str>) {
    out.push_str(key);
    if let Some(value) = value.filter(|value| !value.is_empty()) {
        out.push('=');
        escape_tag_value(value, out);
    }
}

/// The client-only tags (`+key`) of an inbound message, escaped and joined
/// with `;`, or `None` when it has none. `deny` names tags not relayed.
pub fn client_only_tags(tags: &[Tag], deny: impl Fn(&str) -> bool) -> Option<String> {
    let mut out = String::new();
    for tag in tags
        .iter()
        .filter(|tag| tag.key.starts_with('+') && !deny(&tag.key[1..]))
    {
        if !out.is_empty() {
            out.push(';');
        }
        write_tag(&mut out, &tag.key, tag.value.as_deref());
    }
    (!out.is_empty()).then_some(out)
}

/// Adds one tag (already escaped `key=value`) in front of a serialized line.
pub fn prepend_tag(line: &[u8], tag: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(line.len() + tag.len() + 2);
    if let Some(rest) = line.strip_prefix(b"@") {
        out.put_u8(b'@');
        out.put_slice(tag.as_bytes());
        out.put_u8(b';');
        out.put_slice(rest);
    } else {
        out.put_u8(b'@');
        out.put_slice(tag.as_bytes());
        out.put_u8(b' ');
        out.put_slice(line);
    }
    out.freeze()
}

/// `@tags ` + `body`, or `body` alone when `tags` is empty.
pub fn with_tags(tags: &str, body: &Bytes) -> Bytes {
    if tags.is_empty() {
        return body.clone();
    }
    let mut out = BytesMut::with_capacity(tags.len() + 2 + body.len());
    out.put_u8(b'@');
    out.put_slice(tags.as_bytes());
    out.put_u8(b' ');
    out.put_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_time_has_milliseconds_and_z() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(server_time(time), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn prepend_tag_joins_existing_tags() {
        assert_eq!(
            &prepend_tag(b":s X\r\n", "label=a")[..],
            b"@label=a :s X\r\n"
        );
        assert_eq!(
            &prepend_tag(b"@time=t :s X\r\n", "label=a")[..],
            b"@label=a;time=t :s X\r\n"
        );
    }

    #[test]
    fn client_only_tags_are_escaped_and_filtered() {
        let tags = vec![
            Tag {
                key: "+draft/react".into(),
                value: Some("a b;c".into()),
            },
            Tag {
                key: "label".into(),
                value: Some("x".into()),
            },
            Tag {
                key: "+typing".into(),
                value: None,
            },
        ];
        assert_eq!(
            client_only_tags(&tags, |_| false).as_deref(),
            Some("+draft/react=a\\sb\\:c;+typing")
        );
        assert_eq!(
            client_only_tags(&tags, |key| key == "typing").as_deref(),
            Some("+draft/react=a\\sb\\:c")
        );
        assert_eq!(client_only_tags(&tags[1..2], |_| false), None);
    }
}
