//! Sealed records after the handshake: `len:u16be` then a Noise transport message (the
//! ciphertext and its 16-byte tag). The plaintext is a byte stream; records cut it wherever the
//! sender likes.
//!
//! Each direction has its own key and a counter nonce that both sides advance per record, so a
//! record replayed, dropped, reordered or altered on the way fails authentication
//! ([`TransportError::Decrypt`]): the only records that open are the sender's, in its order.
//! What it cannot tell is a connection cut between two records from one closed there (Noise has
//! no closing record): the plaintext is then a prefix of what was sent, whole records only, and
//! the frame layer above sees a stream that ended, as with any lost link.
//!
//! Copies: [`Transport::seal`] writes each record straight into the caller's buffer (the AEAD
//! copies the plaintext there and encrypts it in place: one pass that copies); [`Transport::open`]
//! decrypts into the caller's buffer the same way. No other buffer is involved.
//!
//! Invariants: the first error ends the transport, and every later call returns it again;
//! `open` consumes only whole records and never buffers input itself; no input makes it panic.

use std::fmt;

use crate::noise::Suite;

/// Bytes of the authentication tag of each record.
pub const TAG_LEN: usize = 16;
/// Longest record body (ciphertext with tag): Noise's limit for one message.
pub const MAX_RECORD: usize = 65_535;
/// Most plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD - TAG_LEN;
/// Bytes each record adds to its plaintext: the length prefix and the tag.
pub const RECORD_OVERHEAD: usize = 2 + TAG_LEN;

/// Bytes on the wire for `plaintext_len` bytes sealed by one [`Transport::seal`] call.
pub fn sealed_len(plaintext_len: usize) -> usize {
    plaintext_len + plaintext_len.div_ceil(MAX_RECORD_PLAINTEXT) * RECORD_OVERHEAD
}

/// Why a transport failed; the connection must be closed (and the reason counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// A record's length prefix is below the tag's length: no sender writes that.
    ShortRecord(u16),
    /// A record failed authentication: altered, replayed, reordered or from another
    /// connection.
    Decrypt,
    /// The connection ended inside a record.
    Truncated,
    /// 2^64 records went one way: the nonces are spent (never in practice).
    Exhausted,
    /// snow refused an operation our use of it never asks for (a bug, not an attack).
    Internal,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::ShortRecord(n) => {
                write!(f, "record of {n} bytes, shorter than its tag")
            }
            TransportError::Decrypt => f.write_str("record failed authentication"),
            TransportError::Truncated => f.write_str("connection closed inside a record"),
            TransportError::Exhausted => f.write_str("record nonces exhausted"),
            TransportError::Internal => f.write_str("internal transport error"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<snow::Error> for TransportError {
    fn from(e: snow::Error) -> TransportError {
        match e {
            snow::Error::Decrypt => TransportError::Decrypt,
            snow::Error::State(snow::error::StateProblem::Exhausted) => TransportError::Exhausted,
            _ => TransportError::Internal,
        }
    }
}

/// Both directions' keys and nonces of one established connection.
pub struct Transport {
    noise: snow::TransportState,
    suite: Suite,
    failed: Option<TransportError>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("suite", &self.suite)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(noise: snow::TransportState, suite: Suite) -> Transport {
        Transport {
            noise,
            suite,
            failed: None,
        }
    }

    /// The cipher of this connection.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Seals `plaintext` as records appended to `out` ([`sealed_len`] bytes; nothing for an
    /// empty plaintext). Call in the order the bytes must arrive: records are numbered.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), TransportError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let before = out.len();
        out.reserve(sealed_len(plaintext.len()));
        for piece in plaintext.chunks(MAX_RECORD_PLAINTEXT) {
            let len = piece.len() + TAG_LEN;
            // `piece` is at most MAX_RECORD_PLAINTEXT: `len` fits the u16 prefix.
            out.extend_from_slice(&(len as u16).to_be_bytes());
            let start = out.len();
            out.resize(start + len, 0);
            let e = match self.noise.write_message(piece, &mut out[start..]) {
                Ok(n) if n == len => continue,
                Ok(_) => TransportError::Internal,
                Err(e) => e.into(),
            };
            out.truncate(before);
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Opens every whole record at the start of `input`, appending the plaintext to `out`;
    /// returns how many bytes of `input` it consumed (an incomplete record at the end is left
    /// for the next call, with more bytes behind it). An error ends the connection.
    pub fn open(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, TransportError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut used = 0;
        while let Some(prefix) = input.get(used..used + 2) {
            let len = u16::from_be_bytes([prefix[0], prefix[1]]);
            if usize::from(len) < TAG_LEN {
                return Err(self.fail(TransportError::ShortRecord(len)));
            }
            let Some(record) = input.get(used + 2..used + 2 + usize::from(len)) else {
                break;
            };
            let start = out.len();
            // The AEAD wants room for the tag too; the length is cut back below.
            out.resize(start + record.len(), 0);
            match self.noise.read_message(record, &mut out[start..]) {
                Ok(n) => out.truncate(start + n),
                Err(e) => {
                    out.truncate(start);
                    return Err(self.fail(e.into()));
                }
            }
            used += 2 + record.len();
        }
        Ok(used)
    }

    /// The connection ended with `unconsumed` bytes not yet opened: an error if they are part
    /// of a record (the plaintext before them is whole records, already delivered).
    pub fn closed(&mut self, unconsumed: usize) -> Result<(), TransportError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if unconsumed > 0 {
            return Err(self.fail(TransportError::Truncated));
        }
        Ok(())
    }

    fn fail(&mut self, e: TransportError) -> TransportError {
        self.failed = Some(e);
        e
    }
}
