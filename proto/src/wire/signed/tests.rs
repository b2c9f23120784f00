//! Signed datagrams round-trip; forged, altered, replayed and reordered ones change nothing.

use proptest::prelude::*;

use super::*;
use crate::rng::KeyRng;
use crate::wire::Announce;

fn identity(seed: u8) -> Identity {
    Identity::generate(&mut KeyRng::new([seed; 32]))
}

fn sample(instance: u64, seq: u64) -> Announcement {
    Announcement {
        mark: Mark { instance, seq },
        port: 10_000,
        revision: 7,
        bye: false,
    }
}

#[test]
fn round_trip_and_size() {
    let id = identity(1);
    let a = Announcement {
        mark: Mark {
            instance: u64::MAX,
            seq: u64::MAX,
        },
        port: u16::MAX,
        revision: u64::MAX,
        bye: true,
    };
    let data = encode(&a, &id);
    assert!(data.len() <= 200, "{} bytes", data.len());
    assert!(data.len() <= MAX_DATAGRAM);
    assert_eq!(&data[..5], b"P2PS\x02");
    let u = decode(&data).expect("decodes");
    assert_eq!((u.key(), u.mark()), (id.key(), a.mark));
    let v = u.verify().expect("verifies");
    assert_eq!((v.key(), *v.announcement()), (id.key(), a));
}

#[test]
fn other_versions_and_strangers_are_told_apart() {
    let v1 = Announce {
        peer: crate::ids::PeerId([1; 32]),
        instance: 1,
        port: 1,
        revision: 1,
        bye: false,
    }
    .encode();
    assert_eq!(decode(&v1).err(), Some(DatagramError::UnknownVersion(1)));
    assert_eq!(
        decode(br#"{"type": "P2P_PEER_DISCOVERY"}"#).err(),
        Some(DatagramError::Foreign)
    );
    assert_eq!(decode(&[0; 1201]).err(), Some(DatagramError::TooLong));
    assert_eq!(decode(b"P2PS\x02").err(), Some(DatagramError::Malformed));
    let data = encode(&sample(1, 1), &identity(1));
    for cut in 0..data.len() {
        // A cut datagram never verifies: it fails to decode, or its "signature" is other bytes.
        if let Ok(u) = decode(&data[..cut]) {
            assert!(u.verify().is_err(), "cut at {cut} verified");
        }
    }
    let mut longer = data.clone();
    longer.push(0);
    assert_eq!(decode(&longer).err(), Some(DatagramError::Malformed));
}

#[test]
fn every_flipped_bit_is_refused() {
    let data = encode(&sample(5, 9), &identity(1));
    for bit in 0..data.len() * 8 {
        let mut bad = data.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let verified = decode(&bad).ok().and_then(|u| u.verify().ok());
        assert_eq!(verified, None, "bit {bit} flipped and still believed");
    }
}

#[test]
fn a_body_re_signed_by_another_key_is_refused() {
    let (victim, forger) = (identity(1), identity(2));
    let genuine = encode(&sample(5, 9), &victim);
    // The victim's body (its key inside), the forger's signature.
    let split = genuine.len() - SIGNATURE_LEN;
    let mut forged = genuine[..split].to_vec();
    forged.extend_from_slice(&forger.sign(Context::Announce, &genuine[..split]));
    let u = decode(&forged).expect("well formed");
    assert_eq!(u.key(), victim.key());
    assert_eq!(u.verify().err(), Some(VerifyError::BadSignature));
    // A signature for another purpose (the Noise static key binding) does not verify here.
    let mut crossed = genuine[..split].to_vec();
    crossed.extend_from_slice(&victim.sign(Context::NoiseStaticKey, &genuine[..split]));
    let crossed = decode(&crossed).expect("well formed");
    assert_eq!(crossed.verify().err(), Some(VerifyError::BadSignature));
}

#[test]
fn verdicts() {
    let m = |instance, seq| Mark { instance, seq };
    assert_eq!(Verdict::judge(None, m(1, 0)), Verdict::First);
    assert_eq!(Verdict::judge(Some(m(5, 3)), m(5, 4)), Verdict::Newer);
    assert_eq!(Verdict::judge(Some(m(5, 3)), m(6, 0)), Verdict::Restarted);
    assert_eq!(Verdict::judge(Some(m(5, 3)), m(5, 3)), Verdict::Stale);
    assert_eq!(Verdict::judge(Some(m(5, 3)), m(5, 2)), Verdict::Stale);
    assert_eq!(Verdict::judge(Some(m(5, 3)), m(4, 100)), Verdict::Stale);
}

/// A receiver as discovery will use it: drop what is not fresh before verifying, believe only
/// what verified. Returns what it believes of `key` after each datagram.
#[derive(Default)]
struct Receiver {
    believed: std::collections::BTreeMap<PeerId, Announcement>,
    verifications: usize,
}

impl Receiver {
    fn hear(&mut self, data: &[u8]) {
        let Ok(u) = decode(data) else { return };
        let held = self.believed.get(&u.key()).map(|a| a.mark);
        if Verdict::judge(held, u.mark()) == Verdict::Stale {
            return;
        }
        self.verifications += 1;
        if let Ok(v) = u.verify() {
            self.believed.insert(v.key(), *v.announcement());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a sender announces, it decodes and verifies to the same announcement.
    #[test]
    fn any_announcement_round_trips(
        instance in any::<u64>(), seq in any::<u64>(), port in any::<u16>(),
        revision in any::<u64>(), bye in any::<bool>(), seed in any::<u8>(),
    ) {
        let a = Announcement { mark: Mark { instance, seq }, port, revision, bye };
        let id = identity(seed);
        let data = encode(&a, &id);
        prop_assert!(data.len() <= MAX_DATAGRAM);
        let v = decode(&data).expect("decodes").verify().expect("verifies");
        prop_assert_eq!((v.key(), *v.announcement()), (id.key(), a));
    }

    /// Arbitrary bytes never panic the decoder, and never verify.
    #[test]
    fn arbitrary_bytes_never_verify(mut bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
        if bytes.len() >= 5 {
            bytes[..5].copy_from_slice(b"P2PS\x02");
        }
        if let Ok(u) = decode(&bytes) {
            prop_assert!(u.verify().is_err());
        }
    }

    /// A sender restarts and announces; the network delivers any of its datagrams in any
    /// order, any number of times, mixed with forgeries (its body re-signed by another key,
    /// its datagrams altered). The receiver's belief is always the newest genuine datagram it
    /// heard so far (a function of the set heard, not of order or repetition), and forged
    /// content is never believed.
    #[test]
    fn replays_reorders_and_forgeries_change_nothing(
        history in prop::collection::vec((any::<bool>(), any::<u16>(), any::<bool>()), 1..12),
        deliveries in prop::collection::vec((any::<usize>(), 0u8..4, any::<usize>()), 1..40),
    ) {
        let (sender, forger) = (identity(1), identity(2));
        // The sender's history: (restart here?, port, bye) per announcement.
        let mut mark = Mark { instance: 1_000, seq: 0 };
        let mut sent = Vec::new();
        for (i, &(restart, port, bye)) in history.iter().enumerate() {
            if restart && i > 0 {
                mark = Mark { instance: mark.instance + 1 + u64::from(port % 7), seq: 0 };
            }
            let a = Announcement { mark, port, revision: i as u64, bye };
            sent.push((a, encode(&a, &sender)));
            mark.seq += 1;
        }
        let mut rx = Receiver::default();
        let mut newest: Option<Announcement> = None;
        for (pick, how, at) in deliveries {
            let (a, data) = &sent[pick % sent.len()];
            let split = data.len() - SIGNATURE_LEN;
            match how {
                0 => {
                    rx.hear(data);
                    if newest.is_none_or(|n| n.mark < a.mark) {
                        newest = Some(*a);
                    }
                }
                1 => {
                    let mut forged = data[..split].to_vec();
                    forged.extend_from_slice(&forger.sign(Context::Announce, &data[..split]));
                    rx.hear(&forged);
                }
                2 => {
                    let mut altered = data.clone();
                    let bit = at % (altered.len() * 8);
                    altered[bit / 8] ^= 1 << (bit % 8);
                    rx.hear(&altered);
                }
                _ => {
                    // The forger announces itself with the sender's content: its own key.
                    rx.hear(&encode(a, &forger));
                }
            }
            prop_assert_eq!(rx.believed.get(&sender.key()).copied(), newest);
        }
    }
}
