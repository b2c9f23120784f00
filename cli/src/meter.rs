//! How fast a download goes, when it ends and from how many peers: one definition for the
//! prompt's bars and the web page, so that both show the same numbers for the same download.
//!
//! Invariants: the rate is the bytes verified over the time the kept samples actually cover (at
//! most a little over [`WINDOW`], from the download's first report on), never over a window the
//! download has not filled; no rate is claimed before the samples span [`MIN_SPAN`]; samples
//! recorded while nothing arrives bring the rate to zero within [`WINDOW`]; the peers shown are
//! the most any report of the window had busy (a report counts the peers with requests in flight
//! at that instant, which is none whenever the disk lags behind the network); the samples kept
//! are bounded (one per [`MIN_GAP`]) however often progress is reported.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::format;

/// The rate is measured over this much time, once the download has lasted that long.
pub const WINDOW: Duration = Duration::from_secs(5);
/// No rate is shown before the samples span this much: over a shorter time one chunk more or
/// less swings the figure wildly.
pub const MIN_SPAN: Duration = Duration::from_millis(500);
/// Samples closer than this are merged (the newest one moves), so a download that reports
/// thousands of chunks a second keeps at most `WINDOW / MIN_GAP` samples.
pub const MIN_GAP: Duration = Duration::from_millis(20);

/// The recent progress of one download (or one folder job).
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// `(when, bytes done, peers busy)`, oldest first; the first is the newest sample at least
    /// [`WINDOW`] old once there is one (the anchor of the window), so the window is always full
    /// once the download has lasted that long.
    samples: VecDeque<(Instant, u64, usize)>,
}

impl Meter {
    /// Notes a progress report: `done` bytes verified as of `now`, `peers` with requests in
    /// flight.
    pub fn report(&mut self, now: Instant, done: u64, peers: usize) {
        self.push(now, done, peers);
    }

    /// Notes that `done` bytes are verified as of `now`, with no report: call regularly while
    /// the download runs (so a stall shows as a falling rate and, after a window, no peers).
    pub fn record(&mut self, now: Instant, done: u64) {
        self.push(now, done, 0);
    }

    fn push(&mut self, now: Instant, done: u64, peers: usize) {
        // The newest sample moves while it is within MIN_GAP of the one before it (keeping the
        // most peers of the two); the others stay at least MIN_GAP apart.
        let n = self.samples.len();
        let merge = n >= 2
            && self
                .samples
                .get(n - 2)
                .is_some_and(|(t, _, _)| now.saturating_duration_since(*t) < MIN_GAP);
        let mut peers = peers;
        if merge && let Some((_, _, p)) = self.samples.pop_back() {
            peers = peers.max(p);
        }
        self.samples.push_back((now, done, peers));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _, _)| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// The most peers a report of the last [`WINDOW`] had busy.
    pub fn peers(&self, now: Instant) -> usize {
        self.samples
            .iter()
            .filter(|(t, _, _)| now.saturating_duration_since(*t) < WINDOW)
            .map(|s| s.2)
            .max()
            .unwrap_or(0)
    }

    /// Bytes a second as of `now`, over the time the samples cover; `None` until they span
    /// [`MIN_SPAN`].
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let (&(t0, d0, _), &(_, d1, _)) = (self.samples.front()?, self.samples.back()?);
        let span = now.saturating_duration_since(t0);
        (span >= MIN_SPAN).then(|| d1.saturating_sub(d0) as f64 / span.as_secs_f64())
    }

    /// Seconds until `total` bytes are done at the rate of `now`; `None` without a rate (or a
    /// size), or while nothing arrives.
    pub fn eta(&self, now: Instant, total: Option<u64>) -> Option<f64> {
        let rate = self.rate(now).filter(|r| *r > 0.0)?;
        let done = self.samples.back().map_or(0, |s| s.1);
        Some(total?.saturating_sub(done) as f64 / rate)
    }
}

/// What follows a bar: `12.3 MiB/s  ETA 4 s  2 peers`, then `  1 rejected` and `  note` when
/// there are any. A rate or ETA not known yet is `-`. The web page formats the same (its tests
/// share `web/test/cases.json` with this module's).
pub fn line(
    rate: Option<f64>,
    eta: Option<f64>,
    peers: usize,
    rejected: u32,
    note: &str,
) -> String {
    let rate = rate.map_or_else(|| "-".into(), |r| format::size(r as u64));
    let eta = eta.map_or_else(|| "ETA -".into(), |e| format!("ETA {e:.0} s"));
    let mut s = format!(
        "{rate}/s  {eta}  {peers} peer{}",
        crate::download::plural(peers)
    );
    if rejected > 0 {
        s.push_str(&format!("  {rejected} rejected"));
    }
    if !note.is_empty() {
        s.push_str("  ");
        s.push_str(note);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn no_rate_before_the_samples_span_half_a_second() {
        let t = Instant::now();
        let mut m = Meter::default();
        assert_eq!(m.rate(t), None);
        m.record(t, 1 << 20);
        m.record(t + MS(100), 30 << 20);
        assert_eq!(m.rate(t + MS(100)), None, "100 ms is too short to say");
        assert_eq!(m.eta(t + MS(100), Some(64 << 20)), None);
        m.record(t + MS(500), 101 << 20);
        let r = m.rate(t + MS(500)).expect("half a second");
        assert_eq!(r, (100 << 20) as f64 / 0.5);
    }

    #[test]
    fn a_short_download_is_measured_over_its_own_time_not_the_window() {
        // 100 MiB/s for 0.8 s: the rate says 100 MiB/s from the first figure on, not 1, 2, 3 …
        // climbing as if the download had lasted the whole window (the prompt's old bars).
        let t = Instant::now();
        let mut m = Meter::default();
        let mut seen = Vec::new();
        for k in 0..=8u64 {
            let now = t + MS(100 * k);
            m.record(now, (10 << 20) * k);
            if let Some(r) = m.rate(now) {
                seen.push(r / (1 << 20) as f64);
            }
        }
        assert!(!seen.is_empty());
        for r in seen {
            assert!((r - 100.0).abs() < 1e-9, "{r}");
        }
    }

    #[test]
    fn the_window_slides_and_a_stall_brings_the_rate_to_zero() {
        let t = Instant::now();
        let mut m = Meter::default();
        // 10 s at 1 MiB per 100 ms, then 3 s at 4 MiB per 100 ms.
        let mut done = 0;
        for k in 0..=130u64 {
            done += if k <= 100 { 1 << 20 } else { 4 << 20 };
            m.record(t + MS(100 * k), done);
        }
        let now = t + MS(13_000);
        let r = m.rate(now).expect("rate") / (1 << 20) as f64;
        // The last 5 s: 2 s at 10 MiB/s and 3 s at 40 MiB/s = 28 MiB/s.
        assert!((r - 28.0).abs() < 0.5, "{r}");
        assert!(m.samples.len() <= (WINDOW.as_millis() / 100 + 2) as usize);
        // Nothing more arrives; ticks keep recording the same figure.
        for k in 1..=51u64 {
            m.record(now + MS(100 * k), done);
        }
        assert_eq!(m.rate(now + MS(5100)), Some(0.0));
        assert_eq!(m.eta(now + MS(5100), Some(done * 2)), None);
    }

    #[test]
    fn peers_are_the_most_busy_in_the_window() {
        let t = Instant::now();
        let mut m = Meter::default();
        m.report(t, 1 << 20, 2);
        // The disk lags: later reports find nobody with requests out.
        m.report(t + MS(300), 2 << 20, 0);
        m.record(t + MS(400), 2 << 20);
        assert_eq!(m.peers(t + MS(400)), 2);
        m.report(t + MS(405), 3 << 20, 3);
        m.report(t + MS(410), 4 << 20, 1);
        assert_eq!(
            m.peers(t + MS(410)),
            3,
            "merged samples keep the most peers"
        );
        // Nothing reported for a whole window: nobody is sending.
        for k in 1..=52u64 {
            m.record(t + MS(410 + 100 * k), 4 << 20);
        }
        assert_eq!(m.peers(t + MS(5_610)), 0);
    }

    #[test]
    fn eta_is_what_is_left_at_the_rate() {
        let t = Instant::now();
        let mut m = Meter::default();
        m.record(t, 0);
        m.record(t + Duration::from_secs(1), 10 << 20);
        let eta = m.eta(t + Duration::from_secs(1), Some(30 << 20));
        assert_eq!(eta, Some(2.0));
        assert_eq!(m.eta(t + Duration::from_secs(1), None), None);
    }

    #[test]
    fn samples_stay_bounded_however_often_progress_comes() {
        let t = Instant::now();
        let mut m = Meter::default();
        for k in 0..100_000u64 {
            m.record(t + Duration::from_micros(100 * k), k << 10);
        }
        let bound = (WINDOW.as_millis() / MIN_GAP.as_millis()) as usize + 3;
        assert!(m.samples.len() <= bound, "{} samples", m.samples.len());
        let r = m
            .rate(t + Duration::from_micros(100 * 99_999))
            .expect("rate");
        assert!((r - (1u64 << 10) as f64 * 10_000.0).abs() / r < 0.01, "{r}");
    }

    /// The cases the page's JavaScript is tested with too (`web/test/cases.json`).
    #[test]
    fn the_page_formats_like_the_prompt() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../web/test/cases.json")).expect("cases.json");
        let sizes = cases["size"].as_array().expect("size cases");
        assert!(sizes.len() > 5);
        for c in sizes {
            let bytes = c[0].as_u64().expect("bytes");
            assert_eq!(format::size(bytes), c[1].as_str().expect("text"), "{bytes}");
        }
        let lines = cases["line"].as_array().expect("line cases");
        assert!(lines.len() > 3);
        for c in lines {
            let got = line(
                c["rate"].as_f64(),
                c["eta"].as_f64(),
                c["peers"].as_u64().expect("peers") as usize,
                c["rejected"].as_u64().expect("rejected") as u32,
                c["note"].as_str().unwrap_or(""),
            );
            assert_eq!(got, c["text"].as_str().expect("text"), "{c}");
        }
        for c in cases["mbps"].as_array().expect("mbps cases") {
            let (bytes, secs) = (c[0].as_u64().expect("bytes"), c[1].as_f64().expect("secs"));
            assert_eq!(
                format::rate(bytes, secs),
                c[2].as_str().expect("text"),
                "{c}"
            );
        }
    }
}
