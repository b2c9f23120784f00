//! Who may use the page: the checks every request passes before it is served.
//!
//! - **Host** (against DNS rebinding): the `Host` header must name the address we serve on —
//!   that IP with our port, `localhost` with our port when we serve on loopback, any IP literal
//!   with our port when we serve on every address. A name an attacker controls never passes.
//! - **Token**: every request for data or for an action carries `Authorization: Bearer TOKEN`,
//!   the 256-bit secret printed once at start (`http://ADDR/#TOKEN`: after `#`, so the browser
//!   never sends it in a request line, a log or a `Referer`); compared in constant time. The
//!   page's own files (the same bytes in every p2pshare binary, nothing of this peer in them)
//!   are served without it: the browser cannot send a fragment.
//! - **Origin**: a state-changing request is a `POST` of `application/json` whose `Origin` is
//!   the page's own (`http://` + the accepted `Host`): a form on another site can do neither.
//!
//! Invariant: a refusal is the same `403 forbidden` whichever check failed.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

/// The checks for one listening address.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Where we serve.
    addr: SocketAddr,
    /// The secret, as 64 lower-case hex digits.
    token: String,
}

/// A new secret: 32 bytes from the kernel's random source, as hex. There is no fallback: a
/// page without an unguessable token is not served.
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(p2pshare_proto::hex(&b))
}

/// `a == b` in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits a `Host` value into its host and port (80 when absent); `[v6]` keeps its brackets
/// off. `None` when it is not `host[:port]`.
fn split_host(value: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok()?,
    };
    (!host.is_empty()).then_some((host, port))
}

impl Guard {
    /// The checks for a page served on `addr` with secret `token`.
    pub fn new(addr: SocketAddr, token: String) -> Guard {
        Guard { addr, token }
    }

    /// True when `host` (the `Host` header) names the address we serve on.
    pub fn host_ok(&self, host: Option<&str>) -> bool {
        let Some((name, port)) = host.and_then(split_host) else {
            return false;
        };
        if port != self.addr.port() {
            return false;
        }
        let ours = self.addr.ip();
        match name.parse::<IpAddr>() {
            Ok(ip) => ip == ours || ours.is_unspecified(),
            Err(_) => ours.is_loopback() && name.eq_ignore_ascii_case("localhost"),
        }
    }

    /// True when `authorization` is `Bearer` and our token.
    pub fn token_ok(&self, authorization: Option<&str>) -> bool {
        let given = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        same(given.trim().as_bytes(), self.token.as_bytes())
    }

    /// True when `origin` is the page's own, reached through `host` (already checked).
    pub fn origin_ok(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        match (origin, host) {
            (Some(o), Some(h)) => o.strip_prefix("http://") == Some(h),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(addr: &str) -> Guard {
        Guard::new(addr.parse().expect("addr"), "ab".repeat(32))
    }

    #[test]
    fn only_our_own_address_is_a_host() {
        let g = guard("127.0.0.1:8080");
        assert!(g.host_ok(Some("127.0.0.1:8080")));
        assert!(g.host_ok(Some("localhost:8080")));
        assert!(g.host_ok(Some("LOCALHOST:8080")));
        for bad in [
            None,
            Some(""),
            Some("127.0.0.1"),
            Some("127.0.0.1:8081"),
            Some("127.0.0.2:8080"),
            Some("evil.example:8080"),
            Some("localhost.evil.example:8080"),
            Some("127.0.0.1:8080:8080"),
            Some("[::1]:8080"),
            Some(":8080"),
        ] {
            assert!(!g.host_ok(bad), "{bad:?}");
        }
        let lan = guard("10.0.0.5:80");
        assert!(lan.host_ok(Some("10.0.0.5")));
        assert!(!lan.host_ok(Some("localhost")));
        let any = guard("0.0.0.0:9000");
        assert!(any.host_ok(Some("10.0.0.5:9000")));
        assert!(any.host_ok(Some("[fe80::1]:9000")));
        assert!(!any.host_ok(Some("rebind.example:9000")));
        assert!(!any.host_ok(Some("localhost:9000")));
        let v6 = guard("[::1]:7000");
        assert!(v6.host_ok(Some("[::1]:7000")));
        assert!(v6.host_ok(Some("localhost:7000")));
    }

    #[test]
    fn the_token_must_be_exact() {
        let g = guard("127.0.0.1:1");
        let t = g.token.clone();
        assert!(g.token_ok(Some(&format!("Bearer {t}"))));
        assert!(!g.token_ok(None));
        assert!(!g.token_ok(Some(&t)));
        assert!(!g.token_ok(Some("Bearer ")));
        assert!(!g.token_ok(Some(&format!("Bearer {}", &t[1..]))));
        assert!(!g.token_ok(Some(&format!("Bearer {t}0"))));
        assert!(!g.token_ok(Some(&format!("Basic {t}"))));
        let fresh = new_token().expect("urandom");
        assert_eq!(fresh.len(), 64);
        assert_ne!(fresh, new_token().expect("urandom"));
    }

    #[test]
    fn the_origin_must_be_the_page() {
        let g = guard("127.0.0.1:8080");
        let host = Some("127.0.0.1:8080");
        assert!(g.origin_ok(Some("http://127.0.0.1:8080"), host));
        assert!(!g.origin_ok(None, host));
        assert!(!g.origin_ok(Some("null"), host));
        assert!(!g.origin_ok(Some("http://evil.example"), host));
        assert!(!g.origin_ok(Some("https://127.0.0.1:8080"), host));
        assert!(!g.origin_ok(Some("http://127.0.0.1:8080.evil.example"), host));
    }
}
