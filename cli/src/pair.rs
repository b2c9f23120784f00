//! `p2pshare pair`: two machines add each other's key to their folder's allow file by a short
//! code, over the protocol of `p2pshare_proto::pair` (SPAKE2, then each key proven).
//!
//! How the two find each other on a LAN: the waiting side (`pair`, no code) listens on a free
//! TCP port (both families) and sends an offer naming that port on the discovery port to the
//! same addresses a peer announces to (`--broadcast`, or every LAN interface's broadcast
//! address, and the IPv6 multicast group on every interface a peer multicasts on) four times a
//! second; the joining side (`pair CODE`) listens on the discovery port, IPv4 and IPv6 (beside
//! a running peer, as peers share it), and connects to the first offer it hears, at the address
//! it came from (a link-local one with its interface). So two machines on a link with IPv6
//! only pair as two on an IPv4 LAN do. The code itself never travels: an
//! offer says only "a pairing waits here". Whoever connects gets one try: any attempt that
//! fails (a wrong code, or not a pairing at all) ends the wait with an error on both sides,
//! so a guessed code gets exactly one guess.
//!
//! On success each side adds the other's key to its allow file (`--allow-file FILE` if given,
//! else `<shared>/.p2pshare-allow`), which a running peer of that folder follows: it serves
//! the new key within a second, and serves only the keys it allows from then on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use p2pshare_host::allow::{self, ALLOW_FILE};
use p2pshare_host::keyfile;
use p2pshare_proto::pair::{self, ACCEPTED, Code, HELLO_LEN, PROOF_LEN, REFUSED, Role, Start};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::{Identity, PeerId};

use crate::args::Opts;
use crate::peer::{self, Mode};

/// How long one step of the exchange may take once connected (a LAN answers in
/// milliseconds; a person is not involved any more).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the waiting side repeats its offer: the joiner connects at the first one it
/// hears, so this is most of the time a pairing takes. Four datagrams of 12 bytes a second,
/// for the minutes a person takes to type a code, cost the LAN nothing (other peers count
/// them as foreign and drop them).
const OFFER_EVERY: Duration = Duration::from_millis(250);

/// Runs `p2pshare pair [CODE]`.
pub fn run(opts: &Opts, code: Option<&str>, timeout: f64) -> Result<(), String> {
    let timeout = peer::seconds("--timeout", timeout)?;
    let code = match code {
        Some(c) => Some(Code::parse(c).ok_or_else(|| {
            format!(
                "{c:?} is not a pairing code (8 digits, as NNNN-NNNN, printed by `p2pshare pair`)"
            )
        })?),
        None => None,
    };
    let me = keyfile::of_folder(&opts.shared)?;
    let file = allow_file(opts);
    let mut rng = KeyRng::new(keyfile::key_seed().map_err(|e| e.to_string())?);
    let (them, addr, took) = match code {
        None => wait(opts, &me, &mut rng, timeout)?,
        Some(code) => join(opts, &me, &code, rng.seed(), timeout)?,
    };
    let note = format!("paired at {addr}");
    let added = allow::add(&file, &them, &note).map_err(|e| e.to_string())?;
    eprintln!(
        "p2pshare: paired with {} at {addr} in {} ms; its key is {} {}",
        them.short(),
        took.as_millis(),
        if added { "now in" } else { "already in" },
        file.display()
    );
    println!("{}", them.to_hex());
    Ok(())
}

/// The waiting side: prints a code, offers itself, and pairs with the first to connect.
fn wait(
    opts: &Opts,
    me: &Identity,
    rng: &mut KeyRng,
    timeout: Duration,
) -> Result<(PeerId, SocketAddr, Duration), String> {
    let code = Code::random(rng);
    let listener: TcpListener = p2pshare_host::sockets::listener(0)
        .map_err(|e| format!("cannot listen for the other side: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen for the other side: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for the other side: {e}"))?
        .port();
    // Where a peer announces: the broadcast addresses, and the multicast group on each
    // interface a peer multicasts on (sent from a socket of that family).
    let cfg = peer::config(opts, 0, Mode::Observe)?;
    let joined: Vec<u32> = cfg.multicast_interfaces().iter().map(|i| i.index).collect();
    let targets = cfg.announce_to(&joined);
    let udp = UdpSocket::bind(("0.0.0.0", 0))
        .and_then(|u| u.set_broadcast(true).map(|()| u))
        .map_err(|e| format!("cannot offer the pairing on the LAN: {e}"))?;
    // No IPv6 here: the offer goes over IPv4 only. (Multicast leaves with the kernel's hop
    // limit of 1, and the group is link-scoped anyway.)
    let udp6 = UdpSocket::bind(("::", 0)).ok();
    println!("{code}");
    let _ = std::io::stdout().flush();
    eprintln!(
        "p2pshare: pairing code {code}: on the other machine, run `p2pshare pair {code}` \
         (waiting {} s)",
        timeout.as_secs()
    );
    let end = Instant::now() + timeout;
    let mut next_offer = Instant::now();
    let offer = pair::offer(port);
    let (stream, from) = loop {
        let now = Instant::now();
        if now >= end {
            return Err(format!(
                "nobody paired within {} s (run pair again for a new code)",
                timeout.as_secs()
            ));
        }
        if now >= next_offer {
            next_offer = now + OFFER_EVERY;
            for to in &targets {
                // A target that cannot be reached now (an interface going down) is no reason
                // to stop offering on the others.
                match (to, &udp6) {
                    (SocketAddr::V4(_), _) => {
                        let _ = udp.send_to(&offer, to);
                    }
                    (SocketAddr::V6(_), Some(u)) => {
                        let _ = u.send_to(&offer, to);
                    }
                    (SocketAddr::V6(_), None) => {}
                }
            }
        }
        match listener.accept() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot accept the other side: {e}")),
        }
    };
    let started = Instant::now();
    let them = exchange_waiter(stream, me, &code, rng.seed())
        .map_err(|e| format!("pairing with {from} failed: {e}; run pair again for a new code"))?;
    Ok((them, from, started.elapsed()))
}

/// The waiter's half of the exchange on the accepted connection.
fn exchange_waiter(
    mut s: TcpStream,
    me: &Identity,
    code: &Code,
    seed: [u8; 32],
) -> Result<PeerId, String> {
    setup(&s)?;
    let start = Start::new(Role::Waiter, code, seed);
    let theirs = read_exact(&mut s, HELLO_LEN)?;
    write(&mut s, start.hello())?;
    let confirm = start.finish(&theirs).map_err(|e| e.to_string())?;
    let proof = read_exact(&mut s, PROOF_LEN)?;
    let them = match confirm.check(&proof, &me.key()) {
        Ok(k) => k,
        Err(e) => {
            let _ = write(&mut s, &[REFUSED]);
            return Err(e.to_string());
        }
    };
    let mut answer = vec![ACCEPTED];
    answer.extend(confirm.proof(me));
    write(&mut s, &answer)?;
    match read_exact(&mut s, 1)?.first() {
        Some(&ACCEPTED) => Ok(them),
        _ => Err("the other side did not accept our proof".into()),
    }
}

/// The joining side: listens for an offer, connects, pairs.
fn join(
    opts: &Opts,
    me: &Identity,
    code: &Code,
    seed: [u8; 32],
    timeout: Duration,
) -> Result<(PeerId, SocketAddr, Duration), String> {
    let udp = p2pshare_host::sockets::discovery(opts.discovery_port).map_err(|e| e.to_string())?;
    // The IPv6 discovery socket, in the multicast group where a peer multicasts (none where
    // multicast is off or IPv6 cannot be used).
    let cfg = peer::config(opts, 0, Mode::Observe)?;
    let udp6 = p2pshare_host::sockets::discovery6_for(&cfg)
        .map_err(|e| e.to_string())?
        .map(|(s, mut groups)| {
            groups.follow(&cfg.multicast_interfaces());
            (s, groups)
        });
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    let at = 'heard: loop {
        if Instant::now() >= end {
            return Err(format!(
                "no pairing offer heard within {} s: is `p2pshare pair` running on the other \
                 machine, on this LAN?",
                timeout.as_secs()
            ));
        }
        // Both sockets are non-blocking: read what each holds, then wait a little.
        for s in std::iter::once(&udp).chain(udp6.as_ref().map(|(s, _)| s)) {
            loop {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        if let Some(port) = pair::parse_offer(&buf[..n]) {
                            break 'heard offer_at(from, port);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("cannot listen for the pairing: {e}")),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(udp);
    drop(udp6);
    let started = Instant::now();
    let s = TcpStream::connect_timeout(&at, STEP_TIMEOUT)
        .map_err(|e| format!("cannot reach the pairing at {at}: {e}"))?;
    let them =
        exchange_joiner(s, me, code, seed).map_err(|e| format!("pairing with {at} failed: {e}"))?;
    Ok((them, at, started.elapsed()))
}

/// Where an offer heard from `from` waits: its address (a link-local one with the interface
/// it came in on) at the offer's `port`.
fn offer_at(from: SocketAddr, port: u16) -> SocketAddr {
    match from {
        SocketAddr::V6(a) => {
            SocketAddr::V6(std::net::SocketAddrV6::new(*a.ip(), port, 0, a.scope_id()))
        }
        SocketAddr::V4(a) => SocketAddr::new(std::net::IpAddr::V4(*a.ip()), port),
    }
}

/// The joiner's half of the exchange on its connection.
fn exchange_joiner(
    mut s: TcpStream,
    me: &Identity,
    code: &Code,
    seed: [u8; 32],
) -> Result<PeerId, String> {
    setup(&s)?;
    let start = Start::new(Role::Joiner, code, seed);
    write(&mut s, start.hello())?;
    let theirs = read_exact(&mut s, HELLO_LEN)?;
    let confirm = start.finish(&theirs).map_err(|e| e.to_string())?;
    write(&mut s, &confirm.proof(me))?;
    match read_exact(&mut s, 1)?.first() {
        Some(&ACCEPTED) => {}
        _ => {
            return Err(
                "wrong code: the other side refused it (its pairing has ended; ask for a new code)"
                    .into(),
            );
        }
    }
    let proof = read_exact(&mut s, PROOF_LEN)?;
    let them = confirm
        .check(&proof, &me.key())
        .map_err(|e| e.to_string())?;
    write(&mut s, &[ACCEPTED])?;
    Ok(them)
}

fn setup(s: &TcpStream) -> Result<(), String> {
    s.set_nonblocking(false)
        .and_then(|()| s.set_read_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| s.set_write_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| s.set_nodelay(true))
        .map_err(|e| format!("cannot set up the connection: {e}"))
}

fn read_exact(s: &mut TcpStream, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the other side hung up".to_string(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "the other side stopped answering".to_string()
        }
        _ => format!("the connection failed: {e}"),
    })?;
    Ok(buf)
}

fn write(s: &mut TcpStream, data: &[u8]) -> Result<(), String> {
    s.write_all(data)
        .map_err(|e| format!("the connection failed: {e}"))
}

/// The allow file `pair` adds to: the first `--allow-file`, else the folder's own.
fn allow_file(opts: &Opts) -> PathBuf {
    opts.allow_files
        .first()
        .cloned()
        .unwrap_or_else(|| opts.shared.join(ALLOW_FILE))
}
