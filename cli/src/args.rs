//! The command line: options shared by every mode, and the one-shot subcommands.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use p2pshare_proto::node::{DEFAULT_DISCOVERY_PORT, DEFAULT_INTERVAL, DEFAULT_TRANSFER_PORT};

/// Peer-to-peer file sharing on a local network.
///
/// Without a subcommand, starts a peer that shares the folder given by --shared (created if
/// missing), announces itself on the LAN, and reads commands at the prompt:
/// `list` (or `l`), `peers`, `get NAME`, `quit` (or `q`).
#[derive(Debug, Parser)]
#[command(name = "p2pshare", version, about, long_about)]
pub struct Cli {
    /// TCP port to serve chunks on; when absent, [`DEFAULT_TRANSFER_PORT`], or any free port for
    /// `list` and `peers` (the help text says so with the number).
    #[arg(value_name = "TRANSFER_PORT", help = format!(
        "TCP port to serve chunks on [default: {DEFAULT_TRANSFER_PORT}; \
         list and peers: any free port]"
    ))]
    pub port: Option<u16>,

    #[command(flatten)]
    pub opts: Opts,

    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// Options of every mode.
#[derive(Debug, Args)]
pub struct Opts {
    /// TCP port to serve chunks on (same as TRANSFER_PORT; usable after a subcommand).
    #[arg(long = "port", global = true, value_name = "PORT")]
    pub port_opt: Option<u16>,

    /// The folder to share; downloads land in it as dl_<name>.
    #[arg(long, global = true, default_value = "shared", value_name = "DIR")]
    pub shared: PathBuf,

    /// UDP port of discovery (every peer of a LAN must use the same).
    #[arg(long, global = true, default_value_t = DEFAULT_DISCOVERY_PORT, value_name = "N")]
    pub discovery_port: u16,

    /// Address announcements are broadcast to (repeatable) [default: the broadcast address of
    /// every LAN interface, followed as they come and go].
    #[arg(long, global = true, value_name = "ADDR")]
    pub broadcast: Vec<IpAddr>,

    /// Interface IPv6 announcements are multicast on (repeatable) [default: every up
    /// multicast-capable interface, followed as they come and go; none with --broadcast].
    #[arg(long = "multicast-if", global = true, value_name = "IFACE")]
    pub multicast_if: Vec<String>,

    /// No IPv6 multicast discovery (IPv4 broadcast only).
    #[arg(long, global = true, conflicts_with = "multicast_if")]
    pub no_multicast: bool,

    /// A peer beyond the broadcast domain, by its transfer address (repeatable): HOST:PORT,
    /// [IPv6]:PORT or [fe80::…%IFACE]:PORT; given as KEY@ADDRESS, it must present that key
    /// (64 hex digits, as `p2pshare id` prints).
    #[arg(long = "peer", global = true, value_name = "[KEY@]HOST:PORT")]
    pub peers: Vec<String>,

    /// Share privately: serve the catalog and files only to this key (repeatable; 64 hex
    /// digits, as `p2pshare id` prints). Keys in <shared>/.p2pshare-allow (what `pair`
    /// writes) are allowed too.
    #[arg(long = "allow", global = true, value_name = "KEY", value_parser = parse_key)]
    pub allow: Vec<p2pshare_proto::PeerId>,

    /// Share privately with the keys in FILE (one a line, # comments; repeatable); followed
    /// while the peer runs.
    #[arg(long = "allow-file", global = true, value_name = "FILE")]
    pub allow_files: Vec<PathBuf>,

    /// Which event loop drives the peer.
    #[arg(long, global = true, value_enum, default_value_t = Runtime::Mio)]
    pub runtime: Runtime,

    /// Seconds between announcements.
    #[arg(
        long,
        global = true,
        default_value_t = DEFAULT_INTERVAL.as_secs_f64(),
        value_name = "SECS"
    )]
    pub interval: f64,

    /// Print what happens (peers found and lost, catalogs, rejected chunks; with `serve`, a
    /// `stats:` line of input counters whenever they change).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress bars or progress lines.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Where the prompt and `serve` serve their web page, IP:PORT or IP (any free port)
    /// [default: 127.0.0.1, any free port]; an address beyond loopback is warned about.
    #[arg(long, global = true, value_name = "ADDR", value_parser = crate::web::parse_addr)]
    pub web: Option<SocketAddr>,

    /// No web page.
    #[arg(long, global = true, conflicts_with = "web")]
    pub no_web: bool,

    /// Find holders beyond the LAN through the BitTorrent mainline DHT, and announce there
    /// what this folder shares: the content ids (hashed with a tag of ours) and this peer's
    /// address and transfer port become public; names and files never do. Off by default.
    #[arg(long, global = true)]
    pub dht: bool,

    /// A DHT node to join through, HOST:PORT (repeatable; IPv4; needs --dht): replaces the
    /// public bootstrap nodes (a private or test DHT).
    #[arg(long = "dht-bootstrap", global = true, value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
}

/// A key on the command line.
fn parse_key(s: &str) -> Result<p2pshare_proto::PeerId, String> {
    p2pshare_host::allow::parse_key(s)
}

/// What `peers` does besides printing them.
#[derive(Debug, Subcommand)]
pub enum PeersAction {
    /// Keep a peer beyond the broadcast domain: dialled now by the running peer of the folder
    /// (which must meet its key), and looked for there at every start (the folder's known
    /// peers).
    Add {
        /// KEY@HOST:PORT, KEY@[IPv6]:PORT, or a link (`p2pshare link` prints them): its
        /// addresses, each with its key.
        #[arg(value_name = "LINK|KEY@ADDRESS")]
        spec: String,
    },
}

/// Which event loop to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// One mio::Poll loop.
    Mio,
    /// A smol executor.
    Smol,
}

/// One-shot subcommands, for scripts.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Share the folder and serve other peers until killed (no prompt).
    Serve,
    /// Print this folder's key (its peer id, 64 hex digits), made on first use: what another
    /// peer gives to --allow or --peer KEY@HOST:PORT.
    Id,
    /// Pair with a peer on another machine: each adds the other's key to its folder's allow
    /// file (<shared>/.p2pshare-allow). Without CODE, prints a code and waits; with the CODE
    /// the other side printed, finds it on the LAN and pairs. A wrong code fails at once.
    Pair {
        /// The code the other side printed (NNNN-NNNN).
        code: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Print the files other peers share: the top level, each folder summarised in one row
    /// (files, bytes); `list FOLDER/` shows what lies under a folder the same way.
    List {
        /// Show only what lies under this folder.
        #[arg(value_name = "FOLDER/")]
        folder: Option<String>,
        /// Every file with its full path instead of a row per folder.
        #[arg(long)]
        all: bool,
        /// Seconds to listen for peers before printing.
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        wait: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print what the running peer of the folder does: peers, shared files, downloads with
    /// progress, counters (needs a running peer: the prompt or `serve`).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a link to a file or folder this peer shares, for someone on another network:
    /// `p2pshare://…` with this peer's key and addresses (every up interface, both families,
    /// with its transfer port), then on a second line the short form (the key alone, for a
    /// peer that can find this one already). `get LINK` fetches it.
    Link {
        /// A file's name (its path in the shared folder) or a folder's (`photos/`).
        name: String,
        /// An address this peer can be dialled at that no interface of this host shows (a
        /// router's forwarded port, a VPN's or NAT's address): `IP:PORT`, `[IPv6]:PORT`, or
        /// an IP alone for this peer's transfer port. Named first in the link; repeatable.
        #[arg(long, value_name = "ADDR")]
        at: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the known peers as ip:port; `peers add` keeps one that no broadcast reaches.
    Peers {
        /// What to do instead of printing them.
        #[command(subcommand)]
        action: Option<PeersAction>,
        /// Seconds to listen for peers before printing.
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        wait: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a file by name (or content-id prefix), or a whole folder (`get photos/`);
    /// exits 0 only once the verified files are in place as <shared>/dl_<name> (a path lands
    /// with its first folder prefixed: photos/2024/a.jpg as <shared>/dl_photos/2024/a.jpg).
    Get {
        /// File name or path, folder (with or without a trailing `/`), or a prefix of a
        /// content id.
        name: String,
        /// Give up after this many seconds (the partial file is kept for resume).
        #[arg(long, default_value_t = 600.0, value_name = "SECS")]
        timeout: f64,
        /// Print the result as JSON: path, size, sha256, content id, seconds, sources.
        #[arg(long)]
        json: bool,
        /// Fetch a folder over 1 GiB or 1,000 files (the prompt asks; a one-shot cannot, and
        /// without this refuses it).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}
