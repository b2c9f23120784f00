//! Two parties in memory: handshakes that succeed, every way one can fail, and records that
//! only open in order and unaltered.

use proptest::prelude::*;

use super::*;

fn keys(seed: u8) -> LocalKeys {
    let mut rng = KeyRng::new([seed; 32]);
    let id = Identity::generate(&mut rng);
    LocalKeys::new(&id, &mut rng)
}

/// Bytes each side sent, in order, as they were handed to the other side.
#[derive(Debug, Default)]
struct Wire {
    to_acceptor: Vec<u8>,
    to_dialer: Vec<u8>,
}

/// Runs a handshake to its end, handing each side's bytes to the other through `tamper`
/// (called with the direction, true = to the acceptor, and the bytes); returns both sides'
/// outcome, the bytes exchanged (after tampering), and the bytes each side had left over.
fn run(
    mut d: Handshake,
    mut a: Handshake,
    mut tamper: impl FnMut(bool, &mut Vec<u8>),
) -> (
    Result<Established, HandshakeError>,
    Result<Established, HandshakeError>,
    Wire,
) {
    let mut wire = Wire::default();
    let (mut d_err, mut a_err) = (None, None);
    loop {
        let mut bytes = Vec::new();
        d.poll_transmit(&mut bytes);
        let to_a = !bytes.is_empty();
        if to_a && a_err.is_none() {
            tamper(true, &mut bytes);
            wire.to_acceptor.extend_from_slice(&bytes);
            if let Err(e) = a.handle_input(&bytes) {
                a_err = Some(e);
            }
        }
        let mut bytes = Vec::new();
        a.poll_transmit(&mut bytes);
        let to_d = !bytes.is_empty();
        if to_d && d_err.is_none() {
            tamper(false, &mut bytes);
            wire.to_dialer.extend_from_slice(&bytes);
            if let Err(e) = d.handle_input(&bytes) {
                d_err = Some(e);
            }
        }
        if !to_a && !to_d {
            break;
        }
    }
    let finish = |mut h: Handshake, err: Option<HandshakeError>| match err {
        Some(e) => Err(e),
        None => {
            h.closed()?;
            let mut rest = Vec::new();
            let done = h.finish(&mut rest).ok_or(HandshakeError::Internal);
            assert!(rest.is_empty(), "everything was sent");
            done
        }
    };
    (finish(d, d_err), finish(a, a_err), wire)
}

fn handshake(aes_d: bool, aes_a: bool) -> (Established, Established) {
    let (kd, ka) = (keys(1), keys(2));
    let d = Handshake::dial(&kd, Some(ka.key()), aes_d, [10; 32]);
    let a = Handshake::accept(&ka, aes_a, [20; 32]);
    let (d, a, _) = run(d, a, |_, _| {});
    (d.expect("dialer done"), a.expect("acceptor done"))
}

#[test]
fn both_sides_prove_their_keys_and_agree_on_the_suite() {
    for (aes_d, aes_a) in [(true, true), (true, false), (false, true), (false, false)] {
        let (d, a) = handshake(aes_d, aes_a);
        assert_eq!(d.remote, keys(2).key());
        assert_eq!(a.remote, keys(1).key());
        assert_eq!(d.suite, a.suite);
        assert_eq!(d.suite, Suite::agree(aes_d, aes_a));
        assert_eq!(d.transport.suite(), d.suite);
    }
    assert_eq!(Suite::agree(true, true), Suite::AesGcm);
    assert_eq!(Suite::agree(true, false), Suite::ChaChaPoly);
    for s in [Suite::AesGcm, Suite::ChaChaPoly] {
        let _ = s.params();
    }
}

#[test]
fn message_lengths_are_as_documented() {
    let (kd, ka) = (keys(1), keys(2));
    let d = Handshake::dial(&kd, None, true, [1; 32]);
    let a = Handshake::accept(&ka, true, [2; 32]);
    let (d, a, wire) = run(d, a, |_, _| {});
    assert!(d.is_ok() && a.is_ok());
    assert_eq!(wire.to_acceptor.len(), PREAMBLE_LEN + 2 + 32 + 2 + 160);
    assert_eq!(wire.to_dialer.len(), PREAMBLE_LEN + 2 + 192);
    assert_eq!(&wire.to_acceptor[..6], b"P2PT\x03\x01");
}

#[test]
fn the_same_seeds_give_the_same_bytes() {
    let transcript = || {
        let (kd, ka) = (keys(1), keys(2));
        let d = Handshake::dial(&kd, None, false, [3; 32]);
        let a = Handshake::accept(&ka, false, [4; 32]);
        let (d, a, wire) = run(d, a, |_, _| {});
        let (mut d, _) = (d.expect("done"), a.expect("done"));
        let mut sealed = Vec::new();
        d.transport.seal(b"frame", &mut sealed).expect("seal");
        (wire.to_acceptor, wire.to_dialer, sealed)
    };
    assert_eq!(transcript(), transcript());
    // Another ephemeral seed, other bytes.
    let (kd, ka) = (keys(1), keys(2));
    let d = Handshake::dial(&kd, None, false, [5; 32]);
    let a = Handshake::accept(&ka, false, [4; 32]);
    let (_, _, wire) = run(d, a, |_, _| {});
    assert_ne!(wire.to_acceptor, transcript().0);
}

#[test]
fn a_dialer_meeting_another_key_stops_before_saying_who_it_is() {
    let (kd, ka, other) = (keys(1), keys(2), keys(3));
    let d = Handshake::dial(&kd, Some(other.key()), true, [1; 32]);
    let a = Handshake::accept(&ka, true, [2; 32]);
    let (d, a, wire) = run(d, a, |_, _| {});
    assert_eq!(
        d.err(),
        Some(HandshakeError::WrongPeer {
            expected: other.key(),
            found: ka.key()
        })
    );
    // The acceptor never got message 3 (so never learned the dialer's identity).
    assert_eq!(a.err(), Some(HandshakeError::Truncated));
    assert_eq!(wire.to_acceptor.len(), PREAMBLE_LEN + 2 + 32);
}

#[test]
fn a_connection_to_ourselves_is_refused() {
    let k = keys(1);
    let d = Handshake::dial(&k, None, true, [1; 32]);
    let a = Handshake::accept(&k, true, [2; 32]);
    let (d, a, _) = run(d, a, |_, _| {});
    assert_eq!(d.err(), Some(HandshakeError::OwnKey));
    assert!(a.is_err());
}

#[test]
fn foreign_and_old_peers_are_told_apart() {
    let k = keys(1);
    let cases: [(&[u8], HandshakeError); 4] = [
        (b"chunk a 1\n", HandshakeError::Foreign),
        (b"P2PT\x02\x00\x00\x00\x01\x01", HandshakeError::OldVersion),
        (b"P2PT\x07\x00", HandshakeError::UnknownVersion(7)),
        (b"P2PX", HandshakeError::Foreign),
    ];
    for (bytes, want) in cases {
        let mut a = Handshake::accept(&k, true, [2; 32]);
        assert_eq!(a.handle_input(bytes), Err(want));
        // Failed for good.
        assert_eq!(a.handle_input(b"P2PT\x03\x00"), Err(want));
        assert_eq!(a.closed(), Err(want));
    }
    // A foreign first byte is refused before a whole preamble arrived.
    let mut a = Handshake::accept(&k, true, [2; 32]);
    assert_eq!(a.handle_input(b"c"), Err(HandshakeError::Foreign));
}

#[test]
fn a_bad_length_is_refused_before_any_cryptography() {
    let (kd, ka) = (keys(1), keys(2));
    let mut a = Handshake::accept(&ka, true, [2; 32]);
    let mut d = Handshake::dial(&kd, None, true, [1; 32]);
    let mut out = Vec::new();
    d.poll_transmit(&mut out);
    assert_eq!(a.handle_input(&out), Ok(PREAMBLE_LEN));
    assert_eq!(
        a.handle_input(&[0xff, 0xff]),
        Err(HandshakeError::BadLength(0xffff))
    );
}

#[test]
fn a_truncated_handshake_fails_at_close_wherever_it_stops() {
    let (kd, ka) = (keys(1), keys(2));
    let (_, _, wire) = run(
        Handshake::dial(&kd, None, true, [1; 32]),
        Handshake::accept(&ka, true, [2; 32]),
        |_, _| {},
    );
    // The acceptor, fed every prefix of what the dialer sent (with the answers it needs).
    for cut in 0..wire.to_acceptor.len() {
        let mut a = Handshake::accept(&ka, true, [2; 32]);
        assert_eq!(a.handle_input(&wire.to_acceptor[..cut]), Ok(cut));
        assert!(!a.is_done());
        assert_eq!(a.closed(), Err(HandshakeError::Truncated));
    }
    // The dialer, fed every prefix of the acceptor's answer.
    for cut in 0..wire.to_dialer.len() {
        let mut d = Handshake::dial(&kd, None, true, [1; 32]);
        assert_eq!(d.handle_input(&wire.to_dialer[..cut]), Ok(cut));
        assert!(!d.is_done());
        assert_eq!(d.closed(), Err(HandshakeError::Truncated));
        let mut rest = Vec::new();
        assert!(d.finish(&mut rest).is_none());
    }
}

#[test]
fn a_replayed_handshake_fails() {
    // A recording of a dialer's bytes, replayed to the same acceptor's later handshake (a new
    // ephemeral key): message 3 no longer authenticates.
    let (kd, ka) = (keys(1), keys(2));
    let (_, _, wire) = run(
        Handshake::dial(&kd, None, true, [1; 32]),
        Handshake::accept(&ka, true, [2; 32]),
        |_, _| {},
    );
    let mut a = Handshake::accept(&ka, true, [9; 32]);
    assert_eq!(
        a.handle_input(&wire.to_acceptor),
        Err(HandshakeError::Decrypt)
    );
    assert!(!a.is_done());
}

#[test]
fn records_after_message_3_are_left_for_the_transport() {
    let (kd, ka) = (keys(1), keys(2));
    let mut d = Handshake::dial(&kd, None, true, [1; 32]);
    let mut a = Handshake::accept(&ka, true, [2; 32]);
    let mut to_a = Vec::new();
    d.poll_transmit(&mut to_a);
    a.handle_input(&to_a).expect("preamble");
    let mut to_d = Vec::new();
    a.poll_transmit(&mut to_d);
    d.handle_input(&to_d).expect("preamble");
    to_a.clear();
    d.poll_transmit(&mut to_a);
    a.handle_input(&to_a).expect("message 1");
    to_d.clear();
    a.poll_transmit(&mut to_d);
    d.handle_input(&to_d).expect("message 2");
    // The dialer is done: message 3 and its first record leave in one write.
    to_a.clear();
    let mut d = d.finish(&mut to_a).expect("dialer done");
    let msg3 = to_a.len();
    d.transport.seal(b"hello", &mut to_a).expect("seal");
    assert_eq!(a.handle_input(&to_a), Ok(msg3));
    let mut a = a.finish(&mut Vec::new()).expect("acceptor done");
    let mut plain = Vec::new();
    assert_eq!(
        a.transport.open(&to_a[msg3..], &mut plain),
        Ok(to_a.len() - msg3)
    );
    assert_eq!(plain, b"hello");
}

#[test]
fn a_chunk_frame_costs_18_records_of_overhead() {
    let (mut d, mut a) = handshake(true, true);
    let header = [7u8; 41];
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    d.transport.seal(&header, &mut wire).expect("seal");
    d.transport.seal(&payload, &mut wire).expect("seal");
    assert_eq!(wire.len(), 41 + (1 << 20) + 18 * RECORD_OVERHEAD);
    assert_eq!(sealed_len(41) + sealed_len(1 << 20), 41 + (1 << 20) + 324);
    assert_eq!(sealed_len(0), 0);
    assert_eq!(sealed_len(MAX_RECORD_PLAINTEXT), 2 + MAX_RECORD);
    let mut plain = Vec::new();
    assert_eq!(a.transport.open(&wire, &mut plain), Ok(wire.len()));
    assert_eq!(&plain[..41], &header);
    assert!(plain[41..] == payload[..]);
}

#[test]
fn short_and_truncated_records_are_errors() {
    let (mut d, mut a) = handshake(false, false);
    let mut plain = Vec::new();
    assert_eq!(
        a.transport.open(&[0, 15], &mut plain),
        Err(TransportError::ShortRecord(15))
    );
    assert_eq!(
        a.transport.open(&[], &mut plain),
        Err(TransportError::ShortRecord(15)),
        "a failed transport stays failed"
    );
    let mut wire = Vec::new();
    d.transport.seal(b"abc", &mut wire).expect("seal");
    let (_, mut a) = handshake(false, false);
    let cut = wire.len() - 1;
    assert_eq!(a.transport.open(&wire[..cut], &mut plain), Ok(0));
    assert_eq!(a.transport.closed(cut), Err(TransportError::Truncated));
    let (_, mut a) = handshake(false, false);
    assert_eq!(a.transport.closed(0), Ok(()));
}

/// What can happen to the records between the two sides.
#[derive(Debug, Clone)]
enum Mischief {
    /// Record `i` arrives twice.
    Replay(usize),
    /// Records `i` and `i + 1` swap.
    Swap(usize),
    /// Record `i` is lost.
    Drop(usize),
    /// One bit of the whole stream flips.
    Flip(usize, u8),
}

fn mischief() -> impl Strategy<Value = Mischief> {
    prop_oneof![
        any::<usize>().prop_map(Mischief::Replay),
        any::<usize>().prop_map(Mischief::Swap),
        any::<usize>().prop_map(Mischief::Drop),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mischief::Flip(i, b)),
    ]
}

/// Splits a sealed stream into its records (length prefix included).
fn records(mut wire: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while wire.len() >= 2 {
        let len = 2 + usize::from(u16::from_be_bytes([wire[0], wire[1]]));
        out.push(wire[..len].to_vec());
        wire = &wire[len..];
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the pieces sealed and however the stream is cut on arrival, the plaintext
    /// comes out whole and in order.
    #[test]
    fn records_round_trip(
        aes in any::<bool>(),
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..70_000), 1..5),
        cut in 1usize..100_000,
    ) {
        let (mut d, mut a) = handshake(aes, aes);
        let mut wire = Vec::new();
        for p in &pieces {
            d.transport.seal(p, &mut wire).expect("seal");
        }
        prop_assert_eq!(wire.len(), pieces.iter().map(|p| sealed_len(p.len())).sum::<usize>());
        let mut plain = Vec::new();
        let mut pending = Vec::new();
        for piece in wire.chunks(cut) {
            pending.extend_from_slice(piece);
            let used = a.transport.open(&pending, &mut plain).expect("open");
            pending.drain(..used);
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(plain, pieces.concat());
    }

    /// A record replayed, swapped, dropped or altered on the way is an error, and nothing but
    /// a prefix of what was sent ever comes out.
    #[test]
    fn records_only_open_unaltered_and_in_order(
        aes in any::<bool>(),
        sizes in prop::collection::vec(1usize..3000, 2..6),
        what in mischief(),
    ) {
        let (mut d, mut a) = handshake(aes, aes);
        let sent: Vec<u8> = (0..sizes.iter().sum::<usize>()).map(|i| (i % 253) as u8).collect();
        let mut wire = Vec::new();
        let mut at = 0;
        for s in &sizes {
            d.transport.seal(&sent[at..at + s], &mut wire).expect("seal");
            at += s;
        }
        let mut recs = records(&wire);
        let n = recs.len();
        match what {
            Mischief::Replay(i) => { let r = recs[i % n].clone(); recs.insert(i % n + 1, r); }
            Mischief::Swap(i) => recs.swap(i % (n - 1), i % (n - 1) + 1),
            Mischief::Drop(i) => { recs.remove(i % (n - 1)); }
            Mischief::Flip(i, bit) => {
                let mut flat = recs.concat();
                let i = i % flat.len();
                flat[i] ^= 1 << bit;
                recs = vec![flat];
            }
        }
        let tampered = recs.concat();
        let mut plain = Vec::new();
        let result = a.transport.open(&tampered, &mut plain);
        let closed = result.and_then(|used| a.transport.closed(tampered.len() - used));
        prop_assert!(closed.is_err(), "tampering went unnoticed");
        prop_assert!(sent.starts_with(&plain), "bytes that were never sent came out");
    }

    /// One bit flipped anywhere in the handshake: the two sides never both finish.
    #[test]
    fn a_flipped_bit_in_any_handshake_message_fails(
        to_acceptor in any::<bool>(),
        at in any::<usize>(),
        bit in 0u8..8,
        aes in any::<bool>(),
    ) {
        let (kd, ka) = (keys(1), keys(2));
        let d = Handshake::dial(&kd, None, aes, [1; 32]);
        let a = Handshake::accept(&ka, aes, [2; 32]);
        let mut seen = [0usize; 2];
        let mut flipped = false;
        let (d, a, _) = run(d, a, |dir, bytes| {
            let sent = &mut seen[usize::from(dir)];
            let len = if dir { PREAMBLE_LEN + 2 + 32 + 2 + 160 } else { PREAMBLE_LEN + 2 + 192 };
            let i = at % len;
            if dir == to_acceptor && (*sent..*sent + bytes.len()).contains(&i) {
                bytes[i - *sent] ^= 1 << bit;
                flipped = true;
            }
            *sent += bytes.len();
        });
        // Every byte a side sends reaches the other unless the handshake already failed.
        if flipped {
            prop_assert!(d.is_err() || a.is_err(), "a flipped bit went unnoticed");
        }
    }

    /// Arbitrary bytes never make a handshake panic, and never finish it.
    #[test]
    fn arbitrary_bytes_never_finish_a_handshake(
        dial in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let k = keys(1);
        let mut h = if dial {
            Handshake::dial(&k, None, true, [1; 32])
        } else {
            Handshake::accept(&k, true, [1; 32])
        };
        let _ = h.handle_input(&bytes);
        prop_assert!(!h.is_done());
    }
}
