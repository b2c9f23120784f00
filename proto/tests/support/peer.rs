//! A remote peer in a test: a real key, a real Noise handshake against a [`Node`]'s connection,
//! then sealed frames both ways. What tests that speak to a node byte by byte use now that
//! every native connection is encrypted.
#![allow(dead_code)]

use std::time::Instant;

use p2pshare_proto::noise::{Channel, LocalKeys};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::frame::{Frame, FrameDecoder, Message, encode_message};
use p2pshare_proto::{ConnId, Identity, NetOp, Node, Output, PeerId};

/// One end of one connection, speaking as the holder of a key.
pub struct TestPeer {
    /// Its id.
    pub id: PeerId,
    /// Bytes the node sent it so far (handshake and records).
    pub received_bytes: usize,
    channel: Channel,
    decoder: FrameDecoder,
}

impl TestPeer {
    /// The end that dialled the node (the node accepted it), with the key of `secret`.
    pub fn dialer(secret: [u8; 32], expected: Option<PeerId>) -> TestPeer {
        let (id, keys, seed) = keys(secret);
        TestPeer {
            id,
            received_bytes: 0,
            channel: Channel::dial(&keys, expected, true, seed),
            decoder: FrameDecoder::new(),
        }
    }

    /// The end the node dialled, with the key of `secret`.
    pub fn acceptor(secret: [u8; 32]) -> TestPeer {
        let (id, keys, seed) = keys(secret);
        TestPeer {
            id,
            received_bytes: 0,
            channel: Channel::accept(&keys, false, seed),
            decoder: FrameDecoder::new(),
        }
    }

    /// True once the handshake is done.
    pub fn is_open(&self) -> bool {
        self.channel.is_open()
    }

    /// The handshake bytes this end has to send now.
    pub fn transmit(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.channel.poll_transmit(&mut out);
        out
    }

    /// Takes bytes from the node: the frames they complete. Panics on a handshake or a
    /// record that fails (the node sent something a peer cannot open).
    pub fn receive(&mut self, data: &[u8]) -> Vec<Frame> {
        self.received_bytes += data.len();
        let mut plain = Vec::new();
        self.channel
            .receive(data, &mut plain)
            .unwrap_or_else(|e| panic!("the node's bytes do not open: {e}"));
        self.decoder.push(&plain);
        let mut frames = Vec::new();
        while let Some(f) = self.decoder.next_frame().expect("the node's frames decode") {
            frames.push(f);
        }
        frames
    }

    /// `plain` (frames) sealed.
    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.channel
            .seal(plain, &mut out)
            .expect("sealed after the handshake");
        out
    }

    /// `msg` encoded and sealed.
    pub fn seal_msg(&mut self, msg: &Message) -> Vec<u8> {
        self.seal(&encode_message(msg))
    }

    /// Runs the handshake with `node` on its connection `conn` (and our hello, naming our own
    /// key): every byte each side sends goes to the other until neither has more. Returns
    /// the frames the node sent (its hello) and every other output it made meanwhile.
    pub fn handshake(
        &mut self,
        node: &mut Node,
        now: Instant,
        conn: ConnId,
        instance: u64,
    ) -> (Vec<Frame>, Vec<Output>) {
        let mut to_node = self.transmit();
        // What the node said already (a dial's preamble) comes first.
        let (mut frames, mut others) = self.drain(node, conn, &mut to_node);
        let mut hello_sent = false;
        for _ in 0..16 {
            if to_node.is_empty() {
                // The node may have spoken first (it dialled us, or it is the acceptor
                // whose preamble we wait for).
                let (f, o) = self.drain(node, conn, &mut to_node);
                frames.extend(f);
                others.extend(o);
            } else {
                node.handle_received(now, conn, &std::mem::take(&mut to_node));
                let (f, o) = self.drain(node, conn, &mut to_node);
                frames.extend(f);
                others.extend(o);
            }
            if self.is_open() && !hello_sent {
                hello_sent = true;
                let hello = self.seal_msg(&Message::Hello {
                    peer: self.id,
                    instance,
                    port: 10000,
                    revision: 0,
                });
                to_node.extend(hello);
            }
            if self.is_open() && hello_sent && to_node.is_empty() {
                break;
            }
        }
        (frames, others)
    }

    /// The node's outputs: what it sent on `conn` goes through us (our answer queued in
    /// `reply`), the rest is returned.
    fn drain(
        &mut self,
        node: &mut Node,
        conn: ConnId,
        reply: &mut Vec<u8>,
    ) -> (Vec<Frame>, Vec<Output>) {
        let mut frames = Vec::new();
        let mut others = Vec::new();
        while let Some(o) = node.poll_output() {
            match o {
                Output::Net(NetOp::Send { conn: c, data }) if c == conn => {
                    frames.extend(self.receive(&data));
                    reply.extend(self.transmit());
                }
                o => others.push(o),
            }
        }
        (frames, others)
    }
}

fn keys(secret: [u8; 32]) -> (PeerId, LocalKeys, [u8; 32]) {
    let me = Identity::from_secret_bytes(&secret);
    let mut rng = KeyRng::new(p2pshare_proto::sha256(&secret));
    let keys = LocalKeys::new(&me, &mut rng);
    (me.key(), keys, rng.seed())
}
