//! Arbitrary bytes into a Noise handshake (as acceptor or dialer) or into an established
//! transport: never a panic, never a finished handshake, nothing opens that was not sealed.
//! The first byte picks the role (and the AES flag); the rest is fed in pieces whose sizes
//! come from the input too, so every cut of a message is tried.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use p2pshare_proto::Identity;
use p2pshare_proto::noise::{Handshake, LocalKeys};
use p2pshare_proto::rng::KeyRng;

fn keys(seed: u8) -> LocalKeys {
    let mut rng = KeyRng::new([seed; 32]);
    LocalKeys::new(&Identity::generate(&mut rng), &mut rng)
}

fn ours() -> &'static LocalKeys {
    static KEYS: OnceLock<LocalKeys> = OnceLock::new();
    KEYS.get_or_init(|| keys(1))
}

fn theirs() -> &'static LocalKeys {
    static KEYS: OnceLock<LocalKeys> = OnceLock::new();
    KEYS.get_or_init(|| keys(2))
}

/// `data` in pieces: each piece's length is its first byte (at least 1).
fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n).max(1).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// A real handshake between us (dialer) and them, run to its end in memory.
fn established(aes: bool) -> p2pshare_proto::noise::Established {
    let mut d = Handshake::dial(ours(), Some(theirs().key()), aes, [3; 32]);
    let mut a = Handshake::accept(theirs(), aes, [4; 32]);
    for _ in 0..4 {
        let mut bytes = Vec::new();
        d.poll_transmit(&mut bytes);
        a.handle_input(&bytes).expect("genuine bytes");
        bytes.clear();
        a.poll_transmit(&mut bytes);
        d.handle_input(&bytes).expect("genuine bytes");
    }
    let mut msg3 = Vec::new();
    let d = d.finish(&mut msg3).expect("dialer done");
    a.handle_input(&msg3).expect("genuine message 3");
    d
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let aes = mode & 4 != 0;
    match mode % 3 {
        0 | 1 => {
            let mut h = if mode % 3 == 0 {
                Handshake::accept(ours(), aes, [5; 32])
            } else {
                Handshake::dial(ours(), None, aes, [5; 32])
            };
            for piece in pieces(rest) {
                let mut out = Vec::new();
                h.poll_transmit(&mut out);
                match h.handle_input(piece) {
                    Ok(used) => assert!(used <= piece.len()),
                    Err(_) => {
                        assert!(h.handle_input(piece).is_err(), "an error is for good");
                        return;
                    }
                }
            }
            assert!(!h.is_done(), "arbitrary bytes finished a handshake");
            assert!(h.closed().is_err());
        }
        _ => {
            let mut t = established(aes).transport;
            let mut plain = Vec::new();
            let mut pending = Vec::new();
            for piece in pieces(rest) {
                pending.extend_from_slice(piece);
                match t.open(&pending, &mut plain) {
                    Ok(used) => {
                        pending.drain(..used);
                    }
                    Err(_) => break,
                }
            }
            assert!(plain.is_empty(), "forged bytes opened");
        }
    }
});
