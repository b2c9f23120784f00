//! Cleanup on Ctrl-C (SIGINT), SIGTERM and SIGHUP: the network namespaces this bench creates and
//! the long-lived peers it starts are registered here while they exist; on one of those signals
//! the registered peers are killed by pid and the registered namespaces deleted, then the bench
//! exits with 130. (On a normal exit or a panic their own `Drop`s do the same.)
//!
//! Invariant: the signal handler does nothing but `write` one byte to a pipe (async-signal-safe);
//! a watcher thread reads it and does the work. A pid is removed from the registry before its
//! process is reaped, so the watcher never signals a pid the kernel may have reused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

fn with<T, R>(m: &Mutex<Vec<T>>, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
    f(&mut m.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Registers namespace `name` for deletion on a signal (call before creating it).
pub fn add_namespace(name: &str) {
    with(&NAMESPACES, |v| v.push(name.to_string()));
}

/// Forgets namespace `name` (call once it has been deleted).
pub fn remove_namespace(name: &str) {
    with(&NAMESPACES, |v| v.retain(|n| n != name));
}

/// Registers a live child's pid to be killed on a signal.
pub fn add_pid(pid: u32) {
    with(&PIDS, |v| v.push(pid));
}

/// Forgets `pid` (call before reaping the child).
pub fn remove_pid(pid: u32) {
    with(&PIDS, |v| v.retain(|p| *p != pid));
}

extern "C" fn on_signal(_: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    let b = 1u8;
    // SAFETY: write is async-signal-safe; `b` outlives the call.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Installs the handlers and starts the watcher thread. Call once, first thing in `main`.
pub fn install() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe fills the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("bench: no pipe for the signal watcher; Ctrl-C will not clean up");
        return;
    }
    PIPE_WRITE.store(fds[1], Ordering::Relaxed);
    let read = fds[0];
    std::thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: reads one byte into `b` from our own pipe.
        let n = unsafe { libc::read(read, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            eprintln!("\nbench: interrupted; stopping peers and removing namespaces");
            for pid in with(&PIDS, std::mem::take) {
                // SAFETY: kill has no memory preconditions; pid is a live child of ours.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            for ns in with(&NAMESPACES, std::mem::take) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &ns])
                    .status();
            }
            std::process::exit(130);
        }
    });
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only writes to a pipe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}
