//! The page in the browser: a running peer (the prompt, `serve`) serves one page on loopback
//! that shows this peer, the other peers and their files, and the downloads, live, with a Get
//! button on every file and folder and a Cancel on every download.
//!
//! The parts: [`http`] reads one request and writes one response on a blocking connection;
//! [`guard`] decides who may ask (Host, token, Origin); [`hub`] keeps the live state and
//! pushes it as server-sent events; [`actions`] starts and stops downloads as the control
//! socket does; [`assets`] holds the page (HTML, CSS, two JavaScript modules), compiled in.
//!
//! Threads, no async runtime: one accepts connections, one runs the hub, one forwards the
//! peer's notices to it, and each connection gets its own thread while it lasts (an event
//! stream two: the writer, and a reader that notices at once when the page goes).
//!
//! Invariants: at most [`MAX_CONNECTIONS`] connections are served at once (one more is
//! answered 503 and closed); a request must arrive whole within [`REQUEST_TIME`] and a write
//! may block at most [`WRITE_TIME`] (then the connection is closed), so a slow or hostile
//! browser holds a connection's thread for seconds, never the peer; the hub, the peer's event
//! loop and the prompt never wait on a connection.

pub mod actions;
pub mod assets;
pub mod guard;
pub mod http;
pub mod hub;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use p2pshare_host::Controller;

use guard::Guard;
use http::{ReadError, Request, Response};
use hub::{Hub, Me, Msg};

/// Where the page listens unless `--web` says otherwise: loopback, any free port.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
/// Most connections served at once (the page uses two: its event stream and one request).
pub const MAX_CONNECTIONS: usize = 16;
/// A request must arrive whole within this.
pub const REQUEST_TIME: Duration = Duration::from_secs(10);
/// A write may block this long; then the browser is not reading and the connection closes.
pub const WRITE_TIME: Duration = Duration::from_secs(10);
/// An event stream with nothing to say sends a comment this often (an idle connection is not
/// taken for a dead one on the way, and a page that stopped reading is found out).
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Messages that may wait for the hub.
const HUB_QUEUE: usize = 4096;

/// What every connection thread shares.
struct Web {
    guard: Guard,
    hub: SyncSender<Msg>,
    ctl: Controller,
    shared: PathBuf,
    connections: AtomicUsize,
    /// The folders being fetched by the page's folder jobs.
    folders: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

/// A running page server: its address and token (printed once).
#[derive(Debug, Clone)]
pub struct Page {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The secret every request for data or action carries.
    pub token: String,
}

impl Page {
    /// The address to open: `http://ADDR/#TOKEN`.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.addr.port())
        } else {
            self.addr
        };
        format!("http://{host}/#{}", self.token)
    }
}

/// Serves the page of the peer `ctl` drives, sharing `shared`, on `addr`. Runs for the rest of
/// the process.
pub fn start(
    addr: SocketAddr,
    ctl: Controller,
    shared: PathBuf,
    discovery_port: u16,
) -> Result<Page, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("web page on {addr}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("web page on {addr}: {e}"))?;
    let token = guard::new_token().map_err(|e| format!("web page: no random token: {e}"))?;
    // The page shows where files land, whatever the working directory of the terminal that
    // started the peer: the folder's full path.
    let shared = std::fs::canonicalize(&shared).unwrap_or(shared);
    let observed = ctl.observe().map_err(|e| format!("web page: {e}"))?;
    let (tx, rx) = mpsc::sync_channel(HUB_QUEUE);
    let hub = Hub::new(
        ctl.clone(),
        Me {
            folder: shared.clone(),
            web: addr,
            discovery_port,
        },
    );
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map(drop)
            .map_err(|e| format!("web page: cannot start a thread: {e}"))
    };
    spawn("p2pshare-web-hub", Box::new(move || hub.run(rx)))?;
    let notices = tx.clone();
    spawn(
        "p2pshare-web-notices",
        Box::new(move || {
            for n in observed {
                if notices.send(Msg::Notice(n)).is_err() {
                    return;
                }
            }
        }),
    )?;
    let web = Arc::new(Web {
        guard: Guard::new(addr, token.clone()),
        hub: tx,
        ctl,
        shared,
        connections: AtomicUsize::new(0),
        folders: Arc::default(),
    });
    spawn("p2pshare-web", Box::new(move || accept(&listener, &web)))?;
    Ok(Page { addr, token })
}

/// Counts a connection while it is served.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept(listener: &TcpListener, web: &Arc<Web>) {
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if web.connections.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            web.connections.fetch_sub(1, Ordering::Relaxed);
            let _ = stream.set_nonblocking(true);
            let _ = Response::text(503, "busy").write(&mut stream);
            continue;
        }
        let w = web.clone();
        let spawned = std::thread::Builder::new()
            .name("p2pshare-web-conn".into())
            .spawn(move || {
                let _slot = Slot(&w.connections);
                serve(&w, stream);
            });
        if spawned.is_err() {
            web.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serves one connection: one request, its answer.
fn serve(web: &Web, mut s: TcpStream) {
    let _ = s.set_write_timeout(Some(WRITE_TIME));
    let _ = s.set_nodelay(true);
    let req = match http::read_request(&mut s, Instant::now() + REQUEST_TIME) {
        Ok(r) => r,
        Err(e) => {
            if let Some(status) = e.status() {
                let what = match e {
                    ReadError::Malformed(m) => m,
                    _ => "",
                };
                let _ = Response::text(status, what).write(&mut s);
            }
            return;
        }
    };
    match route(web, &req) {
        Route::Answer(r) => {
            let _ = r.write(&mut s);
        }
        Route::Events => events(web, s),
    }
}

/// What a request gets.
enum Route {
    Answer(Response),
    Events,
}

fn route(web: &Web, req: &Request) -> Route {
    let host = req.header("host");
    if !web.guard.host_ok(host) {
        return Route::Answer(Response::forbidden());
    }
    // The page's own files: the same bytes in every binary, nothing of this peer.
    if req.method == "GET"
        && let Some(asset) = assets::get(&req.path)
    {
        return Route::Answer(asset);
    }
    if !web.guard.token_ok(req.header("authorization")) {
        return Route::Answer(Response::forbidden());
    }
    let post = |f: &dyn Fn(&[u8]) -> Response| -> Route {
        if req.method != "POST" {
            return Route::Answer(Response::text(405, "POST only"));
        }
        if !web.guard.origin_ok(req.header("origin"), host) {
            return Route::Answer(Response::forbidden());
        }
        let json = req
            .header("content-type")
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Route::Answer(Response::text(415, "application/json only"));
        }
        Route::Answer(f(&req.body))
    };
    match req.path.as_str() {
        "/events" if req.method == "GET" => Route::Events,
        "/api/state" if req.method == "GET" => Route::Answer(state(web)),
        "/events" | "/api/state" => Route::Answer(Response::text(405, "GET only")),
        "/api/get" => post(&|body| actions::get(&actions::Ctx::of(web), body)),
        "/api/cancel" => post(&|body| actions::cancel(&web.hub, body)),
        "/api/clear" => post(&|_| actions::tell(&web.hub, Msg::Clear)),
        _ => Route::Answer(Response::text(404, "not found")),
    }
}

/// `GET /api/state`: everything the event stream starts with, as one JSON object.
fn state(web: &Web) -> Response {
    let (tx, rx) = mpsc::channel();
    if web.hub.try_send(Msg::State(tx)).is_err() {
        return Response::text(503, "busy");
    }
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(json) => Response::json(200, json),
        Err(_) => Response::text(503, "busy"),
    }
}

/// `GET /events`: the hub's events until the page goes, the hub drops it, or the peer stops.
/// A second thread reads the connection, which a page never writes to again: the end of it
/// (the page closed or reloaded) stops the stream at once, not at the next keepalive. The hub
/// letting the page go stops it too (then the page reconnects).
fn events(web: &Web, mut s: TcpStream) {
    let (tx, rx) = mpsc::sync_channel(hub::QUEUE);
    let gone = tx.clone();
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let page = hub::Page {
        tx,
        dropped: dropped.clone(),
    };
    if web.hub.try_send(Msg::Subscribe(page)).is_err() {
        let _ = Response::text(503, "busy").write(&mut s);
        return;
    }
    if s.write_all(http::event_stream_head().as_bytes()).is_err() {
        return;
    }
    let watch = s.try_clone().ok().and_then(|mut r| {
        std::thread::Builder::new()
            .name("p2pshare-web-watch".into())
            .spawn(move || {
                let _ = r.set_read_timeout(None);
                let mut buf = [0u8; 512];
                while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
                // An empty event: the writer stops on it.
                let _ = gone.send(Arc::from(""));
            })
            .ok()
    });
    loop {
        let next = rx.recv_timeout(KEEPALIVE);
        if dropped.load(Ordering::Relaxed) {
            break;
        }
        let text = match next {
            Ok(t) if t.is_empty() => break,
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => Arc::from(": keepalive\n\n"),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if s.write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    // Ends the reader's wait too.
    let _ = s.shutdown(std::net::Shutdown::Both);
    drop(watch);
}

/// What `--web`/`--no-web` ask for: `None` for no page.
pub fn wanted(web: Option<SocketAddr>, no_web: bool) -> Option<SocketAddr> {
    (!no_web).then(|| web.unwrap_or(DEFAULT_ADDR))
}

/// Parses `--web`'s value: `IP:PORT`, or an IP alone (any free port).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| {
            s.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 0))
        })
        .map_err(|_| format!("{s:?} is not IP:PORT or IP"))
}

/// Starts the page for a sharing peer and says where it is (stderr, once); warns when it
/// listens beyond loopback. A page that cannot start is a warning when it was not asked for,
/// an error when `--web` named the address.
pub fn start_for(opts: &crate::args::Opts, ctl: Controller) -> Result<Option<Page>, String> {
    let Some(addr) = wanted(opts.web, opts.no_web) else {
        return Ok(None);
    };
    match start(addr, ctl, opts.shared.clone(), opts.discovery_port) {
        Ok(page) => {
            eprintln!("p2pshare: web page: {}", page.url());
            if !page.addr.ip().is_loopback() {
                eprintln!(
                    "p2pshare: warning: the web page listens on {} beyond this machine, in plain \
                     HTTP: whoever learns its address and token can see what this peer sees and \
                     start downloads (use --web 127.0.0.1:PORT to keep it local)",
                    page.addr
                );
            }
            Ok(Some(page))
        }
        Err(e) if opts.web.is_some() => Err(e),
        Err(e) => {
            eprintln!("p2pshare: warning: no web page ({e}); --no-web turns it off");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:8080").ok(),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            parse_addr("10.0.0.5").ok(),
            Some("10.0.0.5:0".parse().expect("addr"))
        );
        assert!(parse_addr("localhost:80").is_err());
        assert_eq!(wanted(None, false), Some(DEFAULT_ADDR));
        assert_eq!(wanted(None, true), None);
        let page = Page {
            addr: "0.0.0.0:81".parse().expect("addr"),
            token: "t".into(),
        };
        assert_eq!(page.url(), "http://127.0.0.1:81/#t");
    }
}
