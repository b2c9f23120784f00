//! Encrypted, authenticated connections: a Noise XX handshake that proves each side's
//! [`PeerId`], then a stream of sealed records. Both are pure buffer transforms (sans-IO): bytes
//! in, bytes out, no socket, clock or OS randomness.
//!
//! # Wire format (transfer protocol version 3)
//!
//! ```text
//! each side, first:     "P2PT" 0x03 flags                     6 bytes (flags bit 0: AES in hardware)
//! dialer -> acceptor:   len:u16be  Noise XX message 1  (-> e)                     32 bytes
//! acceptor -> dialer:   len:u16be  message 2 (<- e, ee, s, es; payload)           192 bytes
//! dialer -> acceptor:   len:u16be  message 3 (-> s, se; payload)                  160 bytes
//! then, both ways:      len:u16be  sealed record (ciphertext + 16-byte tag)       16..=65535 bytes
//! ```
//!
//! - *Suite.* Both sides send their preamble at once; the dialer waits for the acceptor's before
//!   message 1. The cipher is AES-256-GCM when both preambles say "AES in hardware", else
//!   ChaCha20-Poly1305 ([`Suite::agree`]): the choice is a pure function of the two flag bytes,
//!   so both sides agree without another message, and a host without AES instructions never
//!   runs AES in software. Both preambles are the Noise prologue, so a flag changed on the way
//!   fails message 2. It costs one round trip before message 1 (the dialer cannot build its
//!   handshake state before it knows the protocol name).
//! - *Identity.* The payload of messages 2 and 3 is the sender's Ed25519 [`PeerId`] (32 bytes)
//!   and its signature over [`Context::NoiseStaticKey`]'s prefix and the sender's Noise static
//!   key (64 bytes), as libp2p's Noise handshake binds its static key. Message 1's payload is
//!   empty (it travels in clear). The dialer that expected a key and meets another stops before
//!   it sends message 3 ([`HandshakeError::WrongPeer`]).
//! - *Records.* The plaintext is a byte stream (the frames of [`crate::wire::frame`], without
//!   their preamble), cut into records of at most [`MAX_RECORD_PLAINTEXT`] bytes wherever the
//!   sender likes; a frame may span records and a record may hold several frames. Each record
//!   costs [`RECORD_OVERHEAD`] bytes: a 1 MiB chunk frame (41-byte header sealed on its own, then
//!   the payload) is 1 + 17 records, 324 bytes more on the wire (0.03 %).
//!
//! Randomness: the ephemeral keys come from a seed the caller draws from its
//! [`crate::rng::KeyRng`] per handshake ([`resolver`]), the static Noise key from the same
//! generator once per node ([`LocalKeys::new`]).

mod channel;
mod handshake;
mod resolver;
mod transport;

pub use channel::{Channel, ChannelError};
pub use handshake::{Established, Handshake, HandshakeError};
pub use transport::{
    MAX_RECORD, MAX_RECORD_PLAINTEXT, RECORD_OVERHEAD, TAG_LEN, Transport, TransportError,
    sealed_len,
};

use std::fmt;

use crate::identity::{Context, Identity, SIGNATURE_LEN, VerifyError};
use crate::ids::PeerId;
use crate::rng::KeyRng;

use resolver::SeededResolver;

/// The magic at the start of every native connection, both ways (as in version 2).
pub const MAGIC: &[u8; 4] = b"P2PT";
/// The transfer protocol version with Noise. Version 2 (plaintext frames) is refused.
pub const VERSION: u8 = 3;
/// Length of a preamble: magic, version, flags.
pub const PREAMBLE_LEN: usize = 6;
/// Flag bit: the sender's CPU has AES (and carry-less multiply) instructions.
const FLAG_AES: u8 = 1;
/// Length of the identity payload of messages 2 and 3: key and signature.
const PAYLOAD_LEN: usize = 32 + SIGNATURE_LEN;

/// The cipher a connection uses; the DH (X25519), the hash (SHA-256) and the pattern (XX) are
/// fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// `Noise_XX_25519_AESGCM_SHA256`: both sides have AES instructions.
    AesGcm,
    /// `Noise_XX_25519_ChaChaPoly_SHA256`: at least one side has none.
    ChaChaPoly,
}

impl Suite {
    /// The suite two sides settle on: AES-GCM only when both have AES in hardware.
    pub fn agree(dialer_has_aes: bool, acceptor_has_aes: bool) -> Suite {
        if dialer_has_aes && acceptor_has_aes {
            Suite::AesGcm
        } else {
            Suite::ChaChaPoly
        }
    }

    /// The Noise protocol name.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Suite::AesGcm => "Noise_XX_25519_AESGCM_SHA256",
            Suite::ChaChaPoly => "Noise_XX_25519_ChaChaPoly_SHA256",
        }
    }

    fn params(self) -> snow::params::NoiseParams {
        // Both names are valid constants: parsing cannot fail.
        match self.protocol_name().parse() {
            Ok(p) => p,
            Err(_) => unreachable!("constant Noise protocol names parse"),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Suite::AesGcm => "AES-256-GCM",
            Suite::ChaChaPoly => "ChaCha20-Poly1305",
        })
    }
}

/// True when this CPU runs AES-GCM in hardware (AES and carry-less multiply instructions): what
/// the host passes to [`Handshake::dial`] and [`Handshake::accept`]. A property of the machine,
/// read from the CPU's feature flags, never a choice: the simulator passes its own values.
pub fn cpu_has_aes() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        // Rust's "aes" on aarch64 means FEAT_AES and FEAT_PMULL.
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// What a node brings to every handshake: its identity key, a Noise static key pair made once
/// per node, and the identity's signature binding the two. Make it once at start.
#[derive(Clone)]
pub struct LocalKeys {
    key: PeerId,
    static_private: [u8; 32],
    payload: [u8; PAYLOAD_LEN],
}

impl LocalKeys {
    /// A fresh Noise static key pair from `rng`, signed by `identity`.
    pub fn new(identity: &Identity, rng: &mut KeyRng) -> LocalKeys {
        let resolver = SeededResolver::new(rng.seed());
        let builder = snow::Builder::with_resolver(Suite::ChaChaPoly.params(), Box::new(resolver));
        // Our resolver always has an rng and X25519: generate_keypair cannot fail.
        let Ok(pair) = builder.generate_keypair() else {
            unreachable!("the seeded resolver provides X25519 and an rng")
        };
        let mut static_private = [0u8; 32];
        static_private.copy_from_slice(&pair.private);
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..32].copy_from_slice(&identity.key().0);
        payload[32..].copy_from_slice(&identity.sign(Context::NoiseStaticKey, &pair.public));
        LocalKeys {
            key: identity.key(),
            static_private,
            payload,
        }
    }

    /// This node's identity key.
    pub fn key(&self) -> PeerId {
        self.key
    }
}

impl Drop for LocalKeys {
    fn drop(&mut self) {
        self.static_private.fill(0);
    }
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalKeys({})", self.key.short())
    }
}

/// Checks an identity payload against the Noise static key `remote_static` it arrived with:
/// the key it names, if its signature binds that static key.
fn verify_payload(payload: &[u8], remote_static: &[u8]) -> Result<PeerId, HandshakeError> {
    let (Ok(key), Ok(sig)) = (
        <[u8; 32]>::try_from(payload.get(..32).unwrap_or_default()),
        <[u8; SIGNATURE_LEN]>::try_from(payload.get(32..).unwrap_or_default()),
    ) else {
        return Err(HandshakeError::BadPayload);
    };
    let key = PeerId(key);
    match key.verify(Context::NoiseStaticKey, remote_static, &sig) {
        Ok(()) => Ok(key),
        Err(VerifyError::BadKey) => Err(HandshakeError::BadPayload),
        Err(VerifyError::BadSignature) => Err(HandshakeError::BadSignature),
    }
}

#[cfg(test)]
mod tests;
