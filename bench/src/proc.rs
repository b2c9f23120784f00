//! Running the benchmark's processes (p2pshare and the libtorrent driver) and measuring them:
//! wall time, CPU seconds, peak RSS.

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
    // Registered for Ctrl-C while it runs; waited for without reaping first (WNOWAIT), so it is
    // unregistered before its pid can be reused.
    crate::cleanup::add_pid(child.id());
    // SAFETY: siginfo_t is plain old data; waitid fills it for our own child.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    crate::cleanup::remove_pid(child.id());
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

/// What `p2pshare -v serve` logs once its first scan is done (`INFO sharing N files (hashed
/// ...)`, after a timestamp: the line does not start with it).
pub const SCANNED: &str = " files (hashed ";

/// A long-lived peer (`p2pshare serve`, or the libtorrent driver's `seed`), killed when dropped.
/// Its pid is registered with [`crate::cleanup`] while it lives, so Ctrl-C kills it too.
pub struct Seeder {
    pub child: Child,
    pub scan_secs: f64,
}

impl Seeder {
    /// Starts a seeder from `cmd` (a `p2pshare ... -v serve` command line) and waits until its
    /// first scan is done (it logs `sharing N files (hashed ...)`).
    pub fn start(cmd: &mut Command) -> Seeder {
        Seeder::start_until(cmd, SCANNED, Duration::from_secs(600))
            .expect("seeder never finished its scan")
    }

    /// Starts a seeder from `cmd` and waits until it prints a line containing `ready` on its
    /// stderr (the rest of its stderr is drained and dropped). Fails, with the seeder killed
    /// and its last lines of stderr, if it exits first or takes longer than `timeout`.
    pub fn start_until(
        cmd: &mut Command,
        ready: &str,
        timeout: Duration,
    ) -> Result<Seeder, String> {
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        crate::cleanup::add_pid(child.id());
        let err = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let ready = ready.to_string();
        std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            let mut waiting = true;
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if waiting && line.contains(&ready) {
                    waiting = false;
                    let _ = tx.send(Ok(()));
                } else if waiting {
                    tail.push(line);
                    if tail.len() > 5 {
                        tail.remove(0);
                    }
                }
            }
            if waiting {
                let _ = tx.send(Err(tail.join(" / ")));
            }
        });
        let why = match rx.recv_timeout(timeout) {
            Ok(Ok(())) => {
                return Ok(Seeder {
                    child,
                    scan_secs: start.elapsed().as_secs_f64(),
                });
            }
            Ok(Err(tail)) => format!("{cmd:?} exited before it was ready: {tail}"),
            Err(_) => format!("{cmd:?} not ready after {timeout:?}"),
        };
        crate::cleanup::remove_pid(child.id());
        let _ = child.kill();
        let _ = child.wait();
        Err(why)
    }

    pub fn cpu(&self) -> f64 {
        cpu_of(self.child.id())
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        // Unregistered before it is reaped, so the Ctrl-C path never signals a reused pid.
        crate::cleanup::remove_pid(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
