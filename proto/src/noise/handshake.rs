//! One connection's handshake: preambles, then Noise XX, as a sans-IO machine.
//!
//! Feed it what the socket read ([`Handshake::handle_input`]: it says how many bytes were its
//! own, the rest is already sealed records), send what [`Handshake::poll_transmit`] gives, and
//! once [`Handshake::is_done`] take the [`Established`] transport with [`Handshake::finish`].
//!
//! Invariants: it buffers at most one handshake message (≤ 194 bytes) of input; every message
//! has the exact length its place in the pattern gives (anything else is
//! [`HandshakeError::BadLength`] before any cryptography); the first error ends it and is
//! returned again by every later call; no input makes it panic. The remote key is known only
//! once its signature over the Noise static key verified and Noise authenticated that static
//! key. It keeps no deadline: the caller bounds the handshake in time (the session's timer for
//! a connection that has not said hello).

use std::fmt;

use crate::ids::PeerId;
use crate::noise::transport::Transport;
use crate::noise::{
    FLAG_AES, LocalKeys, MAGIC, PAYLOAD_LEN, PREAMBLE_LEN, Suite, VERSION, resolver, verify_payload,
};

/// Noise prologue: a fixed label, then the dialer's and the acceptor's preambles.
const PROLOGUE_LABEL: &[u8] = b"p2pshare-noise-v3:";
/// The length prefix of a handshake message.
const LEN_PREFIX: usize = 2;
/// Message 1: the dialer's ephemeral key, in clear, empty payload.
const MSG1_LEN: usize = 32;
/// Message 2: ephemeral key, encrypted static key, encrypted identity payload.
const MSG2_LEN: usize = 32 + (32 + TAG) + (PAYLOAD_LEN + TAG);
/// Message 3: encrypted static key, encrypted identity payload.
const MSG3_LEN: usize = (32 + TAG) + (PAYLOAD_LEN + TAG);
const TAG: usize = 16;

/// Why a handshake failed; the connection must be closed (and the reason counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The other side's first bytes are not `P2PT` (another program).
    Foreign,
    /// A p2pshare peer of the previous, unencrypted wire version (2): it cannot talk to us.
    OldVersion,
    /// `P2PT` with a version we do not know.
    UnknownVersion(u8),
    /// A handshake message whose length is not the one its place in the pattern gives.
    BadLength(u16),
    /// A handshake message failed authentication: altered on the way, a preamble altered, a
    /// replayed or foreign message.
    Decrypt,
    /// The key exchange failed (an invalid public key).
    KeyExchange,
    /// The identity payload is not a 32-byte Ed25519 key and a 64-byte signature, or message
    /// 1 carried a payload.
    BadPayload,
    /// The identity's signature does not bind the Noise static key the other side proved.
    BadSignature,
    /// The dialer expected one key and the other side proved another.
    WrongPeer {
        /// Whom we meant to reach.
        expected: PeerId,
        /// Who answered.
        found: PeerId,
    },
    /// The other side is ourselves (our own key): a connection to our own address.
    OwnKey,
    /// The connection ended before the handshake did.
    Truncated,
    /// snow refused an operation that our use of it never asks for (a bug, not an attack).
    Internal,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Foreign => f.write_str("not a p2pshare connection"),
            HandshakeError::OldVersion => {
                f.write_str("a p2pshare peer of the old unencrypted protocol (version 2)")
            }
            HandshakeError::UnknownVersion(v) => write!(f, "unknown transfer protocol version {v}"),
            HandshakeError::BadLength(n) => write!(f, "handshake message of unexpected length {n}"),
            HandshakeError::Decrypt => f.write_str("handshake message failed authentication"),
            HandshakeError::KeyExchange => f.write_str("key exchange failed"),
            HandshakeError::BadPayload => f.write_str("malformed identity in the handshake"),
            HandshakeError::BadSignature => {
                f.write_str("the identity's signature does not bind the handshake key")
            }
            HandshakeError::WrongPeer { expected, found } => {
                write!(f, "expected peer {expected}, but {found} answered")
            }
            HandshakeError::OwnKey => f.write_str("connected to ourselves"),
            HandshakeError::Truncated => f.write_str("connection closed during the handshake"),
            HandshakeError::Internal => f.write_str("internal handshake error"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<snow::Error> for HandshakeError {
    fn from(e: snow::Error) -> HandshakeError {
        match e {
            snow::Error::Decrypt => HandshakeError::Decrypt,
            snow::Error::Dh => HandshakeError::KeyExchange,
            _ => HandshakeError::Internal,
        }
    }
}

/// A finished handshake: the transport and who is at the other end.
#[derive(Debug)]
pub struct Established {
    /// Seals and opens the records of this connection.
    pub transport: Transport,
    /// The other side's identity, proven.
    pub remote: PeerId,
    /// The cipher both sides agreed on.
    pub suite: Suite,
}

enum Stage {
    /// Waiting for the other side's preamble.
    Preamble,
    /// Waiting for Noise message `next` (1, 2 or 3).
    Message {
        state: Box<snow::HandshakeState>,
        next: u8,
        suite: Suite,
    },
    /// Finished: the transport is ready.
    Done {
        transport: Box<snow::TransportState>,
        remote: PeerId,
        suite: Suite,
    },
}

/// The handshake of one connection; see the module doc.
pub struct Handshake {
    dialer: bool,
    expected: Option<PeerId>,
    local: LocalKeys,
    seed: [u8; 32],
    preamble: [u8; PREAMBLE_LEN],
    input: Vec<u8>,
    output: Vec<u8>,
    stage: Stage,
    failed: Option<HandshakeError>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Preamble => "preamble",
            Stage::Message { next: 1, .. } => "message 1",
            Stage::Message { next: 2, .. } => "message 2",
            Stage::Message { .. } => "message 3",
            Stage::Done { .. } => "done",
        };
        f.debug_struct("Handshake")
            .field("dialer", &self.dialer)
            .field("expected", &self.expected)
            .field("stage", &stage)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Handshake {
    /// The handshake of a connection we opened. With `expected`, the other side must prove
    /// that key (a peer we meant to reach), else the handshake fails before we send our own
    /// identity. `aes_here`: [`crate::noise::cpu_has_aes`] (or the simulator's choice).
    /// `seed`: fresh from the node's [`crate::rng::KeyRng`], for the ephemeral key.
    pub fn dial(
        local: &LocalKeys,
        expected: Option<PeerId>,
        aes_here: bool,
        seed: [u8; 32],
    ) -> Handshake {
        Handshake::new(true, local, expected, aes_here, seed)
    }

    /// The handshake of a connection opened to us (once its first bytes showed it is ours,
    /// not a Python request). Arguments as for [`Handshake::dial`].
    pub fn accept(local: &LocalKeys, aes_here: bool, seed: [u8; 32]) -> Handshake {
        Handshake::new(false, local, None, aes_here, seed)
    }

    fn new(
        dialer: bool,
        local: &LocalKeys,
        expected: Option<PeerId>,
        aes_here: bool,
        seed: [u8; 32],
    ) -> Handshake {
        let mut preamble = [0u8; PREAMBLE_LEN];
        preamble[..4].copy_from_slice(MAGIC);
        preamble[4] = VERSION;
        preamble[5] = if aes_here { FLAG_AES } else { 0 };
        Handshake {
            dialer,
            expected,
            local: local.clone(),
            seed,
            preamble,
            input: Vec::with_capacity(LEN_PREFIX + MSG2_LEN),
            output: preamble.to_vec(),
            stage: Stage::Preamble,
            failed: None,
        }
    }

    /// True once the transport is ready ([`Handshake::finish`]).
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done { .. })
    }

    /// The other side's key once proven (the dialer knows it after message 2, the acceptor
    /// after message 3).
    pub fn remote(&self) -> Option<PeerId> {
        match &self.stage {
            Stage::Done { remote, .. } => Some(*remote),
            _ => None,
        }
    }

    /// Appends the bytes to send now to `buf`; returns how many. Call after creating the
    /// handshake and after every [`Handshake::handle_input`].
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.output.len();
        buf.append(&mut self.output);
        n
    }

    /// Takes bytes the other side sent: returns how many were the handshake's. Once it is done,
    /// the rest of `data` is sealed records for [`Established::transport`]. An error ends the
    /// handshake (close the connection and count the reason).
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize, HandshakeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut used = 0;
        while !self.is_done() {
            let need = match self.need() {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            if self.input.len() < need {
                let take = (need - self.input.len()).min(data.len() - used);
                if take == 0 {
                    break;
                }
                self.input.extend_from_slice(&data[used..used + take]);
                used += take;
                if let Stage::Preamble = self.stage
                    && let Err(e) = check_magic(&self.input)
                {
                    return Err(self.fail(e));
                }
                continue;
            }
            let unit = std::mem::take(&mut self.input);
            if let Err(e) = self.step(&unit) {
                return Err(self.fail(e));
            }
        }
        Ok(used)
    }

    /// The connection ended (EOF or reset): a handshake not done by then failed.
    pub fn closed(&mut self) -> Result<(), HandshakeError> {
        if self.is_done() {
            return Ok(());
        }
        Err(self.fail(self.failed.unwrap_or(HandshakeError::Truncated)))
    }

    /// The established connection, once [`Handshake::is_done`]; `None` before. The bytes
    /// still to send (the dialer's message 3) are appended to `buf` first: send them before
    /// any record.
    pub fn finish(mut self, buf: &mut Vec<u8>) -> Option<Established> {
        self.poll_transmit(buf);
        match self.stage {
            Stage::Done {
                transport,
                remote,
                suite,
            } => Some(Established {
                transport: Transport::new(*transport, suite),
                remote,
                suite,
            }),
            _ => None,
        }
    }

    /// How many bytes the input must hold for the next step.
    fn need(&self) -> Result<usize, HandshakeError> {
        let next = match &self.stage {
            Stage::Preamble => return Ok(PREAMBLE_LEN),
            Stage::Message { next, .. } => *next,
            Stage::Done { .. } => return Ok(0),
        };
        let Some(prefix) = self.input.get(..LEN_PREFIX) else {
            return Ok(LEN_PREFIX);
        };
        let len = u16::from_be_bytes([prefix[0], prefix[1]]);
        let want = match next {
            1 => MSG1_LEN,
            2 => MSG2_LEN,
            _ => MSG3_LEN,
        };
        if usize::from(len) != want {
            return Err(HandshakeError::BadLength(len));
        }
        Ok(LEN_PREFIX + want)
    }

    /// Acts on one complete unit of input: the preamble, or a length-prefixed message.
    fn step(&mut self, unit: &[u8]) -> Result<(), HandshakeError> {
        match std::mem::replace(&mut self.stage, Stage::Preamble) {
            Stage::Preamble => self.on_preamble(unit),
            Stage::Message { state, next, suite } => {
                self.on_message(state, next, suite, &unit[LEN_PREFIX..])
            }
            done @ Stage::Done { .. } => {
                self.stage = done;
                Ok(())
            }
        }
    }

    fn on_preamble(&mut self, theirs: &[u8]) -> Result<(), HandshakeError> {
        check_magic(theirs)?;
        match theirs[4] {
            VERSION => {}
            2 => return Err(HandshakeError::OldVersion),
            v => return Err(HandshakeError::UnknownVersion(v)),
        }
        let (dialer, acceptor) = if self.dialer {
            (&self.preamble[..], theirs)
        } else {
            (theirs, &self.preamble[..])
        };
        let suite = Suite::agree(dialer[5] & FLAG_AES != 0, acceptor[5] & FLAG_AES != 0);
        let mut prologue = PROLOGUE_LABEL.to_vec();
        prologue.extend_from_slice(dialer);
        prologue.extend_from_slice(acceptor);
        let resolver = resolver::SeededResolver::new(self.seed);
        let builder = snow::Builder::with_resolver(suite.params(), Box::new(resolver))
            .local_private_key(&self.local.static_private)?
            .prologue(&prologue)?;
        if self.dialer {
            let mut state = Box::new(builder.build_initiator()?);
            self.write(&mut state, &[], MSG1_LEN)?;
            self.stage = Stage::Message {
                state,
                next: 2,
                suite,
            };
        } else {
            self.stage = Stage::Message {
                state: Box::new(builder.build_responder()?),
                next: 1,
                suite,
            };
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        mut state: Box<snow::HandshakeState>,
        next: u8,
        suite: Suite,
        message: &[u8],
    ) -> Result<(), HandshakeError> {
        let mut payload = [0u8; MSG2_LEN];
        let n = state.read_message(message, &mut payload)?;
        let payload = &payload[..n];
        if next == 1 {
            if !payload.is_empty() {
                return Err(HandshakeError::BadPayload);
            }
            let ours = self.local.payload;
            self.write(&mut state, &ours, MSG2_LEN)?;
            self.stage = Stage::Message {
                state,
                next: 3,
                suite,
            };
            return Ok(());
        }
        let remote_static = state.get_remote_static().ok_or(HandshakeError::Internal)?;
        let remote = verify_payload(payload, remote_static)?;
        if remote == self.local.key {
            return Err(HandshakeError::OwnKey);
        }
        if let Some(expected) = self.expected
            && expected != remote
        {
            return Err(HandshakeError::WrongPeer {
                expected,
                found: remote,
            });
        }
        if next == 2 {
            let ours = self.local.payload;
            self.write(&mut state, &ours, MSG3_LEN)?;
        }
        self.stage = Stage::Done {
            transport: Box::new(state.into_transport_mode()?),
            remote,
            suite,
        };
        Ok(())
    }

    /// Writes the next message (whose length the pattern fixes at `len`) to the output.
    fn write(
        &mut self,
        state: &mut snow::HandshakeState,
        payload: &[u8],
        len: usize,
    ) -> Result<(), HandshakeError> {
        let mut message = [0u8; MSG2_LEN];
        let n = state.write_message(payload, &mut message)?;
        if n != len {
            return Err(HandshakeError::Internal);
        }
        // `len` is at most MSG2_LEN (192): it fits the u16 prefix.
        self.output.extend_from_slice(&(n as u16).to_be_bytes());
        self.output.extend_from_slice(&message[..n]);
        Ok(())
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.failed = Some(e);
        self.input = Vec::new();
        self.output.clear();
        e
    }
}

/// `Foreign` unless `bytes` (a prefix of a preamble) agree with the magic so far.
fn check_magic(bytes: &[u8]) -> Result<(), HandshakeError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] == MAGIC[..n] {
        Ok(())
    } else {
        Err(HandshakeError::Foreign)
    }
}
