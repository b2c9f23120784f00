//! Download progress on stderr: one bar per file and a total on a terminal, a plain line every
//! few seconds otherwise, nothing with `-q`.
//!
//! Invariants: a terminal is redrawn at most [`HZ`] times a second and never wider than it is
//! (indicatif truncates); a bar shows bytes only once the file's size is known (before, an
//! empty bar says what it waits for); the rate and ETA are the [`Meter`]'s, the same the web
//! page shows; without a terminal (a log, CI, systemd) one line per file is printed every
//! [`PLAIN_EVERY`]; lines printed while bars are shown go above them ([`Progress::println`])
//! and never garble them.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use p2pshare_proto::ContentId;

use crate::format;
use crate::meter::{self, Meter};

/// Most redraws a second.
pub const HZ: u8 = 10;
/// Without a terminal, a progress line this often.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// What a bar says before the file's size is known.
pub const WAITING: &str = "asking for the file's manifest";

/// One file's progress.
struct File {
    name: String,
    done: u64,
    total: Option<u64>,
    rejected: u32,
    /// Shown after the rate (a folder's file count).
    note: String,
    meter: Meter,
    /// Reported at least once: the meter runs from the first report on.
    reported: bool,
    bar: Option<ProgressBar>,
}

impl File {
    fn line(&self, now: Instant) -> String {
        meter::line(
            self.meter.rate(now),
            self.meter.eta(now, self.total),
            self.meter.peers(now),
            self.rejected,
            &self.note,
        )
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

    /// A bar's style: with bytes once the size is `known`, else the bar and the message alone.
    fn style(total: bool, known: bool) -> ProgressStyle {
        let t = match (total, known) {
            (true, true) => "{prefix:>20.bold} [{bar:30}] {bytes}/{total_bytes}  {msg}",
            (true, false) => "{prefix:>20.bold} [{bar:30}] {msg}",
            (false, true) => "{prefix:>20} [{bar:30}] {bytes}/{total_bytes}  {msg}",
            (false, false) => "{prefix:>20} [{bar:30}] {msg}",
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Follows the download of `content`, called `name`.
    pub fn add(&mut self, content: ContentId, name: &str) {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::no_length().with_style(Self::style(false, false)));
            let short: String = name.chars().take(20).collect();
            b.set_prefix(short);
            b.set_message(WAITING);
            b
        });
        if self.files.len() == 1
            && let Some(m) = &self.multi
        {
            let t = m.add(ProgressBar::no_length().with_style(Self::style(true, false)));
            t.set_prefix("total");
            self.total = Some(t);
        }
        self.files.insert(
            content,
            File {
                name: name.to_owned(),
                done: 0,
                total: None,
                rejected: 0,
                note: String::new(),
                meter: Meter::default(),
                reported: false,
                bar,
            },
        );
    }

    /// Bytes verified on disk of `content`, from `peers` peers.
    pub fn update(&mut self, content: &ContentId, done: u64, total: u64, peers: usize) {
        if let Some(f) = self.files.get_mut(content) {
            f.done = done;
            f.total = Some(total);
            f.reported = true;
            f.meter.report(Instant::now(), done, peers);
        }
        self.tick();
    }

    /// The size of `content` is known (its manifest verified), before any byte arrived.
    pub fn sized(&mut self, content: &ContentId, total: u64) {
        if let Some(f) = self.files.get_mut(content) {
            f.total.get_or_insert(total);
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
        let (mut done, mut total, mut known) = (0, 0, false);
        for f in self.files.values_mut() {
            if f.reported {
                f.meter.record(now, f.done);
            }
            done += f.done;
            total += f.total.unwrap_or(0);
            known |= f.total.is_some();
            if let Some(b) = &f.bar {
                if let Some(t) = f.total
                    && b.length() != Some(t)
                {
                    b.set_style(Self::style(false, true));
                    b.set_length(t);
                }
                b.set_position(f.done);
                if f.total.is_some() {
                    b.set_message(f.line(now));
                }
            }
        }
        if let Some(t) = &self.total
            && known
        {
            if t.length() != Some(total) {
                t.set_style(Self::style(true, true));
                t.set_length(total);
            }
            t.set_position(done);
        }
        if self.plain && now >= self.next_plain {
            self.next_plain = now + PLAIN_EVERY;
            for f in self.files.values() {
                let pct = f
                    .total
                    .filter(|&t| t > 0)
                    .map_or(0.0, |t| f.done as f64 * 100.0 / t as f64);
                let line = match f.total {
                    Some(t) => format!(
                        "{} / {} ({pct:.0}%)  {}",
                        format::size(f.done),
                        format::size(t),
                        f.line(now)
                    ),
                    None => WAITING.to_owned(),
                };
                eprintln!("p2pshare: {}  {line}", f.name);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bars drawn nowhere, to look at their state.
    fn hidden() -> Progress {
        Progress {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
            total: None,
            files: BTreeMap::new(),
            plain: false,
            next_plain: Instant::now() + PLAIN_EVERY,
        }
    }

    fn bar(p: &Progress, c: &ContentId) -> ProgressBar {
        p.files[c].bar.clone().expect("a bar")
    }

    #[test]
    fn no_bytes_and_no_full_bar_before_the_size_is_known() {
        let mut p = hidden();
        let (a, b) = (ContentId([1; 32]), ContentId([2; 32]));
        p.add(a, "a.bin");
        p.add(b, "b.bin");
        p.tick();
        let total = p.total.clone().expect("a total bar for two files");
        for c in [&a, &b] {
            let bar = bar(&p, c);
            assert_eq!(
                bar.length(),
                None,
                "no length: indicatif draws 0 of 0 as full"
            );
            assert_eq!(bar.message(), WAITING);
        }
        assert_eq!(total.length(), None);
        // The manifest of `a` verified: its size is known before any byte arrived.
        p.sized(&a, 64 << 20);
        assert_eq!(bar(&p, &a).length(), Some(64 << 20));
        assert_eq!(bar(&p, &a).position(), 0);
        assert_eq!(bar(&p, &a).message(), "-/s  ETA -  0 peers");
        assert_eq!(bar(&p, &b).length(), None);
        assert_eq!(total.length(), Some(64 << 20));
        p.update(&b, 1 << 20, 2 << 20, 1);
        assert_eq!(bar(&p, &b).length(), Some(2 << 20));
        assert_eq!(total.length(), Some(66 << 20));
        assert_eq!(total.position(), 1 << 20);
    }
}
