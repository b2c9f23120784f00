//! Running p2pshare processes and measuring them: wall time, CPU seconds, peak RSS.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished child cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub wall: f64,
    pub cpu: f64,
    pub max_rss_mib: f64,
    pub ok: bool,
}

/// Waits for `child` with wait4, which reports its exact CPU time and peak RSS.
pub fn wait_cost(child: &Child, start: Instant) -> Cost {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = start.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cost {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_mib: ru.ru_maxrss as f64 / 1024.0,
        ok: r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

/// Runs a command to completion, returning its stdout and cost.
// wait_cost reaps the child with wait4, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &mut Command) -> (String, Cost) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let cost = wait_cost(&child, start);
    let stdout = t.join().unwrap();
    let stderr = e.join().unwrap();
    if !cost.ok {
        eprintln!("bench: command failed: {cmd:?}\n{stdout}\n{stderr}");
    }
    (stdout, cost)
}

/// CPU seconds a live process has used so far (utime + stime from /proc).
pub fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `p2pshare serve` process, killed when dropped.
pub struct Seeder {
    pub child: Child,
    pub scan_secs: f64,
}

impl Seeder {
    /// Starts a seeder from `cmd` (a `p2pshare ... -v serve` command line) and waits until its
    /// first scan is done (it prints `sharing N files`).
    pub fn start(cmd: &mut Command) -> Seeder {
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                // `serve -v` logs through `tracing`: the line has a timestamp and level first.
                if line.contains("sharing ") && line.contains(" files (hashed ") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(600))
            .expect("seeder never finished its scan");
        Seeder {
            child,
            scan_secs: start.elapsed().as_secs_f64(),
        }
    }

    pub fn cpu(&self) -> f64 {
        cpu_of(self.child.id())
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
