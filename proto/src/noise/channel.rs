//! One native connection's cryptography from its first byte to its last: the [`Handshake`],
//! then the [`Transport`], behind one sans-IO type the session (and every test that speaks as a
//! peer) drives the same way.
//!
//! Feed it every byte the socket read ([`Channel::receive`]): handshake bytes are consumed,
//! sealed records are opened and their plaintext appended to the caller's buffer; send what
//! [`Channel::poll_transmit`] gives (the preamble and handshake messages, in clear) before
//! anything [`Channel::seal`] gives.
//!
//! Invariants: plaintext comes out only after the other side proved its key (the handshake is
//! done), and only in the order it was sealed; the channel buffers at most one incomplete
//! record (≤ 65,537 bytes) or one handshake message; the first error ends it and is returned
//! by every later call; no input makes it panic.

use std::fmt;

use crate::ids::PeerId;
use crate::noise::{Handshake, HandshakeError, LocalKeys, Transport, TransportError};

/// Why a channel failed: the connection must be closed and the reason counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The handshake failed (a foreign or old peer, a wrong key, a forged message, …).
    Handshake(HandshakeError),
    /// A record failed after the handshake (altered, replayed, cut short), or a record was
    /// sealed before the handshake was done.
    Transport(TransportError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Handshake(e) => write!(f, "handshake: {e}"),
            ChannelError::Transport(e) => write!(f, "record: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

enum Stage {
    Handshake(Box<Handshake>),
    Open {
        transport: Box<Transport>,
        remote: PeerId,
    },
    Failed(ChannelError),
}

/// A connection's handshake, then its records; see the module doc.
pub struct Channel {
    stage: Stage,
    /// Handshake bytes to send.
    output: Vec<u8>,
    /// Received bytes not yet opened: the start of a record.
    pending: Vec<u8>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Handshake(_) => "handshake".to_string(),
            Stage::Open { remote, .. } => format!("open to {remote}"),
            Stage::Failed(e) => format!("failed: {e}"),
        };
        f.debug_struct("Channel")
            .field("stage", &stage)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// The channel of a connection we opened; see [`Handshake::dial`].
    pub fn dial(
        local: &LocalKeys,
        expected: Option<PeerId>,
        aes_here: bool,
        seed: [u8; 32],
    ) -> Channel {
        Channel::new(Handshake::dial(local, expected, aes_here, seed))
    }

    /// The channel of a connection opened to us; see [`Handshake::accept`].
    pub fn accept(local: &LocalKeys, aes_here: bool, seed: [u8; 32]) -> Channel {
        Channel::new(Handshake::accept(local, aes_here, seed))
    }

    fn new(mut hs: Handshake) -> Channel {
        let mut output = Vec::new();
        hs.poll_transmit(&mut output);
        Channel {
            stage: Stage::Handshake(Box::new(hs)),
            output,
            pending: Vec::new(),
        }
    }

    /// The other side's key, once the handshake proved it.
    pub fn remote(&self) -> Option<PeerId> {
        match &self.stage {
            Stage::Open { remote, .. } => Some(*remote),
            _ => None,
        }
    }

    /// True once records may be sealed.
    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open { .. })
    }

    /// Bytes held towards the next record or handshake message.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Appends the handshake bytes to send now to `buf`. Call after creating the channel and
    /// after every [`Channel::receive`].
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) {
        buf.append(&mut self.output);
    }

    /// Takes bytes the other side sent; appends the plaintext of every whole record to
    /// `plain`. Returns the other side's key when this call finished the handshake.
    pub fn receive(
        &mut self,
        mut data: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Option<PeerId>, ChannelError> {
        let mut established = None;
        if let Stage::Handshake(hs) = &mut self.stage {
            let used = match hs.handle_input(data) {
                Ok(used) => used,
                Err(e) => return Err(self.fail(ChannelError::Handshake(e))),
            };
            data = &data[used..];
            hs.poll_transmit(&mut self.output);
            if !hs.is_done() {
                return Ok(None);
            }
            let Stage::Handshake(hs) = std::mem::replace(
                &mut self.stage,
                Stage::Failed(ChannelError::Transport(TransportError::Internal)),
            ) else {
                unreachable!("matched above")
            };
            let Some(done) = hs.finish(&mut self.output) else {
                return Err(self.fail(ChannelError::Handshake(HandshakeError::Internal)));
            };
            established = Some(done.remote);
            self.stage = Stage::Open {
                transport: Box::new(done.transport),
                remote: done.remote,
            };
        }
        match &mut self.stage {
            Stage::Open { transport, .. } => {
                let r = if self.pending.is_empty() {
                    transport.open(data, plain).map(|used| {
                        self.pending.extend_from_slice(&data[used..]);
                    })
                } else {
                    self.pending.extend_from_slice(data);
                    transport.open(&self.pending, plain).map(|used| {
                        self.pending.drain(..used);
                    })
                };
                match r {
                    Ok(()) => Ok(established),
                    Err(e) => Err(self.fail(ChannelError::Transport(e))),
                }
            }
            Stage::Failed(e) => Err(*e),
            Stage::Handshake(_) => Ok(None),
        }
    }

    /// Seals `plaintext` as records appended to `out`. Before the handshake is done there is
    /// no key to seal with: an error (the caller's bug), and the channel fails.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), ChannelError> {
        match &mut self.stage {
            Stage::Open { transport, .. } => match transport.seal(plaintext, out) {
                Ok(()) => Ok(()),
                Err(e) => Err(self.fail(ChannelError::Transport(e))),
            },
            Stage::Failed(e) => Err(*e),
            Stage::Handshake(_) => {
                Err(self.fail(ChannelError::Transport(TransportError::Internal)))
            }
        }
    }

    /// The connection ended: an error if it ended inside the handshake or inside a record.
    pub fn closed(&mut self) -> Result<(), ChannelError> {
        match &mut self.stage {
            Stage::Handshake(hs) => match hs.closed() {
                Ok(()) => Ok(()),
                Err(e) => Err(self.fail(ChannelError::Handshake(e))),
            },
            Stage::Open { transport, .. } => match transport.closed(self.pending.len()) {
                Ok(()) => Ok(()),
                Err(e) => Err(self.fail(ChannelError::Transport(e))),
            },
            Stage::Failed(e) => Err(*e),
        }
    }

    fn fail(&mut self, e: ChannelError) -> ChannelError {
        self.stage = Stage::Failed(e);
        self.pending = Vec::new();
        self.output.clear();
        e
    }
}
