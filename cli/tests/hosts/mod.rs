//! Hosts in network namespaces for the end-to-end fault tests: a guard that builds a bridge and
//! N hosts (`ip netns`), runs the real `p2pshare` binary inside them, and removes everything it
//! made — namespaces, mounts, processes (by pid) — when dropped, also when a test fails.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_p2pshare");

/// Timing-sensitive tests (rates) run alone: they take this for writing, the others for reading.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

pub enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// Why the namespace tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(String::from));
    if uid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns` fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` (iproute2) is not available: {e}")),
    }
}

/// A running process on one of the hosts.
pub struct Proc {
    pub child: Child,
    pub host: usize,
    pub err: PathBuf,
    pub out: PathBuf,
}

/// The test's little LAN: hosts `1..=n` at 10.99.0.i/24 on one bridge, all in namespaces
/// named after the pid and the test, removed on drop.
pub struct Net {
    pub prefix: String,
    pub procs: Vec<Proc>,
    mounts: Vec<PathBuf>,
    pub dir: tempfile::TempDir,
    made: Vec<String>,
    /// How many hosts (`1..=hosts`).
    hosts: usize,
    _turn: Option<Turn>,
    /// Whether its peers multicast IPv6 announcements (only `ipv6.rs` turns it on). Off, every
    /// p2pshare command here gets `--no-multicast`: the hosts have IPv6 link-local addresses
    /// too, and a peer heard over both families is listed at the address whose copy came
    /// first, which the IPv4 scenarios' address checks (`10.99.0.i:PORT`) must not race with.
    pub multicast: bool,
}

/// Gives interface `dev` of namespace `ns` the IPv4 address `cidr` with broadcast `brd`.
pub fn add_ipv4(ns: &str, cidr: &str, brd: &str, dev: &str) {
    ip(&["-n", ns, "addr", "add", cidr, "brd", brd, "dev", dev]);
}

/// Runs `ip` with `args`, which must succeed.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// `n` hosts for test number `test`; `None` (after printing why) when namespaces cannot be
    /// made here.
    pub fn new(test: u32, name: &str, n: usize, alone: bool) -> Option<Net> {
        if let Some(why) = unavailable() {
            println!("SKIPPED {name}: {why}; the network-namespace tests need root and iproute2");
            return None;
        }
        let turn = if alone {
            Turn::Alone(EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner()))
        } else {
            Turn::Shared(EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner()))
        };
        Some(Net::build(test, n, Some(turn)))
    }

    /// A second LAN of `n` hosts beside this one, for test number `test` (not this one's): no
    /// route and no broadcast joins the two. It runs under this one's turn (for a control
    /// measured at the same moment as what this one measures).
    #[allow(dead_code)]
    pub fn beside(&self, test: u32, n: usize) -> Net {
        Net::build(test, n, None)
    }

    fn build(test: u32, n: usize, turn: Option<Turn>) -> Net {
        let prefix = format!("p{}t{test}-", std::process::id() % 100_000);
        let mut net = Net {
            prefix,
            procs: Vec::new(),
            mounts: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            made: Vec::new(),
            hosts: n,
            _turn: turn,
            multicast: false,
        };
        let br = format!("{}br", net.prefix);
        ip(&["netns", "add", &br]);
        net.made.push(br.clone());
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let h = net.ns(i);
            ip(&["netns", "add", &h]);
            net.made.push(h.clone());
            let v = format!("v{i}");
            ip(&[
                "link", "add", "eth0", "netns", &h, "type", "veth", "peer", "name", &v, "netns",
                &br,
            ]);
            ip(&["-n", &br, "link", "set", &v, "master", "br0", "up"]);
            ip(&["-n", &h, "link", "set", "lo", "up"]);
            let addr = format!("10.99.0.{i}/24");
            add_ipv4(&h, &addr, "10.99.0.255", "eth0");
            ip(&["-n", &h, "link", "set", "eth0", "up"]);
            ip(&["-n", &h, "route", "add", "default", "dev", "eth0"]);
            std::fs::create_dir_all(net.shared(i)).unwrap();
        }
        net
    }

    /// Splits the LAN in two IPv4 subnets joined by a router (issue 29): the hosts in `second`
    /// move to a second bridge at `10.98.0.i/24`; a router namespace (`<prefix>r`, removed on
    /// drop with the others) has a leg on each subnet (`10.99.0.254`, `10.98.0.254`) and
    /// forwards unicast between them, and every host's default route goes through it. No
    /// broadcast crosses: a router forwards neither 255.255.255.255 nor a directed broadcast
    /// (`bc_forwarding` stays 0), and the hosts' link-local IPv6 stays on its link.
    #[allow(dead_code)]
    pub fn route_between(&mut self, second: &[usize]) {
        let br = format!("{}br", self.prefix);
        ip(&["-n", &br, "link", "add", "br1", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br1", "up"]);
        let r = format!("{}r", self.prefix);
        ip(&["netns", "add", &r]);
        self.made.push(r.clone());
        ip(&["-n", &r, "link", "set", "lo", "up"]);
        for (leg, bridge, addr) in [
            ("eth0", "br0", "10.99.0.254/24"),
            ("eth1", "br1", "10.98.0.254/24"),
        ] {
            let v = format!("r{leg}");
            ip(&[
                "link", "add", leg, "netns", &r, "type", "veth", "peer", "name", &v, "netns", &br,
            ]);
            ip(&["-n", &br, "link", "set", &v, "master", bridge, "up"]);
            ip(&["-n", &r, "addr", "add", addr, "dev", leg]);
            ip(&["-n", &r, "link", "set", leg, "up"]);
        }
        let forward = Command::new("ip")
            .args([
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])
            .output()
            .unwrap();
        assert!(
            forward.status.success(),
            "sysctl: {}",
            String::from_utf8_lossy(&forward.stderr)
        );
        for i in 1..=self.hosts {
            let h = self.ns(i);
            let gateway = if second.contains(&i) {
                let v = format!("v{i}");
                ip(&["-n", &br, "link", "set", &v, "master", "br1"]);
                ip(&["-n", &h, "-4", "addr", "flush", "dev", "eth0"]);
                let addr = format!("10.98.0.{i}/24");
                add_ipv4(&h, &addr, "10.98.0.255", "eth0");
                "10.98.0.254"
            } else {
                "10.99.0.254"
            };
            ip(&[
                "-n", &h, "route", "replace", "default", "via", gateway, "dev", "eth0",
            ]);
        }
    }

    /// Host `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    /// Host `i`'s shared folder.
    pub fn shared(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("h{i}")).join("shared")
    }

    /// Caps host `i`'s upload like a LAN link.
    pub fn cap(&self, i: usize, rate: &str) {
        ip(&[
            "netns",
            "exec",
            &self.ns(i),
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "32kbit",
            "latency",
            "400ms",
        ]);
    }

    /// Caps host `i`'s download (what the bridge sends it) like a LAN link.
    #[allow(dead_code)]
    pub fn cap_downlink(&self, i: usize, rate: &str) {
        let br = format!("{}br", self.prefix);
        let v = format!("v{i}");
        ip(&[
            "netns", "exec", &br, "tc", "qdisc", "add", "dev", &v, "root", "tbf", "rate", rate,
            "burst", "32kbit", "latency", "400ms",
        ]);
    }

    /// Mounts a tmpfs of `size` on host `i`'s shared folder (unmounted on drop).
    pub fn tmpfs(&mut self, i: usize, size: &str) {
        let dir = self.shared(i);
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.mounts.push(dir);
    }

    fn command(&self, i: usize, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(i)])
            .arg(program)
            .args(args);
        c
    }

    /// The p2pshare command on host `i`, sharing its folder, defaults otherwise.
    fn p2pshare(&self, i: usize, args: &[&str]) -> Command {
        let mut c = self.command(i, Path::new(BIN), &[]);
        c.arg("--shared").arg(self.shared(i));
        if !self.multicast {
            c.arg("--no-multicast");
        }
        c.args(args);
        c
    }

    /// Runs p2pshare on host `i` to the end.
    pub fn run(&self, i: usize, args: &[&str]) -> Output {
        self.p2pshare(i, args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs p2pshare on host `i` to the end, sharing `dir` instead of the host's folder.
    pub fn run_in(&self, i: usize, dir: &Path, args: &[&str]) -> Output {
        let mut c = self.command(i, Path::new(BIN), &[]);
        c.arg("--shared").arg(dir);
        if !self.multicast {
            c.arg("--no-multicast");
        }
        c.args(args).stdin(Stdio::null()).output().unwrap()
    }

    fn logs(&self, i: usize) -> (PathBuf, PathBuf) {
        let k = self.procs.len();
        (
            self.dir.path().join(format!("h{i}-{k}.out")),
            self.dir.path().join(format!("h{i}-{k}.err")),
        )
    }

    /// Starts p2pshare on host `i` in the background (stdout and stderr to log files); returns
    /// its index in `procs`.
    pub fn spawn(&mut self, i: usize, args: &[&str]) -> usize {
        let mut c = self.p2pshare(i, args);
        self.start(i, &mut c)
    }

    /// Starts p2pshare on host `i` in the background sharing `dir` instead of the host's folder
    /// (stdout and stderr to log files); returns its index in `procs`.
    #[allow(dead_code)]
    pub fn spawn_in(&mut self, i: usize, dir: &Path, args: &[&str]) -> usize {
        let mut c = self.command(i, Path::new(BIN), &[]);
        c.arg("--shared").arg(dir);
        if !self.multicast {
            c.arg("--no-multicast");
        }
        c.args(args);
        self.start(i, &mut c)
    }

    /// Starts this test binary on host `i` as a helper (`P2PT_HELPER=mode`), with a high open
    /// files limit.
    pub fn spawn_helper(&mut self, i: usize, mode: &str, env: &[(&str, String)]) -> usize {
        let exe = std::env::current_exe().unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(i), "sh", "-c"])
            .arg("ulimit -n 8192; exec \"$0\" \"$@\"")
            .arg(exe)
            .args(["helper", "--exact", "--nocapture", "--test-threads", "1"])
            .env("P2PT_HELPER", mode);
        for (k, v) in env {
            c.env(k, v);
        }
        self.start(i, &mut c)
    }

    fn start(&mut self, i: usize, c: &mut Command) -> usize {
        let (out, err) = self.logs(i);
        let child = c
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        self.procs.push(Proc {
            child,
            host: i,
            err,
            out,
        });
        self.procs.len() - 1
    }

    /// Starts the prompt on host `i`.
    pub fn prompt(&mut self, i: usize, args: &[&str]) -> Prompt {
        let (_, err) = self.logs(i);
        let mut child = self
            .p2pshare(i, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        self.procs.push(Proc {
            child,
            host: i,
            err: err.clone(),
            out: PathBuf::new(),
        });
        let mut p = Prompt {
            proc: self.procs.len() - 1,
            stdin,
            rx,
            buf: Vec::new(),
        };
        let first = p.next(Duration::from_secs(10));
        assert_eq!(first, "", "the prompt comes first");
        p
    }

    pub fn pid(&self, p: usize) -> u32 {
        self.procs[p].child.id()
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`) to a process this test started, by its pid.
    pub fn signal(&self, p: usize, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid(p).to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// What process `p` wrote to stderr so far.
    pub fn stderr(&self, p: usize) -> String {
        std::fs::read_to_string(&self.procs[p].err).unwrap_or_default()
    }

    /// What process `p` wrote to stdout so far (not for prompts).
    pub fn stdout(&self, p: usize) -> String {
        std::fs::read_to_string(&self.procs[p].out).unwrap_or_default()
    }

    /// Waits until process `p`'s stderr contains `what`.
    pub fn wait_stderr(&self, p: usize, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr(p).contains(what) {
            assert!(
                Instant::now() < deadline,
                "host {} never printed {what:?}: {}",
                self.procs[p].host,
                self.stderr(p)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until process `p`'s stdout contains `what`.
    #[allow(dead_code)]
    pub fn wait_stdout(&self, p: usize, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stdout(p).contains(what) {
            assert!(
                Instant::now() < deadline,
                "host {} never printed {what:?}: {}{}",
                self.procs[p].host,
                self.stdout(p),
                self.stderr(p)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `p2pshare -v serve` on host `i` with `files` and waits until it has scanned them.
    pub fn seeder(&mut self, i: usize, files: &[(&str, &[u8])], args: &[&str]) -> usize {
        for (name, bytes) in files {
            std::fs::write(self.shared(i).join(name), bytes).unwrap();
        }
        let mut all = vec!["-v"];
        all.extend_from_slice(args);
        all.push("serve");
        let p = self.spawn(i, &all);
        self.wait_stderr(p, "sharing ", Duration::from_secs(10));
        if !files.is_empty() {
            self.wait_stderr(p, "(hashed", Duration::from_secs(20));
        }
        p
    }

    /// Waits for process `p` to exit, at most `within`.
    pub fn wait_exit(&mut self, p: usize, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.procs[p].child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "process on host {} did not exit within {within:?}",
                self.procs[p].host
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident memory of process `p` in KiB (VmHWM).
    pub fn peak_rss_kib(&self, p: usize) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid(p))).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Resets process `p`'s peak resident memory (VmHWM) to its current RSS
    /// (`/proc/PID/clear_refs`, "5"), so that a later [`Net::peak_rss_kib`] covers only what
    /// came after.
    #[allow(dead_code)]
    pub fn reset_peak_rss(&self, p: usize) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid(p)), "5").unwrap();
    }

    /// True while process `p` runs.
    #[allow(dead_code)]
    pub fn running(&mut self, p: usize) -> bool {
        self.procs[p].child.try_wait().unwrap().is_none()
    }

    /// Asserts that no process printed a panic.
    pub fn assert_no_panic(&self) {
        for (k, p) in self.procs.iter().enumerate() {
            let err = self.stderr(k);
            assert!(!err.contains("panicked"), "host {} panicked: {err}", p.host);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in &mut self.procs {
            // SIGKILL ends stopped processes too; only our own children, by pid.
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for m in &self.mounts {
            let _ = Command::new("umount").arg(m).status();
        }
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            // Keep the logs readable: print what every process said.
            for (k, p) in self.procs.iter().enumerate() {
                eprintln!(
                    "--- host {} process {k} stderr:\n{}",
                    p.host,
                    std::fs::read_to_string(&p.err).unwrap_or_default()
                );
            }
        }
    }
}

/// The interactive prompt of a peer on one host.
pub struct Prompt {
    pub proc: usize,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

pub const PROMPT: &str = "Command (list / peers / get [filename] / quit): ";

impl Prompt {
    /// What the peer printed up to its next prompt.
    pub fn next(&mut self, within: Duration) -> String {
        match self.try_next(within) {
            Some(got) => got,
            None => panic!(
                "no prompt within {within:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// What the peer printed up to its next prompt, or `None` when no prompt came within
    /// `within` (what came so far stays buffered).
    pub fn try_next(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        // Only the bytes that came since the last look are searched (an output of megabytes
        // arriving in 4 KiB pieces would otherwise be scanned thousands of times).
        let mut from = 0;
        loop {
            if let Some(pos) = find(&self.buf[from..], PROMPT.as_bytes()) {
                let pos = from + pos;
                let got = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
                self.buf.drain(..pos + PROMPT.len());
                return Some(got);
            }
            from = self.buf.len().saturating_sub(PROMPT.len());
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(left) {
                Ok(b) => self.buf.extend_from_slice(&b),
                Err(_) => return None,
            }
        }
    }

    /// Types a command; its output, or `None` when no prompt came within `within`.
    #[allow(dead_code)]
    pub fn try_next_after(&mut self, line: &str, within: Duration) -> Option<String> {
        writeln!(self.stdin, "{line}").unwrap();
        self.try_next(within)
    }

    /// What the peer printed so far without a prompt after it.
    #[allow(dead_code)]
    pub fn pending(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Types a command, returns its output.
    pub fn cmd(&mut self, line: &str, within: Duration) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.next(within)
    }

    /// Types a command without waiting for its output.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A TCP relay listening on `at` (a port the kernel picks) to `to`, counting the connections
/// it accepts: a router's forwarded port, or how a test counts the dials of the peer behind it.
#[allow(dead_code)] // dht.rs and e2e.rs only
pub fn counting_relay(
    at: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let l = std::net::TcpListener::bind((at, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            let (Ok(a), Ok(b)) = (s, std::net::TcpStream::connect(to)) else {
                continue;
            };
            for (mut from, mut into) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (port, n)
}

/// `len` pseudo-random bytes from `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tiny xorshift for the hostile helpers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Names of the files in `dir` (hidden ones included).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The `  addr: N chunks` lines of a `get` result: (addr, chunks).
pub fn sources(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter_map(|l| l.trim().strip_suffix(" chunks"))
        .filter_map(|l| {
            let (who, n) = l.rsplit_once(": ")?;
            Some((who.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// The number after `key` in `text` (e.g. `resumed: ` → 7).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The seconds in `... in 3.4 s ...` of a `Saved` line.
pub fn saved_secs(text: &str) -> f64 {
    let at = text.find(" in ").expect("a Saved line") + 4;
    text[at..].split(' ').next().unwrap().parse().unwrap()
}

/// The last `stats:` line of a `serve -v`, as (name, value) pairs.
pub fn last_stats(stderr: &str) -> Vec<(String, u64)> {
    stderr
        .lines()
        .filter_map(|l| l.find("stats: ").map(|i| &l[i..]))
        .next_back()
        .map(|l| {
            l["stats: ".len()..]
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn stat(stats: &[(String, u64)], key: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

/// A hello as peer `peer` (sealed by the caller's [`secure::Secure`] after its handshake):
/// the first frame a hostile helper sends.
pub fn hello(peer: p2pshare_proto::PeerId, instance: u64, port: u16, revision: u64) -> Vec<u8> {
    use p2pshare_proto::wire::frame::{Message, encode_message};
    encode_message(&Message::Hello {
        peer,
        instance,
        port,
        revision,
    })
}

/// Real connections to a peer: a Noise handshake under a key the test holds, then sealed
/// frames.
#[path = "../../../proto/tests/support/secure.rs"]
pub mod secure;

/// A claim liar (issue 27, item 1), for the helper processes of the hostile and swarm tests:
/// the holder of key `me` listens on `port` (it must be the port its announcements name) and,
/// on every connection, runs the Noise handshake under `me`, says hello (sealed, as every frame
/// after it), lists `name` (`content`, `size`) as a partial download in its
/// catalog, gives the true `manifest`, answers `Interested` with a bitfield of every chunk
/// but the last (of `chunks`), and refuses every chunk request with `code` (`Busy` or
/// `Taken`); with `reclaim`, it claims each refused chunk again with a `Have` at once (an
/// honest holder says `Taken` once per chunk and asker). `tally(what, n)` counts what it did.
/// Returns at once; threads serve.
#[allow(dead_code, clippy::too_many_arguments)]
pub fn claim_liar(
    me: secure::Key,
    port: u16,
    (name, content, size, chunks): (&str, p2pshare_proto::ContentId, u64, u32),
    manifest: Vec<u8>,
    code: p2pshare_proto::wire::ErrorCode,
    reclaim: bool,
    tally: fn(&str, u64),
) {
    use p2pshare_proto::wire::frame::{Message, encode_message};
    use p2pshare_proto::wire::{CatalogEntry, ErrorCode, Frame};
    let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let name = name.to_owned();
    let label = if code == ErrorCode::Busy {
        "refused_busy"
    } else {
        "refused_taken"
    };
    let answer = move |f: &Frame| -> Vec<u8> {
        match f {
            Frame::Message(Message::CatalogRequest { .. }) => encode_message(&Message::Catalog {
                revision: 1,
                page: 0,
                pages: 1,
                files: vec![CatalogEntry {
                    name: name.clone(),
                    size,
                    content,
                    partial: true,
                }],
            }),
            Frame::Message(Message::ManifestRequest { content: c }) if *c == content => {
                tally("manifests_sent", 1);
                encode_message(&Message::Manifest {
                    content,
                    bytes: manifest.clone(),
                })
            }
            Frame::Message(Message::Interested { content: c }) if *c == content => {
                tally("bitfields_sent", 1);
                let bits = p2pshare_proto::availability::encode_bits(chunks, |i| i + 1 < chunks);
                encode_message(&Message::Bitfield { content, bits })
            }
            Frame::Message(Message::ChunkRequest { content: c, index }) => {
                tally(label, 1);
                let mut out = encode_message(&Message::Error {
                    code,
                    content: *c,
                    index: Some(*index),
                });
                if reclaim {
                    out.extend(encode_message(&Message::Have {
                        content: *c,
                        indices: vec![*index],
                    }));
                }
                out
            }
            Frame::Message(Message::Ping) => encode_message(&Message::Pong),
            _ => Vec::new(),
        }
    };
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            tally("liar_sessions", 1);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let Ok(mut s) = secure::Secure::accept(s, &me) else {
                    tally("liar_handshakes_failed", 1);
                    return;
                };
                let _ = s.stream.set_read_timeout(None);
                if s.send(&hello(me.id, 1, port, 1)).is_err() {
                    return;
                }
                while let Some(f) = s.read_frame() {
                    let out = answer(&f);
                    if !out.is_empty() && s.send(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
}
