//! The web page end to end (issue 31), through the real binary.
//!
//! - On loopback (any user): what the page server refuses — a request without the token, with
//!   a wrong one, with a foreign `Host`, a state-changing request from another `Origin` or not
//!   as JSON —, its bounds (16 connections, a request must arrive within 10 s, the peer answers
//!   meanwhile), and the flags (`--no-web`, `--web ADDR`, a port taken).
//! - In a real browser between hosts in network namespaces (root only, like netns.rs): Debian's
//!   Chromium driven by playwright-core (`cli/tests/browser/driver.mjs`), run inside the
//!   downloader's namespace, where it reaches only that namespace's loopback. The page lists
//!   the seeders and their files; Get of a 64 MiB file shows a bar that reaches 100 % and the
//!   verified file lands; a folder's Get too; Cancel keeps the partial; a peer that leaves
//!   disappears within the expiry; a hostile file name is text; requests without the token,
//!   through a foreign `Host` (a DNS-rebinding page) or from another origin are refused. A
//!   screenshot mid-download is saved as `target/tmp/web/mid-download.png`.
//!
//! Safety: the loopback peers broadcast to 127.255.255.255 on a discovery port of their own;
//! the namespaced ones run only inside the namespaces this test made (removed on drop), and
//! the browser is started with every background service off, inside the downloader's namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // the harness of netns.rs: this test uses a part of it
mod hosts;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_p2pshare");
const S: fn(u64) -> Duration = Duration::from_secs;

/// A discovery port of its own for test `n` of this binary.
fn dport(n: u16) -> u16 {
    31000 + (std::process::id() % 1500) as u16 * 20 + n
}

/// The page's address, from a peer's stderr: (`127.0.0.1:PORT`, token).
fn page_of(stderr: &str) -> Option<(String, String)> {
    let url = stderr
        .lines()
        .find_map(|l| l.strip_prefix("p2pshare: web page: http://"))?;
    let (host, token) = url.split_once("/#")?;
    Some((host.to_owned(), token.trim().to_owned()))
}

/// A `p2pshare serve` on loopback with its own folder, stderr in a file; killed when dropped.
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    err: PathBuf,
}

impl Served {
    fn start(n: u16, extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        let err = dir.path().join("stderr");
        let child = Command::new(BIN)
            .args([
                "--broadcast",
                "127.255.255.255",
                "--interval",
                "1",
                "--port",
                "0",
            ])
            .args(["--discovery-port", &dport(n).to_string()])
            .arg("--shared")
            .arg(&shared)
            .args(extra)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Served { child, dir, err }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Waits for the page's address.
    fn page(&self) -> (String, String) {
        let deadline = Instant::now() + S(10);
        loop {
            if let Some(p) = page_of(&self.stderr()) {
                return p;
            }
            assert!(Instant::now() < deadline, "no web page: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `raw` to `addr` and reads the whole answer (the server closes): (status, text).
fn http(addr: &str, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(S(15))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A request with `headers` (each `Name: value`) and `body`.
fn req(method: &str, path: &str, headers: &[String], body: &str) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

fn body(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn the_page_refuses_what_it_must_and_stays_bounded() {
    let peer = Served::start(1, &[]);
    let (addr, token) = peer.page();
    let port = addr.rsplit_once(':').unwrap().1;
    assert_eq!(token.len(), 64, "a 256-bit token");
    let host = format!("Host: {addr}");
    let auth = format!("Authorization: Bearer {token}");
    let origin = format!("Origin: http://{addr}");
    let json_type = "Content-Type: application/json".to_owned();

    // The page itself (the same bytes in every binary) loads without the token, under a CSP.
    let (st, text) = http(&addr, &req("GET", "/", std::slice::from_ref(&host), ""));
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"));
    assert!(body(&text).contains("<title>p2pshare</title>"));
    assert!(!text.contains(&token), "the page does not hold the token");

    // Without the token, or with another, nothing: the same 403 whatever is asked.
    let wrong = format!("Authorization: Bearer {}", "0".repeat(64));
    for (path, extra) in [
        ("/api/state", None),
        ("/api/state", Some(wrong.clone())),
        ("/api/state", Some(format!("Authorization: {token}"))),
        ("/events", None),
        ("/no/such/thing", None),
    ] {
        let mut hs = vec![host.clone()];
        hs.extend(extra);
        let (st, text) = http(&addr, &req("GET", path, &hs, ""));
        assert_eq!((st, body(&text)), (403, "forbidden\n"), "{path}: {text}");
    }
    // A foreign Host (DNS rebinding), even with the token; a missing one; a doubled one.
    for hs in [
        vec![format!("Host: evil.example:{port}"), auth.clone()],
        vec![
            format!("Host: 127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
            auth.clone(),
        ],
        vec![auth.clone()],
    ] {
        let (st, text) = http(&addr, &req("GET", "/api/state", &hs, ""));
        assert_eq!((st, body(&text)), (403, "forbidden\n"), "{hs:?}");
    }
    let (st, _) = http(
        &addr,
        &req(
            "GET",
            "/api/state",
            &[
                host.clone(),
                format!("Host: evil.example:{port}"),
                auth.clone(),
            ],
            "",
        ),
    );
    assert_eq!(st, 400, "a second Host header is refused");
    let (st, _) = http(
        &addr,
        &req("GET", "/", &[format!("Host: evil.example:{port}")], ""),
    );
    assert_eq!(st, 403, "not even the page through a foreign name");
    // With both: the state, and localhost names our loopback address too.
    let (st, text) = http(
        &addr,
        &req("GET", "/api/state", &[host.clone(), auth.clone()], ""),
    );
    assert_eq!(st, 200, "{text}");
    let state: Value = serde_json::from_str(body(&text)).unwrap();
    assert_eq!(state["view"]["me"]["web"], addr.as_str());
    let (st, _) = http(
        &addr,
        &req(
            "GET",
            "/api/state",
            &[format!("Host: localhost:{port}"), auth.clone()],
            "",
        ),
    );
    assert_eq!(st, 200);
    let (st, _) = http(
        &addr,
        &req("GET", "/no/such/thing", &[host.clone(), auth.clone()], ""),
    );
    assert_eq!(st, 404);

    // Actions: POST of JSON from our own origin only.
    let clear = |hs: &[String]| http(&addr, &req("POST", "/api/clear", hs, "{}"));
    assert_eq!(
        clear(&[
            host.clone(),
            auth.clone(),
            origin.clone(),
            json_type.clone()
        ])
        .0,
        200
    );
    let cross = "Origin: http://evil.example".to_owned();
    for hs in [
        vec![host.clone(), auth.clone(), cross, json_type.clone()],
        vec![host.clone(), auth.clone(), json_type.clone()],
        vec![
            host.clone(),
            auth.clone(),
            format!("Origin: http://localhost:{port}"),
            json_type.clone(),
        ],
        vec![host.clone(), origin.clone(), json_type.clone()],
    ] {
        let (st, text) = clear(&hs);
        assert_eq!((st, body(&text)), (403, "forbidden\n"), "{hs:?}");
    }
    let form = "Content-Type: application/x-www-form-urlencoded".to_owned();
    assert_eq!(
        clear(&[host.clone(), auth.clone(), origin.clone(), form]).0,
        415
    );
    let (st, _) = http(
        &addr,
        &req("GET", "/api/get", &[host.clone(), auth.clone()], ""),
    );
    assert_eq!(st, 405, "a GET changes nothing");
    // A get nobody can serve: its error is answered and shown on every page (a note).
    let post = [
        host.clone(),
        auth.clone(),
        origin.clone(),
        json_type.clone(),
    ];
    let (st, text) = http(
        &addr,
        &req("POST", "/api/get", &post, r#"{"name":"nothing-here"}"#),
    );
    assert_eq!(st, 404, "{text}");
    assert!(
        body(&text).contains("no peer shares a file named"),
        "{text}"
    );
    let (_, text) = http(
        &addr,
        &req("GET", "/api/state", &[host.clone(), auth.clone()], ""),
    );
    assert!(
        body(&text).contains("no peer shares a file named \\\"nothing-here\\\""),
        "{text}"
    );
    // Oversized or malformed requests.
    let big = format!("X-Big: {}", "a".repeat(20_000));
    assert_eq!(
        http(&addr, &req("GET", "/", &[host.clone(), big], "")).0,
        413
    );
    assert_eq!(http(&addr, "\x16\x03\x01 not http\r\n\r\n").0, 400);

    // The event stream starts with the whole view.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(S(10))).unwrap();
    s.write_all(req("GET", "/events", &[host.clone(), auth.clone()], "").as_bytes())
        .unwrap();
    let mut got = String::new();
    let mut r = BufReader::new(s);
    while !got.contains("event: view\ndata: {") {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended: {got}");
        got.push_str(&line);
    }
    assert!(got.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"));
    drop(r);
    // The server notices the page went (its stream's reader sees the end) and frees the slot.
    std::thread::sleep(Duration::from_millis(500));

    // Bounds: 16 connections that send nothing hold every slot; one more is turned away at
    // once, and the peer itself goes on answering (through its control socket).
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let (st, _) = http(&addr, &req("GET", "/", std::slice::from_ref(&host), ""));
    assert_eq!(st, 503, "the 17th connection is refused");
    assert!(
        asked.elapsed() < S(2),
        "refused at once: {:?}",
        asked.elapsed()
    );
    let status = Command::new(BIN)
        .arg("--shared")
        .arg(peer.shared())
        .arg("status")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("peer "));
    // Each is answered 408 and closed once its 10 s to send a request are over.
    for mut c in idle {
        c.set_read_timeout(Some(S(20))).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out:?}");
    }
    println!("idle connections closed after {:?}", asked.elapsed());
    let (st, _) = http(&addr, &req("GET", "/", &[host], ""));
    assert_eq!(st, 200, "slots free again");
    assert!(!peer.stderr().contains("panicked"), "{}", peer.stderr());
}

#[test]
fn web_flags() {
    // --no-web: no page.
    let quiet = Served::start(2, &["--no-web"]);
    let deadline = Instant::now() + S(10);
    while !quiet.stderr().contains("sharing ") {
        assert!(Instant::now() < deadline, "{}", quiet.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!quiet.stderr().contains("web page"), "{}", quiet.stderr());
    // --web ADDR: that address; a second peer asking for it fails with one line.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let web = format!("127.0.0.1:{port}");
    let first = Served::start(3, &["--web", &web]);
    assert_eq!(first.page().0, web);
    assert!(!first.stderr().contains("warning"), "{}", first.stderr());
    let mut second = Served::start(4, &["--web", &web]);
    let st = second.child.wait().unwrap();
    assert_eq!(st.code(), Some(1));
    let err = second.stderr();
    assert!(
        err.contains(&format!("p2pshare: web page on {web}:")),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| !l.contains("sharing ")).count(),
        1,
        "{err}"
    );
    let bad = Command::new(BIN)
        .args(["--web", "nowhere", "--no-web", "serve"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

// --- In a real browser, between namespaced hosts ---------------------------------------------

/// Headless Chromium inside a namespace, driven by `driver.mjs`; closed (and, failing that,
/// its process group killed by id) when dropped.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Why the browser cannot run here (tools missing), if it cannot.
    fn missing() -> Option<String> {
        let dir = browser_dir();
        if Command::new("node").arg("--version").output().is_err() {
            return Some("node is not installed".into());
        }
        if !Path::new("/usr/bin/chromium").exists() {
            return Some(
                "Debian's chromium is not installed (apt-get install chromium chromium-driver)"
                    .into(),
            );
        }
        if !dir.join("node_modules/playwright-core").exists() {
            return Some(format!(
                "playwright-core is not installed (npm ci --prefix {})",
                dir.display()
            ));
        }
        None
    }

    fn start(ns: &str) -> Browser {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "node", "driver.mjs"])
            .current_dir(browser_dir())
            .env("PROFILE", profile.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut b = Browser {
            child,
            stdin,
            lines,
            _profile: profile,
        };
        assert_eq!(b.answer(S(60)), Ok(json!("ready")));
        b
    }

    fn answer(&mut self, within: Duration) -> Result<Value, String> {
        let line = self
            .lines
            .recv_timeout(within)
            .map_err(|e| format!("no answer from the browser: {e}"))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        if v["ok"] == true {
            Ok(v["value"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    fn ask(&mut self, cmd: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| e.to_string())?;
        self.answer(S(90))
    }

    fn run(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        self.ask(cmd).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    fn eval(&mut self, js: &str) -> Value {
        self.run(json!({"op": "eval", "js": js}))
    }

    fn wait(&mut self, js: &str, within: Duration) {
        self.run(json!({"op": "wait", "js": js, "ms": within.as_millis() as u64}));
    }

    fn click(&mut self, selector: &str) {
        self.run(json!({"op": "click", "selector": selector}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let deadline = Instant::now() + S(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Chromium is in the driver's process group (ours, by its id).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// A JavaScript string literal of `s`.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The JS expression for the download row named `name`: its phase, bar, figures and result.
fn row(name: &str) -> String {
    format!(
        "(() => {{ const li = [...document.querySelectorAll('li.download')].find(l => l.querySelector('.name').textContent === {n}); \
         if (!li) return null; const q = s => li.querySelector(s); \
         return {{ phase: li.dataset.phase, key: li.dataset.key, now: q('.bar').getAttribute('aria-valuenow'), \
         bytes: q('.bytes').textContent, line: q('.line').textContent, result: q('.result').textContent }}; }})()",
        n = js(name)
    )
}

/// The selector of the Get button of the file row named `name`.
fn get_file(name: &str) -> String {
    format!("#files tr[data-name={}] button.get", js(name))
}

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[test]
fn the_page_in_a_browser_between_hosts() {
    let Some(mut net) = hosts::Net::new(31, "web-browser", 3, false) else {
        return;
    };
    if let Some(why) = Browser::missing() {
        // Root runs the namespace tests, and CI runs as root: there, a missing tool fails.
        panic!("the browser test cannot run: {why} (.ci/run installs it)");
    }
    let started = Instant::now();
    // Host 1 seeds a 64 MiB file (at 200 Mbit/s, so the bar has time to move), a folder and a
    // file named like markup; host 3 seeds a file at 8 Mbit/s (to be cancelled) and leaves.
    let big = hosts::data(64 << 20, 31);
    let album: Vec<(String, Vec<u8>)> = (0..6u64)
        .map(|i| {
            (
                format!("album/{i}.jpg"),
                hosts::data(100_000 * (i as usize + 1), 100 + i),
            )
        })
        .collect();
    std::fs::create_dir_all(net.shared(1).join("album")).unwrap();
    for (name, bytes) in &album {
        std::fs::write(net.shared(1).join(name), bytes).unwrap();
    }
    std::fs::write(net.shared(1).join(HOSTILE), b"just a name\n").unwrap();
    let slow = hosts::data(24 << 20, 33);
    net.cap(1, "200mbit");
    net.cap(3, "8mbit");
    let fast = ["--interval", "1"];
    let s1 = net.seeder(1, &[("big.bin", &big)], &fast);
    let s3 = net.seeder(3, &[("slow.bin", &slow)], &fast);
    let d = net.spawn(2, &["--interval", "1", "serve"]);
    net.wait_stderr(d, "web page: ", S(10));
    let (addr, token) = page_of(&net.stderr(d)).unwrap();
    let port = addr.rsplit_once(':').unwrap().1.to_owned();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback by default: {addr}"
    );
    let mut b = Browser::start(&net.ns(2));
    b.run(json!({"op": "open", "url": format!("http://{addr}/#{token}")}));
    b.wait(
        "document.getElementById('conn').textContent === 'live'",
        S(10),
    );

    // The seeders and their files.
    b.wait(
        "document.querySelectorAll('#peers li.peer').length === 2 && \
         [...document.querySelectorAll('#peers .addr')].every(a => a.textContent.startsWith('10.99.0.'))",
        S(10),
    );
    for sel in [
        "#files tr[data-name='big.bin']".to_owned(),
        "#files tr[data-path='album']".to_owned(),
        "#files tr[data-name='slow.bin']".to_owned(),
        format!("#files tr[data-name={}]", js(HOSTILE)),
    ] {
        b.wait(&format!("document.querySelector({})", js(&sel)), S(10));
    }
    let album_row = b.eval("document.querySelector(\"#files tr[data-path='album']\").textContent");
    assert!(
        album_row.as_str().unwrap().contains("6 files"),
        "{album_row}"
    );

    // A hostile name is a name: text in its cell and in its peer's list, no element, no dialog.
    b.eval("document.querySelectorAll('#peers details').forEach(d => { d.open = true; })");
    let hostile = b.eval(&format!(
        "({{ cell: document.querySelector('#files tr[data-name=' + CSS.escape({n}) + '] td.name').textContent, \
           listed: [...document.querySelectorAll('#peers .names li')].some(li => li.textContent === {n}), \
           imgs: document.querySelectorAll('img').length }})",
        n = js(HOSTILE)
    ));
    assert_eq!(hostile["cell"], HOSTILE, "{hostile}");
    assert_eq!(hostile["listed"], true, "{hostile}");
    assert_eq!(hostile["imgs"], 0, "{hostile}");

    // Get the 64 MiB file: the bar moves and reaches 100 %, the file lands verified.
    let clicked = Instant::now();
    b.click(&get_file("big.bin"));
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web/mid-download.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let mut seen: Vec<u64> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut shot_taken = false;
    let last = loop {
        let r = b.eval(&row("big.bin"));
        if let Some(now) = r["now"].as_str().and_then(|n| n.parse::<u64>().ok())
            && seen.last() != Some(&now)
        {
            seen.push(now);
        }
        if let Some(l) = r["line"].as_str().filter(|l| !l.is_empty()) {
            lines.push(l.to_owned());
        }
        if !shot_taken
            && seen.last().is_some_and(|p| (30..=70).contains(p))
            && r["line"].as_str().is_some_and(|l| !l.starts_with('-'))
        {
            b.run(json!({"op": "screenshot", "path": shot.display().to_string()}));
            shot_taken = true;
        }
        if r["phase"] == "done" || r["phase"] == "failed" {
            break r;
        }
        assert!(clicked.elapsed() < S(60), "still {r}");
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("big.bin in {:?}; bar went {seen:?}", clicked.elapsed());
    assert_eq!(last["phase"], "done", "{last}");
    assert_eq!(seen.last(), Some(&100), "{seen:?}");
    assert!(
        seen.iter().any(|p| (1..100).contains(p)),
        "the bar moved: {seen:?}"
    );
    assert!(
        shot_taken,
        "no screenshot between 30 and 70 %: {seen:?} {lines:?}"
    );
    // A rate was shown once the samples spanned half a second, with the seeder counted.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" MiB/s  ETA ") && l.ends_with("1 peer")),
        "{lines:?}"
    );
    let sha = p2pshare_proto::hex(&p2pshare_proto::sha256(&big));
    assert!(
        last["result"]
            .as_str()
            .unwrap()
            .contains(&format!("sha256 {sha}")),
        "{last}"
    );
    assert_eq!(
        std::fs::read(net.shared(2).join("dl_big.bin")).unwrap(),
        big
    );

    // A folder's Get: one row, its files verified in place.
    b.click("#files tr[data-path='album'] button.get");
    b.wait(
        &format!("(r => r && r.phase === 'done')({})", row("album/")),
        S(30),
    );
    let folder = b.eval(&row("album/"));
    assert_eq!(folder["line"], "6/6 files", "{folder}");
    assert!(
        folder["result"]
            .as_str()
            .unwrap()
            .starts_with("Saved 6 of 6 files of album/"),
        "{folder}"
    );
    for (name, bytes) in &album {
        let placed = net.shared(2).join(format!("dl_{name}"));
        assert_eq!(
            &std::fs::read(&placed).unwrap(),
            bytes,
            "{}",
            placed.display()
        );
    }

    // Cancel keeps the partial.
    b.click(&get_file("slow.bin"));
    b.wait(
        &format!("(r => r && Number(r.now) >= 3)({})", row("slow.bin")),
        S(30),
    );
    let key = b.eval(&row("slow.bin"))["key"].as_str().unwrap().to_owned();
    b.click(&format!("li.download[data-key={}] button.cancel", js(&key)));
    b.wait(
        &format!("(r => r && r.phase === 'cancelled')({})", row("slow.bin")),
        S(10),
    );
    let names = hosts::names(&net.shared(2));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(".dl_slow.bin.") && n.ends_with(".part")),
        "{names:?}"
    );
    assert!(!names.contains(&"dl_slow.bin".to_owned()), "{names:?}");

    // Refused: without the token, through a foreign Host (a DNS-rebinding page), and a POST
    // from another origin (even one that knows the token: its preflight is refused).
    assert_eq!(b.eval("fetch('/api/state').then(r => r.status)"), 403);
    assert_eq!(
        b.eval(&format!(
            "fetch('/api/state', {{headers: {{Authorization: 'Bearer {}'}}}}).then(r => r.status)",
            "0".repeat(64)
        )),
        403
    );
    let rebind =
        b.run(json!({"op": "elsewhere", "url": format!("http://p2pshare-rebind.test:{port}/")}));
    assert_eq!(rebind["status"], 403, "{rebind}");
    let cross = b.run(json!({
        "op": "elsewhere",
        "url": format!("http://localhost:{port}/"),
        "js": format!(
            "Promise.all([\
               fetch('http://{addr}/api/get', {{method: 'POST', headers: {{Authorization: 'Bearer {token}', 'Content-Type': 'application/json'}}, body: JSON.stringify({{name: {n}}})}}).then(r => r.status, e => e.name),\
               fetch('http://{addr}/api/get', {{method: 'POST', mode: 'no-cors', body: JSON.stringify({{name: {n}}})}}).then(r => r.type, e => e.name)\
             ])",
            n = js(HOSTILE)
        ),
    }));
    assert_eq!(cross["value"][0], "TypeError", "{cross}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        b.eval(&row(HOSTILE)),
        Value::Null,
        "no download was started"
    );

    // A peer that leaves (killed: no goodbye) is gone from the page within the expiry (3½
    // intervals of 1 s after its last announcement, at most an interval before the kill).
    net.signal(s3, "KILL");
    let killed = Instant::now();
    b.wait(
        "![...document.querySelectorAll('#peers .addr')].some(a => a.textContent.startsWith('10.99.0.3:'))",
        S(8),
    );
    println!("the killed peer left the page after {:?}", killed.elapsed());

    assert_eq!(b.run(json!({"op": "dialogs"})), 0, "a name ran as a script");
    assert_eq!(b.run(json!({"op": "errors"})), json!([]));
    drop(b);
    let _ = s1;
    net.assert_no_panic();
    println!(
        "screenshot: {}; whole test {:?}",
        shot.display(),
        started.elapsed()
    );
}
