//! Download progress on stderr: one bar per file and a total on a terminal, a plain line every
//! few seconds otherwise, nothing with `-q`.
//!
//! Invariants: a terminal is redrawn at most [`HZ`] times a second and never wider than it is
//! (indicatif truncates); the rate shown is over the last [`WINDOW`], so it falls to zero while
//! peers stall instead of freezing at its last value; without a terminal (a log, CI, systemd)
//! one line per file is printed every [`PLAIN_EVERY`]; lines printed while bars are shown go
//! above them ([`Progress::println`]) and never garble them.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use p2pshare_proto::ContentId;

use crate::format;

/// Most redraws a second.
pub const HZ: u8 = 10;
/// The rate is measured over this much time.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Without a terminal, a progress line this often.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One file's progress.
struct File {
    name: String,
    done: u64,
    total: Option<u64>,
    peers: usize,
    rejected: u32,
    /// Shown after the rate (a folder's file count).
    note: String,
    samples: VecDeque<(Instant, u64)>,
    bar: Option<ProgressBar>,
}

impl File {
    /// Bytes a second over the last [`WINDOW`] (0 while nothing arrives).
    fn rate(&self, now: Instant) -> f64 {
        let Some(&(t0, d0)) = self.samples.front() else {
            return 0.0;
        };
        let secs = now.saturating_duration_since(t0).as_secs_f64().max(1.0);
        (self.done.saturating_sub(d0)) as f64 / secs
    }

    fn line(&self, now: Instant) -> String {
        let rate = self.rate(now);
        let eta = match (self.total, rate > 0.0) {
            (Some(t), true) => format!("ETA {:.0} s", t.saturating_sub(self.done) as f64 / rate),
            _ => "ETA -".into(),
        };
        let mut s = format!(
            "{}/s  {eta}  {} peer{}",
            format::size(rate as u64),
            self.peers,
            if self.peers == 1 { "" } else { "s" }
        );
        if self.rejected > 0 {
            s.push_str(&format!("  {} rejected", self.rejected));
        }
        if !self.note.is_empty() {
            s.push_str("  ");
            s.push_str(&self.note);
        }
        s
    }
}

/// The progress of the downloads of one command.
pub struct Progress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    files: BTreeMap<ContentId, File>,
    plain: bool,
    next_plain: Instant,
}

impl Progress {
    /// Progress on stderr: bars on a terminal, plain lines otherwise, nothing if `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let multi = (tty && !quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(HZ)));
        Progress {
            multi,
            total: None,
            files: BTreeMap::new(),
            plain: !tty && !quiet,
            next_plain: Instant::now() + PLAIN_EVERY,
        }
    }

    fn style(total: bool) -> ProgressStyle {
        let t = if total {
            "{prefix:>20.bold} [{bar:30}] {bytes}/{total_bytes}  {msg}"
        } else {
            "{prefix:>20} [{bar:30}] {bytes}/{total_bytes}  {msg}"
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Follows the download of `content`, called `name`.
    pub fn add(&mut self, content: ContentId, name: &str) {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(0).with_style(Self::style(false)));
            let short: String = name.chars().take(20).collect();
            b.set_prefix(short);
            b
        });
        if self.files.len() == 1
            && let Some(m) = &self.multi
        {
            let t = m.add(ProgressBar::new(0).with_style(Self::style(true)));
            t.set_prefix("total");
            self.total = Some(t);
        }
        self.files.insert(
            content,
            File {
                name: name.to_owned(),
                done: 0,
                total: None,
                peers: 0,
                rejected: 0,
                note: String::new(),
                samples: VecDeque::new(),
                bar,
            },
        );
    }

    /// Bytes verified on disk of `content`, from `peers` peers.
    pub fn update(&mut self, content: &ContentId, done: u64, total: u64, peers: usize) {
        if let Some(f) = self.files.get_mut(content) {
            f.done = done;
            f.total = Some(total);
            f.peers = peers;
        }
        self.tick();
    }

    /// Sets the note shown after the rate of `content` (a folder job's file count).
    pub fn set_note(&mut self, content: &ContentId, note: String) {
        if let Some(f) = self.files.get_mut(content) {
            f.note = note;
        }
    }

    /// A chunk of `content` failed its hash.
    pub fn rejected(&mut self, content: &ContentId) {
        if let Some(f) = self.files.get_mut(content) {
            f.rejected += 1;
        }
    }

    /// Stops following `content` (it ended).
    pub fn finish(&mut self, content: &ContentId) {
        if let Some(f) = self.files.remove(content)
            && let (Some(b), Some(m)) = (f.bar, &self.multi)
        {
            b.finish_and_clear();
            m.remove(&b);
        }
        if self.files.is_empty()
            && let Some(t) = self.total.take()
        {
            t.finish_and_clear();
        }
    }

    /// Refreshes rates and bars; prints the plain line when due. Call at least every 100 ms.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let (mut done, mut total) = (0, 0);
        for f in self.files.values_mut() {
            f.samples.push_back((now, f.done));
            while f
                .samples
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW)
            {
                f.samples.pop_front();
            }
            done += f.done;
            total += f.total.unwrap_or(0);
            if let Some(b) = &f.bar {
                b.set_length(f.total.unwrap_or(0));
                b.set_position(f.done);
                b.set_message(f.line(now));
            }
        }
        if let Some(t) = &self.total {
            t.set_length(total);
            t.set_position(done);
        }
        if self.plain && now >= self.next_plain {
            self.next_plain = now + PLAIN_EVERY;
            for f in self.files.values() {
                let pct = f
                    .total
                    .filter(|&t| t > 0)
                    .map_or(0.0, |t| f.done as f64 * 100.0 / t as f64);
                eprintln!(
                    "p2pshare: {}  {} / {} ({pct:.0}%)  {}",
                    f.name,
                    format::size(f.done),
                    f.total.map_or_else(|| "?".into(), format::size),
                    f.line(now)
                );
            }
        }
    }

    /// Prints `line` on stderr above the bars.
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Removes every bar (before the outcome is printed).
    pub fn clear(&mut self) {
        let all: Vec<ContentId> = self.files.keys().copied().collect();
        for c in all {
            self.finish(&c);
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
