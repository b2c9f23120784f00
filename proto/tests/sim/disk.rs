//! The disk: a node's disk requests (checked by its pump: no unverified write, no early
//! finish) performed on the host's in-memory [`Store`](super::store::Store) after a latency, with
//! injected write failures and corrupting reads for misbehaving hosts; and zero-copy sends
//! (`NetOp::SendFile`), performed from the same store like a kernel's `sendfile`.

use super::*;

impl Sim {
    /// Performs a disk request of host `h` (its checked pump checked it first): after a
    /// latency, except closing a partial file, which has no answer.
    pub(super) fn disk_op(&mut self, h: usize, o: DiskOp) {
        if !matches!(o, DiskOp::ClosePartial { .. }) {
            self.disk(h, o);
        }
    }

    /// Performs a zero-copy send of host `h`: the header, then the range read from its store
    /// at once (the kernel reads the file; no disk latency is modelled), corrupted like a read
    /// by a corrupting host. A range the store cannot give in full breaks the stream: the
    /// connection is closed and the node told [`Input::SendFileBroken`].
    pub(super) fn send_file(
        &mut self,
        h: usize,
        conn: ConnId,
        header: Vec<u8>,
        file: ContentId,
        offset: u64,
        len: u32,
    ) {
        use p2pshare_proto::disk::Storage;
        let read = self.hosts[h]
            .store
            .read(ReadSource::Shared(file), offset, len);
        match read {
            Ok(mut d) if d.len() == len as usize => {
                if let Behaviour::Corrupt(p) = self.hosts[h].behaviour
                    && !d.is_empty()
                    && self.rng.chance(p)
                {
                    let i = self.rng.below(d.len());
                    d[i] ^= 1 << self.rng.below(8);
                }
                self.send(h, conn, header);
                self.send(h, conn, d);
            }
            _ => {
                self.log(format!("h{h} send_file {conn:?} broken"));
                self.send(h, conn, header);
                self.close(h, conn);
                let inc = self.hosts[h].inc;
                self.schedule(
                    self.now,
                    Ev::Input {
                        host: h,
                        inc,
                        input: Input::SendFileBroken { conn },
                        from: None,
                    },
                );
            }
        }
    }

    pub(super) fn disk(&mut self, h: usize, o: DiskOp) {
        let host = &mut self.hosts[h];
        let lat = host.disk_slow.unwrap_or(host.disk_lat);
        let lat = lat / 2 + self.rng.range(0, lat);
        let host = &mut self.hosts[h];
        let at = self.now.max(host.disk_busy) + lat;
        host.disk_busy = at;
        self.next_op += 1;
        let op = self.next_op;
        host.pending_disk.insert(op, o);
        let inc = host.inc;
        self.schedule(at, Ev::Disk { host: h, inc, op });
    }

    pub(super) fn disk_done(&mut self, h: usize, inc: u32, op: u64) -> Res {
        if self.hosts[h].inc != inc {
            return Ok(());
        }
        let Some(o) = self.hosts[h].pending_disk.remove(&op) else {
            return Ok(());
        };
        let shared_read = matches!(
            o,
            DiskOp::Read {
                source: ReadSource::Shared(_),
                ..
            }
        );
        let input = match o {
            DiskOp::Write { content, index, .. } if self.rng.chance(self.hosts[h].write_fail) => {
                Input::Written {
                    content,
                    index,
                    result: Err(DiskError::NoSpace),
                }
            }
            // Some writes fail above; the rest is the one in-memory disk of the tests.
            op => match p2pshare_proto::disk::perform(&mut self.hosts[h].store, op) {
                Some(input) => input,
                None => return Ok(()),
            },
        };
        // A corrupting host flips a bit in what it serves.
        let mut input = input;
        if let (Behaviour::Corrupt(p), true, Input::ReadDone { result: Ok(d), .. }) =
            (self.hosts[h].behaviour, shared_read, &mut input)
            && !d.is_empty()
            && self.rng.chance(p)
        {
            let i = self.rng.below(d.len());
            d[i] ^= 1 << self.rng.below(8);
        }
        self.deliver(h, inc, input, None)
    }
}
