//! The disk: a node's disk requests (checked by its pump: no unverified write, no early
//! finish) performed on the host's in-memory [`Store`](super::store::Store) after a latency, with
//! injected write failures and corrupting reads for misbehaving hosts.

use super::*;

impl Sim {
    /// Performs a disk request of host `h` (its checked pump checked it first): after a
    /// latency, except closing a partial file, which has no answer.
    pub(super) fn disk_op(&mut self, h: usize, o: DiskOp) {
        if !matches!(o, DiskOp::ClosePartial { .. }) {
            self.disk(h, o);
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
