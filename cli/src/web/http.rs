//! HTTP/1.1 on one blocking connection, as much as the page needs: one request read with hard
//! limits (parsed by `httparse`), one response written, then the connection closes.
//!
//! Invariants: a request head is at most [`MAX_HEAD`] bytes and a body at most [`MAX_BODY`];
//! the whole request must arrive within the deadline the caller gives (a client sending a byte
//! at a time cannot hold the connection longer); a header that decides a check (`Host`,
//! `Origin`, `Authorization`, `Content-Length`, `Content-Type`) may appear once; a chunked or
//! otherwise encoded body is refused; every response says `Connection: close` and carries the
//! headers that keep the page to itself ([`COMMON_HEADERS`]).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Longest request head (request line and headers).
pub const MAX_HEAD: usize = 16 << 10;
/// Longest request body (the page sends a name or a key: a path is at most 1 KiB).
pub const MAX_BODY: usize = 16 << 10;
/// Most headers in a request (a browser sends about 20).
pub const MAX_HEADERS: usize = 64;

/// Headers that may appear once only: each decides a check.
const SINGLE: [&str; 5] = [
    "host",
    "origin",
    "authorization",
    "content-length",
    "content-type",
];

/// What every response carries: no caching, no sniffing, no referrer, no framing, no use by
/// other origins.
pub const COMMON_HEADERS: &str = "Connection: close\r\n\
    Cache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\n\
    Referrer-Policy: no-referrer\r\n\
    X-Frame-Options: DENY\r\n\
    Cross-Origin-Resource-Policy: same-origin\r\n\
    Cross-Origin-Opener-Policy: same-origin\r\n";

/// The page's content security policy: its own scripts, styles and connections only; no
/// inline script or handler ever runs, whatever a name contains.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Header names (lower case) and values (those that are UTF-8).
    headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request was read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed before a whole request.
    Closed,
    /// The deadline passed before a whole request.
    TimedOut,
    /// The head or the body is over its limit.
    TooLarge,
    /// Not HTTP/1.x we accept.
    Malformed(&'static str),
    /// The socket failed.
    Io,
}

impl ReadError {
    /// The status to answer with (none when the client is gone).
    pub fn status(&self) -> Option<u16> {
        match self {
            ReadError::Closed | ReadError::Io => None,
            ReadError::TimedOut => Some(408),
            ReadError::TooLarge => Some(413),
            ReadError::Malformed(_) => Some(400),
        }
    }
}

/// Reads into `buf` once, waiting at most until `deadline`; `Ok(0)` at the end of the stream.
fn read_some(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ReadError::TimedOut);
    }
    s.set_read_timeout(Some(left)).map_err(|_| ReadError::Io)?;
    loop {
        match s.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::TimedOut);
            }
            Err(_) => return Err(ReadError::Io),
        }
    }
}

/// Reads one request from `s`, all of it by `deadline`.
pub fn read_request(s: &mut TcpStream, deadline: Instant) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let (head_len, mut req) = loop {
        let n = read_some(s, &mut chunk, deadline)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() >= MAX_HEAD {
            return Err(ReadError::TooLarge);
        }
    };
    let length = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ReadError::Malformed("bad Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(ReadError::TooLarge);
    }
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        let n = read_some(s, &mut chunk, deadline)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() > length {
        return Err(ReadError::Malformed("more bytes than Content-Length"));
    }
    req.body = body;
    Ok(req)
}

/// Parses a request head from the start of `buf`: `None` while it is incomplete, else its
/// length and the request (without its body).
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Request)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
        Err(_) => return Err(ReadError::Malformed("not an HTTP request")),
    };
    if len > MAX_HEAD {
        return Err(ReadError::TooLarge);
    }
    let (Some(method), Some(target)) = (r.method, r.path) else {
        return Err(ReadError::Malformed("no request line"));
    };
    let path = target.split(['?', '#']).next().unwrap_or("").to_owned();
    let mut out = Vec::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if name == "transfer-encoding" {
            return Err(ReadError::Malformed("encoded bodies are not accepted"));
        }
        if SINGLE.contains(&name.as_str()) && out.iter().any(|(n, _)| *n == name) {
            return Err(ReadError::Malformed(
                "a header that must be single is repeated",
            ));
        }
        if let Ok(v) = std::str::from_utf8(h.value) {
            out.push((name, v.trim().to_owned()));
        } else if SINGLE.contains(&name.as_str()) {
            return Err(ReadError::Malformed(
                "a header that decides a check is not UTF-8",
            ));
        }
    }
    Ok(Some((
        len,
        Request {
            method: method.to_owned(),
            path,
            headers: out,
            body: Vec::new(),
        },
    )))
}

/// The reason phrase of the statuses we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Error",
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Whether it is the page (it gets the content security policy).
    pub page: bool,
}

impl Response {
    /// A JSON body with `status`.
    pub fn json(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
            page: false,
        }
    }

    /// A short plain-text answer: the same words for every refusal of one kind, so that a
    /// refused request learns nothing else.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n").into_bytes(),
            page: false,
        }
    }

    /// 403 with nothing in it but the word.
    pub fn forbidden() -> Response {
        Response::text(403, "forbidden")
    }

    /// Writes the response to `w`.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{COMMON_HEADERS}",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.page {
            head.push_str(&format!("Content-Security-Policy: {CSP}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        w.write_all(&self.body)?;
        w.flush()
    }
}

/// The head of a server-sent event stream; events follow until the connection closes.
pub fn event_stream_head() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n{COMMON_HEADERS}\r\n"
    )
}

/// One server-sent event: `event: KIND`, the data on one line (JSON has no raw newline).
pub fn event(kind: &str, data: &str) -> String {
    debug_assert!(!data.contains('\n'));
    format!("event: {kind}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<(usize, Request)>, ReadError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn a_request_head_parses_with_its_headers() {
        let raw = "GET /events?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer ab\r\n\r\nrest";
        let (len, r) = head(raw).expect("ok").expect("complete");
        assert_eq!(len, raw.len() - 4);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/events");
        assert_eq!(r.header("host"), Some("127.0.0.1:8080"));
        assert_eq!(r.header("authorization"), Some("Bearer ab"));
        assert_eq!(r.header("origin"), None);
        assert!(matches!(head("GET / HTTP/1.1\r\nHost: a"), Ok(None)));
    }

    #[test]
    fn what_could_fool_a_check_is_refused() {
        let twice = "GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nHost: evil.example:1\r\n\r\n";
        assert!(matches!(head(twice), Err(ReadError::Malformed(_))));
        let chunked = "POST /api/get HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(head(chunked), Err(ReadError::Malformed(_))));
        assert!(matches!(
            head("\x16\x03\x01garbage\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(head(&many), Err(ReadError::TooLarge)));
    }

    #[test]
    fn responses_close_and_keep_to_themselves() {
        let mut out = Vec::new();
        Response::forbidden().write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.ends_with("\r\n\r\nforbidden\n"));
        assert!(!text.contains("Content-Security-Policy"));
        let mut page = Response::text(200, "x");
        page.page = true;
        let mut out = Vec::new();
        page.write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("script-src 'self';"), "{text}");
        assert_eq!(event("view", "{}"), "event: view\ndata: {}\n\n");
    }
}
