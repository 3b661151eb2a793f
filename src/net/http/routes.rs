//! The answers that are not a WebSocket: the web client's files, the
//! operators' endpoints, and the errors.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, AUTHORIZATION, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::Operators;

/// What every answer carries.
pub(super) type Answer = Response<Full<Bytes>>;

/// One file of the web client, built into the binary.
pub(super) struct StaticFile {
    /// The file as it was at build time.
    pub body: &'static [u8],
    /// Its `Content-Type`, which `nosniff` makes the browser believe.
    pub content_type: &'static str,
}

const INDEX: StaticFile = StaticFile {
    body: include_bytes!("../../../web/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: StaticFile = StaticFile {
    body: include_bytes!("../../../web/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: StaticFile = StaticFile {
    body: include_bytes!("../../../web/style.css"),
    content_type: "text/css; charset=utf-8",
};

/// The page may load only its own files and open WebSockets; nothing may
/// frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The web client's file at `path`, if it is one.
pub(super) fn static_file(path: &str) -> Option<&'static StaticFile> {
    match path {
        "/" | "/index.html" => Some(&INDEX),
        "/app.js" => Some(&SCRIPT),
        "/style.css" => Some(&STYLE),
        _ => None,
    }
}

/// A file with the headers that keep a browser from caching a stale
/// client, guessing types, leaking the address or framing the page.
pub(super) fn serve_file(file: &StaticFile) -> Answer {
    let mut answer = answer(
        StatusCode::OK,
        file.content_type,
        Bytes::from_static(file.body),
    );
    let headers = answer.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    answer
}

/// Whether `path` is one of the operators' endpoints.
pub(super) fn is_operator_path(path: &str) -> bool {
    matches!(path, "/metrics" | "/healthz" | "/readyz")
}

/// `/metrics`, `/healthz` or `/readyz`, to those allowed: with `[metrics]
/// token` set, a request bearing it; without, a request `trusted_as_local`
/// (met directly on a loopback listener). Elsewhere the endpoints do not
/// exist (404), so a public listener or a proxy never shows them by accident.
pub(super) fn operator_endpoint(
    path: &str,
    headers: &HeaderMap,
    operators: &Operators,
    token: Option<&str>,
    trusted_as_local: bool,
) -> Answer {
    match token {
        Some(token) if !bears_token(headers, token) => {
            let mut refused = plain(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            refused
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return refused;
        }
        Some(_) => {}
        None if !trusted_as_local => return not_found(),
        None => {}
    }
    match path {
        "/metrics" => answer(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from((operators.render_metrics)()),
        ),
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        _ if operators.ready.is_ready() => plain(StatusCode::OK, "ready\n"),
        _ => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn bears_token(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Equal byte strings, in a time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// 404: no such file or endpoint here.
pub(super) fn not_found() -> Answer {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// 405: every route is read-only.
pub(super) fn method_not_allowed() -> Answer {
    let mut answer = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    answer
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    answer
}

/// A short text answer.
pub(super) fn plain(status: StatusCode, text: &'static str) -> Answer {
    answer(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(text.as_bytes()),
    )
}

/// An answer with a body of `content_type`.
pub(super) fn answer(status: StatusCode, content_type: &'static str, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
