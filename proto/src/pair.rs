//! Pairing two peers by a short code (`p2pshare pair`): a password-authenticated key exchange
//! (SPAKE2) over the code, then each side's key, proven and confirmed under the exchange's
//! key. What the two sides get is each other's key, for their allow lists. Pure: bytes in,
//! bytes out; the randomness comes from the caller's seed.
//!
//! The code is 8 decimal digits shown as `NNNN-NNNN` (26.6 bits): short enough to read across
//! a room and type on another machine. That is enough only because of the PAKE: someone who
//! does not know the code and talks to one side (or sits between both) learns nothing it can
//! test offline, and gets exactly one guess per run: its one try succeeds with probability
//! 10⁻⁸, and fails the pairing on both sides, which then stop (a new code is needed).
//!
//! Wire (on a TCP connection from the joining side to the waiting side; fixed lengths, so
//! each side reads exactly what it expects):
//!
//! ```text
//! joiner -> waiter:  "P2PP" 0x01 | SPAKE2 message (33 B)                         38 B
//! waiter -> joiner:  "P2PP" 0x01 | SPAKE2 message (33 B)                         38 B
//! joiner -> waiter:  proof: key (32) | Ed25519 sig (64) | HMAC-SHA256 (32)     128 B
//! waiter -> joiner:  0x00 (your proof failed: a wrong code)                       1 B
//!                  | 0x01 | proof                                             129 B
//! joiner -> waiter:  0x01 (done: the waiter's proof verified)                     1 B
//! ```
//!
//! A proof binds the sender's key to this run: the MAC is keyed by the SPAKE2 key (only a
//! holder of the code has it) over the transcript (both SPAKE2 messages), the role and the
//! key; the signature (context [`Context::Pair`]) over the same shows the sender holds the
//! key's secret, so nobody can pair a key it does not own. The joiner proves first, so a
//! waiter that is an impostor learns nothing from the joiner but a failed MAC it cannot use.
//!
//! Invariants: every failure is a typed [`PairError`]; a proof is accepted only if its MAC
//! (compared in constant time) and its signature verify; the SPAKE2 key never leaves this
//! module.

use std::fmt;

use sha2::{Digest as _, Sha256};
use spake2::{Ed25519Group, Identity as SpakeId, Password, Spake2};

use crate::identity::{Context, Identity, SIGNATURE_LEN};
use crate::ids::PeerId;
use crate::rng::KeyRng;

/// The first bytes of each side's opening message.
pub const MAGIC: &[u8; 5] = b"P2PP\x01";
/// Length of the opening message each side sends.
pub const HELLO_LEN: usize = MAGIC.len() + 33;
/// Length of a proof.
pub const PROOF_LEN: usize = 32 + SIGNATURE_LEN + 32;
/// The waiter's verdict byte: the joiner's proof failed (a wrong code).
pub const REFUSED: u8 = 0;
/// The verdict or the final byte: all is well so far.
pub const ACCEPTED: u8 = 1;
/// How many digits a code has.
pub const CODE_DIGITS: usize = 8;

/// The waiting side's offer, broadcast on the discovery port (four times a second) while it waits:
/// "a pairing waits at this TCP port of my address". It carries nothing secret (the code
/// never travels), so whoever hears it may connect: a wrong code costs that one try.
pub fn offer(port: u16) -> Vec<u8> {
    let mut d = MAGIC.to_vec();
    d.extend_from_slice(b"offer");
    d.extend_from_slice(&port.to_be_bytes());
    d
}

/// The TCP port in a pairing offer, if `data` is one.
pub fn parse_offer(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(&MAGIC[..])?.strip_prefix(b"offer")?;
    let port: [u8; 2] = rest.try_into().ok()?;
    Some(u16::from_be_bytes(port)).filter(|p| *p != 0)
}

/// Which side of a pairing this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Printed the code and waits (`p2pshare pair`): accepts the connection.
    Waiter,
    /// Was given the code (`p2pshare pair CODE`): connects.
    Joiner,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Waiter => b"waiter",
            Role::Joiner => b"joiner",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Waiter => Role::Joiner,
            Role::Joiner => Role::Waiter,
        }
    }
}

/// Why a pairing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The other side's opening message is not a pairing message of ours.
    NotPairing,
    /// The other side's SPAKE2 message is malformed.
    Malformed,
    /// The other side's proof does not verify under our key: it used another code.
    WrongCode,
    /// The MAC verified but the signature did not: the other side named a key it does not
    /// hold.
    BadSignature,
    /// The other side paired with our own key.
    OwnKey,
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairError::NotPairing => f.write_str("the other side does not speak p2pshare pairing"),
            PairError::Malformed => f.write_str("the other side's pairing message is malformed"),
            PairError::WrongCode => f.write_str("wrong code: the two sides used different codes"),
            PairError::BadSignature => {
                f.write_str("the other side named a key it cannot sign with")
            }
            PairError::OwnKey => f.write_str("the other side has this folder's own key"),
        }
    }
}

impl std::error::Error for PairError {}

/// A pairing code: 8 decimal digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// A new random code, from the caller's generator.
    pub fn random(rng: &mut KeyRng) -> Code {
        let mut digits = String::with_capacity(CODE_DIGITS);
        while digits.len() < CODE_DIGITS {
            let mut b = [0u8; 1];
            rng.fill(&mut b);
            // 250 = 25 × 10: below it every digit is as likely (no modulo bias).
            if b[0] < 250 {
                digits.push(char::from(b'0' + b[0] % 10));
            }
        }
        Code(digits)
    }

    /// The code a person typed: 8 digits, with any dashes or spaces between them.
    pub fn parse(s: &str) -> Option<Code> {
        let digits: String = s.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Code(digits))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", &self.0[..4], &self.0[4..])
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A code is a secret while the pairing runs.
        f.write_str("Code(..)")
    }
}

/// rand_core 0.6's traits over a [`KeyRng`] (what spake2 asks for).
struct Rng06(KeyRng);

impl rand_core06::RngCore for Rng06 {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core06::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core06::CryptoRng for Rng06 {}

/// A pairing begun: our opening message is ready ([`Start::hello`]).
pub struct Start {
    role: Role,
    spake: Spake2<Ed25519Group>,
    hello: Vec<u8>,
}

impl Start {
    /// Begins a pairing as `role` over `code`, with secrets from `seed` (32 bytes of OS
    /// randomness).
    pub fn new(role: Role, code: &Code, seed: [u8; 32]) -> Start {
        let password = Password::new(format!("p2pshare-pair-v1:{}", code.0));
        let (joiner, waiter) = (
            SpakeId::new(b"p2pshare-pair-joiner"),
            SpakeId::new(b"p2pshare-pair-waiter"),
        );
        let rng = Rng06(KeyRng::new(seed));
        let (spake, msg) = match role {
            Role::Joiner => {
                Spake2::<Ed25519Group>::start_a_with_rng(&password, &joiner, &waiter, rng)
            }
            Role::Waiter => {
                Spake2::<Ed25519Group>::start_b_with_rng(&password, &joiner, &waiter, rng)
            }
        };
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&msg);
        Start { role, spake, hello }
    }

    /// Our opening message ([`HELLO_LEN`] bytes).
    pub fn hello(&self) -> &[u8] {
        &self.hello
    }

    /// The other side's opening message arrived: the exchange is done (whether both used the
    /// same code shows only in the proofs).
    pub fn finish(self, theirs: &[u8]) -> Result<Confirm, PairError> {
        if theirs.len() != HELLO_LEN || !theirs.starts_with(MAGIC) {
            return Err(PairError::NotPairing);
        }
        let key = self
            .spake
            .finish(&theirs[MAGIC.len()..])
            .map_err(|_| PairError::Malformed)?;
        // The transcript: the joiner's message, then the waiter's.
        let (j, w) = match self.role {
            Role::Joiner => (&self.hello[..], theirs),
            Role::Waiter => (theirs, &self.hello[..]),
        };
        let transcript: [u8; 32] = Sha256::new()
            .chain_update(b"p2pshare-pair-v1 transcript")
            .chain_update(j)
            .chain_update(w)
            .finalize()
            .into();
        Ok(Confirm {
            role: self.role,
            key,
            transcript,
        })
    }
}

/// The exchange is done: prove our key ([`Confirm::proof`]) and check theirs
/// ([`Confirm::check`]).
pub struct Confirm {
    role: Role,
    key: Vec<u8>,
    transcript: [u8; 32],
}

impl Confirm {
    /// What `role` signs and MACs for `key`.
    fn message(&self, role: Role, key: &PeerId) -> Vec<u8> {
        let mut m = Vec::with_capacity(32 + 8 + 32);
        m.extend_from_slice(&self.transcript);
        m.extend_from_slice(role.label());
        m.extend_from_slice(&key.0);
        m
    }

    /// HMAC-SHA256 (RFC 2104) of `message` under the exchange's key (32 bytes, under the
    /// 64-byte block: used as it is). Written out here: our `sha2` is newer than the `hmac`
    /// crate in the tree, and the construction is six lines.
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut block = [0u8; 64];
        block[..self.key.len().min(64)].copy_from_slice(&self.key[..self.key.len().min(64)]);
        let pad = |byte: u8| block.map(|b| b ^ byte);
        let inner: [u8; 32] = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize()
            .into();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// Our proof ([`PROOF_LEN`] bytes): our key, our signature and the MAC under the
    /// exchange's key.
    pub fn proof(&self, me: &Identity) -> Vec<u8> {
        let key = me.key();
        let message = self.message(self.role, &key);
        let mut out = Vec::with_capacity(PROOF_LEN);
        out.extend_from_slice(&key.0);
        out.extend_from_slice(&me.sign(Context::Pair, &message));
        out.extend_from_slice(&self.mac(&message));
        out
    }

    /// Checks the other side's proof: its key, if the MAC (the same code) and its signature
    /// verify and it is not `me`.
    pub fn check(&self, proof: &[u8], me: &PeerId) -> Result<PeerId, PairError> {
        if proof.len() != PROOF_LEN {
            return Err(PairError::Malformed);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&proof[..32]);
        let key = PeerId(key);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&proof[32..32 + SIGNATURE_LEN]);
        let message = self.message(self.role.other(), &key);
        // Compared in constant time: every byte is looked at whatever the first difference.
        let diff = self
            .mac(&message)
            .iter()
            .zip(&proof[32 + SIGNATURE_LEN..])
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(PairError::WrongCode);
        }
        key.verify(Context::Pair, &message, &sig)
            .map_err(|_| PairError::BadSignature)?;
        if key == *me {
            return Err(PairError::OwnKey);
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        code_j: &Code,
        code_w: &Code,
    ) -> (Result<PeerId, PairError>, Option<Result<PeerId, PairError>>) {
        let (jid, wid) = (
            Identity::from_secret_bytes(&[1; 32]),
            Identity::from_secret_bytes(&[2; 32]),
        );
        let j = Start::new(Role::Joiner, code_j, [3; 32]);
        let w = Start::new(Role::Waiter, code_w, [4; 32]);
        assert_eq!(j.hello().len(), HELLO_LEN);
        let (jh, wh) = (j.hello().to_vec(), w.hello().to_vec());
        let j = j.finish(&wh).expect("exchange");
        let w = w.finish(&jh).expect("exchange");
        let jp = j.proof(&jid);
        assert_eq!(jp.len(), PROOF_LEN);
        let at_waiter = w.check(&jp, &wid.key());
        let at_joiner = at_waiter
            .is_ok()
            .then(|| j.check(&w.proof(&wid), &jid.key()));
        (at_waiter, at_joiner)
    }

    #[test]
    fn the_same_code_pairs_the_two_keys() {
        let code = Code::parse("1234-5678").expect("code");
        let (w, j) = run(&code, &code);
        assert_eq!(w, Ok(Identity::from_secret_bytes(&[1; 32]).key()));
        assert_eq!(j, Some(Ok(Identity::from_secret_bytes(&[2; 32]).key())));
    }

    #[test]
    fn a_wrong_code_fails_at_the_first_proof() {
        let (w, j) = run(
            &Code::parse("12345678").expect("code"),
            &Code::parse("12345679").expect("code"),
        );
        assert_eq!(w, Err(PairError::WrongCode));
        assert_eq!(j, None, "the waiter never proves itself");
    }

    #[test]
    fn a_proof_cannot_be_moved_to_another_key_or_run() {
        let code = Code::parse("11112222").expect("code");
        let me = Identity::from_secret_bytes(&[1; 32]);
        let thief = Identity::from_secret_bytes(&[9; 32]);
        let j = Start::new(Role::Joiner, &code, [3; 32]);
        let w = Start::new(Role::Waiter, &code, [4; 32]);
        let (jh, wh) = (j.hello().to_vec(), w.hello().to_vec());
        let (j, w) = (j.finish(&wh).expect("j"), w.finish(&jh).expect("w"));
        let mut proof = j.proof(&me);
        // Another key put in the proof: the MAC covers the key.
        proof[..32].copy_from_slice(&thief.key().0);
        assert_eq!(w.check(&proof, &PeerId([0; 32])), Err(PairError::WrongCode));
        // Every flipped bit fails.
        let good = j.proof(&me);
        for i in 0..PROOF_LEN {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(w.check(&bad, &PeerId([0; 32])).is_err(), "bit in byte {i}");
        }
        // A proof from another run with the same code does not verify in this one.
        let j2 = Start::new(Role::Joiner, &code, [5; 32]);
        let w2 = Start::new(Role::Waiter, &code, [6; 32]);
        let (j2h, w2h) = (j2.hello().to_vec(), w2.hello().to_vec());
        let j2 = j2.finish(&w2h).expect("j2");
        drop(w2.finish(&j2h));
        assert_eq!(
            w.check(&j2.proof(&me), &PeerId([0; 32])),
            Err(PairError::WrongCode)
        );
        // Our own key paired back to us is refused.
        assert_eq!(w.check(&good, &me.key()), Err(PairError::OwnKey));
        // Not a pairing message.
        let w3 = Start::new(Role::Waiter, &code, [7; 32]);
        assert!(matches!(
            w3.finish(b"P2PT\x03\x01"),
            Err(PairError::NotPairing)
        ));
    }

    #[test]
    fn offers_round_trip_and_nothing_else_is_one() {
        assert_eq!(parse_offer(&offer(41234)), Some(41234));
        assert_eq!(parse_offer(&offer(0)), None);
        assert_eq!(parse_offer(b"P2PP\x01offer\x01"), None);
        assert_eq!(parse_offer(b"P2PS\x02whatever"), None);
        assert_eq!(parse_offer(&[&offer(5)[..], b"x"].concat()), None);
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // RFC 4231, test case 2.
        let c = Confirm {
            role: Role::Joiner,
            key: b"Jefe".to_vec(),
            transcript: [0; 32],
        };
        assert_eq!(
            crate::hex(&c.mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn codes_are_eight_digits_and_typed_loosely() {
        let mut rng = KeyRng::new([1; 32]);
        let c = Code::random(&mut rng);
        let shown = c.to_string();
        assert_eq!(shown.len(), 9);
        assert_eq!(Code::parse(&shown), Some(c.clone()));
        assert_eq!(Code::parse(&shown.replace('-', " ")), Some(c));
        assert_eq!(
            format!("{:?}", Code::parse("12345678").expect("code")),
            "Code(..)"
        );
        for bad in ["1234567", "123456789", "1234-567a", ""] {
            assert!(Code::parse(bad).is_none(), "{bad}");
        }
        // Every digit turns up.
        let all: String = (0..20).map(|_| Code::random(&mut rng).0).collect();
        assert!((b'0'..=b'9').all(|d| all.as_bytes().contains(&d)));
    }
}
