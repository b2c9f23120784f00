//! `peers add LINK|KEY@ADDRESS` (one-shot and at the prompt): keep a peer that no broadcast
//! reaches. Each address (a link's, or the one given) with its key is dialled at once by the
//! running peer of the folder as a kept target (`Found::Static`: pinned, dialled again every
//! interval while it has no connection; the handshake must prove that key), and remembered in
//! the folder's known peers (`p2pshare_host::known`), so that every later start looks for it
//! there. Without a running peer it is only remembered, under the folder's lock.
//!
//! A key is required: it is who must answer at that address, and what the folder remembers.

use std::net::SocketAddr;

use p2pshare_host::known::{self, Known};
use p2pshare_host::{Controller, FolderLock, Request};
use p2pshare_proto::share_link::ShareLink;
use p2pshare_proto::{Found, PeerId};

use crate::args::Opts;
use crate::control::{self, Answer, Ask};
use crate::get_link::Wanted;

/// The peers `spec` names, each an address and the key that must answer there; the error is
/// one line.
pub fn parse(spec: &str) -> Result<Vec<(SocketAddr, PeerId)>, String> {
    if ShareLink::looks_like(spec) {
        let w = Wanted::read(spec)?;
        if w.dials.is_empty() {
            return Err(
                "the link gives no address (a short link): `peers add` needs KEY@ADDRESS".into(),
            );
        }
        return Ok(w.dials);
    }
    match crate::peer::keyed_addr(spec, "peers add")? {
        (Some(key), addr) => Ok(vec![(addr, key)]),
        (None, _) => Err(format!(
            "peers add {spec}: give the peer's key too, as KEY@ADDRESS (`p2pshare id` prints \
             it): a key says who must answer there"
        )),
    }
}

/// What was kept, in one line.
fn kept(peers: &[(SocketAddr, PeerId)]) -> String {
    peers
        .iter()
        .map(|(a, k)| format!("{} at {}", k.short(), p2pshare_host::interfaces::show(*a)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Keeps `peers` with the running peer `ctl` drives: dialled now and remembered. Returns the
/// line to print.
pub fn keep_running(ctl: &Controller, peers: &[(SocketAddr, PeerId)]) -> Result<String, String> {
    for &(addr, key) in peers {
        ctl.request(Request::AddPeer {
            addr,
            key: Some(key),
            found: Found::Static,
            remember: true,
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "keeping {}: dialled now, and looked for there at every start",
        kept(peers)
    ))
}

/// `p2pshare peers add SPEC`.
pub fn run(opts: &Opts, spec: &str) -> Result<(), String> {
    let peers = parse(spec)?;
    if let Some(stream) = control::connect(&opts.shared)? {
        return control::ask(
            stream,
            Ask::AddPeer {
                spec: spec.to_owned(),
            },
            || Ok(()),
            |a| match a {
                Answer::Said { text } => {
                    println!("{text}");
                    Ok(())
                }
                Answer::Failed { error, .. } => Err(error),
                other => Err(format!("the running peer answered {other:?}")),
            },
        );
    }
    // No peer runs: remembered in the folder, under its lock (no peer may start meanwhile).
    let lock = FolderLock::acquire(&opts.shared).map_err(|e| e.to_string())?;
    let now = p2pshare_host::driver::unix_now();
    let loaded = Known::load(lock.dir(), now);
    if let Some(why) = &loaded.reset {
        eprintln!("p2pshare: warning: known peers: {why}");
    }
    let mut memory = loaded.known;
    for &(addr, key) in &peers {
        memory.keep(key, addr, now);
    }
    let (dir, bytes) = memory.take_save(lock.dir());
    known::write(&dir, &bytes).map_err(|e| {
        format!(
            "cannot write {}: {e}",
            dir.join(known::KNOWN_FILE).display()
        )
    })?;
    drop(lock);
    println!(
        "kept {} among the known peers of {}: no peer runs on it now; the next start looks \
         for it there",
        kept(&peers),
        opts.shared.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_to_keep_has_a_key_and_an_address() {
        let k = PeerId([3; 32]);
        let spec = format!("{}@127.0.0.1:7", k.to_hex());
        assert_eq!(parse(&spec), Ok(vec![("127.0.0.1:7".parse().unwrap(), k)]));
        let e = parse("127.0.0.1:7").unwrap_err();
        assert!(e.contains("KEY@ADDRESS"), "{e}");
        let e = parse(&format!("{}@nowhere", k.to_hex())).unwrap_err();
        assert!(e.starts_with("peers add "), "{e}");
        let id = p2pshare_proto::ContentId([1; 32]).to_hex();
        let link = format!(
            "p2pshare://{id}?peer={}@10.0.0.2:1&peer={}",
            k.to_hex(),
            k.to_hex()
        );
        assert_eq!(parse(&link), Ok(vec![("10.0.0.2:1".parse().unwrap(), k)]));
        let short = format!("p2pshare://{id}?peer={}", k.to_hex());
        assert!(parse(&short).unwrap_err().contains("short link"));
        assert!(
            parse("p2pshare://zz")
                .unwrap_err()
                .starts_with("bad link: ")
        );
    }
}
