//! Zero-copy sending: a range of a shared file straight to a socket with `sendfile(2)`, for
//! the runtimes' `NetOp::SendFile`, written once for both.
//!
//! Invariants: the file's position is never used or moved (the offset is ours, so one open
//! file serves many connections and the disk thread's reads at once); a [`FileRange`] sends
//! its bytes in order and exactly once, resuming where a full socket stopped it; a file that
//! ends before the range does is reported as [`Sent::Broken`] (the header already went out,
//! so the stream cannot be mended: the runtime closes the connection), never a panic.

use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use rustix::io::Errno;

/// The most bytes asked of one `sendfile` call (Linux sends at most about 2 GiB anyway).
const MAX_CALL: u64 = 1 << 30;

/// What [`FileRange::send`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The whole range is in the socket.
    Done,
    /// The socket is full: call again when it is writable.
    Blocked,
    /// The file ended before the range did (it shrank or was replaced by a shorter one).
    Broken,
}

/// A range of an open file still to be sent.
#[derive(Debug)]
pub struct FileRange {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

impl FileRange {
    /// The `len` bytes at `offset` of `file`, to send. Asks the kernel to start reading them
    /// (`POSIX_FADV_WILLNEED`: advice, which starts read-ahead without waiting), so a cold
    /// file stalls the event loop less when its turn comes.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> FileRange {
        if let Some(n) = NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(&*file, offset, Some(n), rustix::fs::Advice::WillNeed);
        }
        FileRange {
            file,
            offset,
            left: len,
        }
    }

    /// Bytes not yet sent.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Sends as much of the range as the non-blocking socket `sock` takes. An error is the
    /// socket's (reset, closed) or the file's (I/O error): the connection is done for either
    /// way.
    pub fn send(&mut self, sock: BorrowedFd<'_>) -> io::Result<Sent> {
        while self.left > 0 {
            let want = self.left.min(MAX_CALL) as usize;
            match rustix::fs::sendfile(sock, &*self.file, Some(&mut self.offset), want) {
                Ok(0) => return Ok(Sent::Broken),
                // `sendfile` moved `offset` by what it sent.
                Ok(n) => self.left -= (n as u64).min(self.left),
                Err(Errno::AGAIN) => return Ok(Sent::Blocked),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Sent::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (b, _) = l.accept().expect("accept");
        (a, b)
    }

    fn file_of(data: &[u8]) -> (tempfile::TempDir, Arc<File>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(data))
            .expect("write");
        (dir, Arc::new(File::open(&path).expect("open")))
    }

    #[test]
    fn a_range_arrives_byte_identical_through_a_full_socket() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let (_dir, file) = file_of(&data);
        let (a, mut b) = pair();
        a.set_nonblocking(true).expect("nonblocking");
        // Small kernel buffers, and a reader that starts late: the socket fills up.
        socket2::SockRef::from(&a)
            .set_send_buffer_size(16 << 10)
            .expect("sndbuf");
        socket2::SockRef::from(&b)
            .set_recv_buffer_size(16 << 10)
            .expect("rcvbuf");
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut got = Vec::new();
            b.read_to_end(&mut got).map(|_| got)
        });
        let mut r = FileRange::new(file, 1000, 2_500_000);
        let mut blocked = 0;
        loop {
            match r.send(a.as_fd()).expect("send") {
                Sent::Done => break,
                Sent::Blocked => {
                    blocked += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Sent::Broken => panic!("the file is long enough"),
            }
        }
        drop(a);
        let got = reader.join().expect("reader").expect("read");
        assert_eq!(got, &data[1000..2_501_000]);
        assert!(
            blocked > 0,
            "2.5 MB should fill a loopback socket at least once"
        );
    }

    #[test]
    fn a_file_shorter_than_the_range_is_broken() {
        let (_dir, file) = file_of(&[7u8; 1000]);
        let (a, mut b) = pair();
        let mut r = FileRange::new(file, 500, 1000);
        assert_eq!(r.send(a.as_fd()).expect("send"), Sent::Broken);
        assert_eq!(r.left(), 500, "the 500 bytes the file had went out");
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).expect("read");
        assert_eq!(got, vec![7u8; 500]);
    }
}
