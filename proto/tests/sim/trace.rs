//! The trace: one line per input and output, folded into a hash so that two runs of one seed
//! can be compared, and printed when a seed is replayed.
//!
//! Invariant: a line depends only on the virtual time, the host index and the content of what
//! crossed the node's API (payloads are summarised by length and a hash), never on addresses in
//! memory or the wall clock, so equal runs give equal hashes. Why a node woke up (its due
//! `Wake`s, from `Node::timers`) is printed after each `timeout` line but not hashed: it follows
//! from what crossed the API, and leaving it out keeps hashes comparable between builds that
//! only restructure the node's timers.

use p2pshare_proto::{DiskOp, Input, NetOp, Output, ReadSource};

/// FNV-1a, 64 bits: tiny and deterministic.
pub fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV's offset basis.
pub const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

fn blob(data: &[u8]) -> String {
    format!("{}B#{:016x}", data.len(), fnv(FNV0, data))
}

fn src(s: &ReadSource) -> String {
    match s {
        ReadSource::Shared(c) => format!("shared:{}", c.short()),
        ReadSource::Partial(c) => format!("partial:{}", c.short()),
    }
}

/// A short readable line for an input.
pub fn input(i: &Input) -> String {
    match i {
        Input::Datagram { from, data } => format!("Datagram from={from} {}", blob(data)),
        Input::Connected { conn } => format!("Connected {conn:?}"),
        Input::ConnectFailed { conn } => format!("ConnectFailed {conn:?}"),
        Input::Received { conn, data } => format!("Received {conn:?} {}", blob(data)),
        Input::Flushed { conn } => format!("Flushed {conn:?}"),
        Input::Closed { conn } => format!("Closed {conn:?}"),
        Input::ReadDone { read, result } => match result {
            Ok(d) => format!("ReadDone {read:?} ok {}", blob(d)),
            Err(e) => format!("ReadDone {read:?} err {e}"),
        },
        Input::PartialOpened { content, result } => {
            format!("PartialOpened {} {result:?}", content.short())
        }
        Input::Written {
            content,
            index,
            result,
        } => format!("Written {} #{index} {result:?}", content.short()),
        Input::Finished { content, result } => format!("Finished {} {result:?}", content.short()),
        Input::CatalogChanged { files } => {
            let names: Vec<String> = files
                .iter()
                .map(|f| format!("{}={}", f.name, f.manifest.id().short()))
                .collect();
            format!("CatalogChanged [{}]", names.join(", "))
        }
        Input::Command(c) => format!("Command {c:?}"),
        Input::AnnounceTo { to } => format!("AnnounceTo {to:?}"),
        Input::Allow { keys } => format!("Allow {:?}", keys.as_ref().map(|k| k.len())),
    }
}

/// A short readable line for an output.
pub fn output(o: &Output) -> String {
    match o {
        Output::Net(NetOp::Datagram { to, data }) => format!("Datagram to={to} {}", blob(data)),
        Output::Net(NetOp::Connect { conn, addr }) => format!("Connect {conn:?} {addr}"),
        Output::Net(NetOp::Send { conn, data }) => format!("Send {conn:?} {}", blob(data)),
        Output::Net(NetOp::Pause { conn }) => format!("Pause {conn:?}"),
        Output::Net(NetOp::Resume { conn }) => format!("Resume {conn:?}"),
        Output::Net(NetOp::Close { conn }) => format!("Close {conn:?}"),
        Output::Disk(DiskOp::Read {
            read,
            source,
            offset,
            len,
        }) => format!("Read {read:?} {} @{offset}+{len}", src(source)),
        Output::Disk(DiskOp::OpenPartial {
            content,
            name,
            size,
        }) => format!("OpenPartial {} {name} {size}", content.short()),
        Output::Disk(DiskOp::Write {
            content,
            index,
            offset,
            data,
        }) => format!(
            "Write {} #{index} @{offset} {}",
            content.short(),
            blob(data)
        ),
        Output::Disk(DiskOp::Finish {
            content,
            name,
            size,
            ..
        }) => format!("Finish {} {name} {size}", content.short()),
        Output::Disk(DiskOp::ClosePartial { content }) => {
            format!("ClosePartial {}", content.short())
        }
        Output::Event(e) => format!("Event {e:?}"),
    }
}
