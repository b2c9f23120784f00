//! A peer's long-term identity: an Ed25519 key pair ([`Identity`]) whose public half is the
//! peer's [`PeerId`], and the signatures it makes.
//!
//! Every signature is over a domain-separation prefix ([`Context`]) followed by the message, so
//! a signature made for one purpose (binding a Noise static key, signing a discovery datagram)
//! never verifies as the other, whatever the message bytes.
//!
//! Invariants: a key pair is made from randomness the caller passes in ([`KeyRng`]), never from
//! a source of its own, so the simulator can replay a run; the secret never appears in `Debug`
//! output; verification is strict ([`ed25519_dalek::VerifyingKey::verify_strict`]): small-order
//! ("weak") public keys and non-canonical signatures are refused, so one message has one valid
//! signature per key and a key that would accept every message cannot be presented.
//!
//! Cost: signing takes 15–35 µs, verifying 50–100 µs on this project's VM (`cargo run
//! --release -p p2pshare-bench --bin crypto` prints this machine's figures). Verification is the costly step
//! a remote can make us do, so callers budget it (see [`crate::wire::signed`]).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ids::PeerId;
use crate::rng::KeyRng;

/// Length of a signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// What a signature is for: its domain-separation prefix is signed before the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Binds a Noise static public key to the identity, in the handshake's payload (as
    /// libp2p's Noise handshake does with `noise-libp2p-static-key:`).
    NoiseStaticKey,
    /// A discovery datagram (version 2): the signature covers every byte before it.
    Announce,
    /// A pairing proof (`crate::pair`): the run's transcript, the sender's role and key.
    Pair,
}

impl Context {
    /// The bytes signed before the message.
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Context::NoiseStaticKey => b"p2pshare-noise-static-key:",
            Context::Announce => b"p2pshare-announce-v2:",
            Context::Pair => b"p2pshare-pair-v1:",
        }
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The 32 bytes are not an Ed25519 public key (not a curve point).
    BadKey,
    /// The signature does not verify for this key, context and message (or the key is of
    /// small order, or the signature is not canonical).
    BadSignature,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::BadKey => f.write_str("not an Ed25519 public key"),
            VerifyError::BadSignature => f.write_str("signature does not verify"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// A peer's long-term key pair. Create it once per shared folder ([`Identity::generate`]) and
/// keep it (the host stores [`Identity::secret_bytes`] in the folder's key file).
pub struct Identity {
    signing: SigningKey,
    key: PeerId,
}

impl Identity {
    /// A new key pair from `rng`: call on the first start of a folder, then store it.
    pub fn generate(rng: &mut KeyRng) -> Identity {
        let mut secret = rng.seed();
        let id = Identity::from_secret_bytes(&secret);
        secret.fill(0);
        id
    }

    /// The key pair whose secret (the 32-byte Ed25519 seed) is `secret`: call when loading a
    /// stored identity. Every 32-byte value is a valid secret.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Identity {
        let signing = SigningKey::from_bytes(secret);
        let key = PeerId(signing.verifying_key().to_bytes());
        Identity { signing, key }
    }

    /// The 32-byte secret, to store in the key file. Handle with care: whoever has it is this
    /// peer.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key: this peer's id.
    pub fn key(&self) -> PeerId {
        self.key
    }

    /// Signs `message` for `context`.
    pub fn sign(&self, context: Context, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut signed = Vec::with_capacity(context.prefix().len() + message.len());
        signed.extend_from_slice(context.prefix());
        signed.extend_from_slice(message);
        self.signing.sign(&signed).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret is never printed.
        write!(f, "Identity({})", self.key.short())
    }
}

impl PeerId {
    /// Checks that `signature` is this key's over `message` for `context`. Costs one Ed25519
    /// verification (50–100 µs): budget it before calling on bytes from the network.
    pub fn verify(
        &self,
        context: Context,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), VerifyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| VerifyError::BadKey)?;
        let mut signed = Vec::with_capacity(context.prefix().len() + message.len());
        signed.extend_from_slice(context.prefix());
        signed.extend_from_slice(message);
        key.verify_strict(&signed, &Signature::from_bytes(signature))
            .map_err(|_| VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u8) -> Identity {
        Identity::generate(&mut KeyRng::new([seed; 32]))
    }

    #[test]
    fn generated_from_the_rng_alone() {
        assert_eq!(identity(1).key(), identity(1).key());
        assert_ne!(identity(1).key(), identity(2).key());
        let id = identity(1);
        let again = Identity::from_secret_bytes(&id.secret_bytes());
        assert_eq!(again.key(), id.key());
    }

    #[test]
    fn sign_and_verify() {
        let id = identity(7);
        let sig = id.sign(Context::Announce, b"hello");
        assert_eq!(id.key().verify(Context::Announce, b"hello", &sig), Ok(()));
        // Another message, another context, another key, a flipped bit: all refused.
        let refused = Err(VerifyError::BadSignature);
        assert_eq!(id.key().verify(Context::Announce, b"hellp", &sig), refused);
        assert_eq!(
            id.key().verify(Context::NoiseStaticKey, b"hello", &sig),
            refused
        );
        assert_eq!(
            identity(8).key().verify(Context::Announce, b"hello", &sig),
            refused
        );
        for bit in [0, 100, 511] {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(id.key().verify(Context::Announce, b"hello", &bad), refused);
        }
    }

    #[test]
    fn contexts_do_not_overlap() {
        // Neither prefix is a prefix of the other: no message under one context reads as a
        // message under the other.
        let (a, b) = (Context::NoiseStaticKey.prefix(), Context::Announce.prefix());
        assert!(!a.starts_with(b) && !b.starts_with(a));
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        let sig = [0u8; SIGNATURE_LEN];
        // The identity point (small order): verify_strict refuses it for every message.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            PeerId(identity_point).verify(Context::Announce, b"x", &sig),
            Err(VerifyError::BadSignature)
        );
        // Not a point at all (y = 2 has no x on the curve).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            PeerId(not_a_point).verify(Context::Announce, b"x", &sig),
            Err(VerifyError::BadKey)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let id = identity(9);
        let shown = format!("{id:?}");
        assert_eq!(shown, format!("Identity({})", id.key().short()));
        assert!(!shown.contains(&crate::ids::hex(&id.secret_bytes()[..6])));
    }
}
