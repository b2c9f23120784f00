//! Network namespaces for the benchmark. Three seeders on their own hosts (namespaces on one
//! bridge), each upload capped at 100 Mbit/s with `tc tbf`, and a downloader on a fourth host;
//! the classroom flash crowd; and [`LoOnly`], one namespace with only `lo`, for the libtorrent
//! scenarios. Root only. The namespaces are created here and removed on every exit path (a
//! guard, and [`crate::cleanup`] on Ctrl-C), and the peers run inside them, so nothing reaches a
//! real interface.

use std::path::Path;
use std::process::Command;

use crate::proc::{Seeder, run};

const CAP_BITS: f64 = 100e6;

struct Namespaces {
    prefix: String,
    hosts: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    fn new(hosts: usize) -> Result<Namespaces, String> {
        let prefix = format!("p2pb{}-", std::process::id() % 100_000);
        let ns = Namespaces { prefix, hosts };
        for i in 1..=hosts {
            crate::cleanup::add_namespace(&ns.name(&format!("h{i}")));
        }
        crate::cleanup::add_namespace(&ns.name("br"));
        let br = ns.name("br");
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 1..=hosts {
            let h = ns.name(&format!("h{i}"));
            let v = format!("v{i}");
            ip(&["netns", "add", &h])?;
            ip(&[
                "link", "add", "eth0", "netns", &h, "type", "veth", "peer", "name", &v, "netns",
                &br,
            ])?;
            ip(&["-n", &br, "link", "set", &v, "master", "br0", "up"])?;
            ip(&["-n", &h, "link", "set", "lo", "up"])?;
            let addr = format!("10.98.0.{i}/24");
            ip(&[
                "-n",
                &h,
                "addr",
                "add",
                &addr,
                "brd",
                "10.98.0.255",
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &h, "link", "set", "eth0", "up"])?;
            ip(&["-n", &h, "route", "add", "default", "dev", "eth0"])?;
        }
        Ok(ns)
    }

    /// Caps host `i`'s upload at 100 Mbit/s with `tc tbf`, like a LAN link.
    fn cap(&self, i: usize) -> Result<(), String> {
        let tc = Command::new("ip")
            .args(["netns", "exec", &self.name(&format!("h{i}")), "tc", "qdisc"])
            .args(["add", "dev", "eth0", "root", "tbf", "rate", "100mbit"])
            .args(["burst", "32kbit", "latency", "400ms"])
            .output()
            .map_err(|e| format!("tc: {e}"))?;
        if !tc.status.success() {
            return Err(format!(
                "tc: {}",
                String::from_utf8_lossy(&tc.stderr).trim()
            ));
        }
        Ok(())
    }

    fn name(&self, s: &str) -> String {
        format!("{}{s}", self.prefix)
    }

    fn exec(&self, host: usize, bin: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name(&format!("h{host}"))])
            .arg(bin);
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for i in 1..=self.hosts {
            let h = self.name(&format!("h{i}"));
            let _ = ip(&["netns", "del", &h]);
            crate::cleanup::remove_namespace(&h);
        }
        let _ = ip(&["netns", "del", &self.name("br")]);
        crate::cleanup::remove_namespace(&self.name("br"));
    }
}

/// One network namespace whose only interface is `lo` (up): the processes run in it reach each
/// other on every 127.x address and nothing else. Deleted when dropped.
pub struct LoOnly {
    name: String,
}

impl LoOnly {
    /// Creates `p2pb<pid>-<tag>` with `lo` up. Root only.
    pub fn new(tag: &str) -> Result<LoOnly, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root (a network namespace)".into());
        }
        let name = format!("p2pb{}-{tag}", std::process::id() % 100_000);
        crate::cleanup::add_namespace(&name);
        if let Err(e) = ip(&["netns", "add", &name]) {
            crate::cleanup::remove_namespace(&name);
            return Err(e);
        }
        let ns = LoOnly { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `bin` inside the namespace (`ip netns exec` execs it: same pid).
    pub fn exec(&self, bin: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(bin);
        c
    }
}

impl Drop for LoOnly {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        crate::cleanup::remove_namespace(&self.name);
    }
}

/// Returns (download rate, sum of the caps) in bytes per second.
pub fn capped(bin: &Path, work: &Path, src: &Path) -> Result<(f64, f64), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root".into());
    }
    let ns = Namespaces::new(4)?;
    let size: u64 = 192 << 20;
    let file = work.join("src-192m.bin");
    crate::make_file(&file, size);
    let _ = src;
    let mut seeders = Vec::new();
    for i in 1..=3 {
        ns.cap(i)?;
        let dir = work.join(format!("ns-seed{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("big.bin");
        if !link.exists() {
            std::fs::hard_link(&file, &link).unwrap();
        }
        seeders.push(Seeder::start(
            ns.exec(i, bin)
                .args(["--interval", "1", "--shared"])
                .arg(&dir)
                .args(["-v", "serve"]),
        ));
    }
    let dl = work.join("ns-dl");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl).unwrap();
    let (stdout, cost) = run(ns
        .exec(4, bin)
        .args(["--interval", "1", "--shared"])
        .arg(&dl)
        .args(["get", "big.bin", "--timeout", "300"]));
    drop(seeders);
    let _ = std::fs::remove_dir_all(&dl);
    if !cost.ok {
        return Err(format!("get failed: {stdout}"));
    }
    let secs = stdout
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split(" s").next())
        .and_then(|x| x.parse::<f64>().ok())
        .unwrap_or(cost.wall);
    Ok((size as f64 / secs, 3.0 * CAP_BITS / 8.0))
}

/// What a flash crowd took.
pub struct Crowd {
    /// Downloaders.
    pub n: usize,
    /// When the last one had its verified file, seconds after all were asked.
    pub last: f64,
    /// The time one copy takes to leave the seeder (size / uplink).
    pub one_copy: f64,
}

/// The classroom (issue 15): one seeder capped at 100 Mbit/s shares 60 MB; `n` downloaders,
/// each a running peer on its own host, are asked to `get` it at the same moment.
pub fn crowd(bin: &Path, work: &Path, n: usize) -> Result<Crowd, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root".into());
    }
    let ns = Namespaces::new(n + 1)?;
    let size: u64 = 60_000_000;
    let file = work.join("src-60m.bin");
    crate::make_file(&file, size);
    ns.cap(1)?;
    let dir = |i: usize| work.join(format!("crowd-h{i}"));
    let mut peers = Vec::new();
    for i in 1..=n + 1 {
        let _ = std::fs::remove_dir_all(dir(i));
        std::fs::create_dir_all(dir(i)).map_err(|e| e.to_string())?;
        if i == 1 {
            std::fs::hard_link(&file, dir(1).join("lecture.bin")).map_err(|e| e.to_string())?;
        }
        peers.push(Seeder::start(
            ns.exec(i, bin)
                .arg("--shared")
                .arg(dir(i))
                .args(["-v", "serve"]),
        ));
    }
    // Every downloader lists the file before the bell rings.
    for i in 2..=n + 1 {
        let t = std::time::Instant::now();
        loop {
            let o = ns
                .exec(i, bin)
                .arg("--shared")
                .arg(dir(i))
                .arg("list")
                .output()
                .map_err(|e| e.to_string())?;
            if String::from_utf8_lossy(&o.stdout).contains("lecture.bin") {
                break;
            }
            if t.elapsed().as_secs() > 30 {
                return Err(format!("host {i} never listed the file"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let t = std::time::Instant::now();
    let mut gets: Vec<std::process::Child> = (2..=n + 1)
        .map(|i| {
            ns.exec(i, bin)
                .arg("--shared")
                .arg(dir(i))
                .args(["-q", "get", "lecture.bin", "--timeout", "300"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut last = 0.0;
    for g in &mut gets {
        let st = g.wait().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("a downloader failed".into());
        }
        last = t.elapsed().as_secs_f64();
    }
    drop(peers);
    for i in 1..=n + 1 {
        let _ = std::fs::remove_dir_all(dir(i));
    }
    Ok(Crowd {
        n,
        last,
        one_copy: size as f64 * 8.0 / CAP_BITS,
    })
}
