//! The folder job (`proto/src/folder.rs`) against a small reference model: random folders
//! (paths listed twice, equal contents, files already in place) and random sequences of
//! starts, progress, ends and stops. After every step the job's invariants hold and it agrees
//! with the model: which files run, which ended and how, and the totals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use p2pshare_proto::ContentId;
use p2pshare_proto::folder::{FileState, FolderJob, JobFile, MAX_FILES_IN_FLIGHT};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Start as many files as the job allows.
    Start,
    /// The running download of the k-th running content (mod count) makes progress.
    Progress(usize, u64),
    /// It is placed.
    Done(usize),
    /// It fails.
    Fail(usize),
    /// An event for a content the job does not run.
    Stray(u8),
    /// The job is stopped.
    Stop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Start),
        2 => (any::<usize>(), 0u64..2000).prop_map(|(k, d)| Op::Progress(k, d)),
        4 => any::<usize>().prop_map(Op::Done),
        2 => any::<usize>().prop_map(Op::Fail),
        1 => any::<u8>().prop_map(Op::Stray),
        1 => Just(Op::Stop),
    ]
}

/// The model: each path's state, by path.
#[derive(Debug, Default)]
struct Model {
    files: BTreeMap<String, (ContentId, u64, FileState)>,
}

impl Model {
    fn running(&self) -> Vec<ContentId> {
        let mut v: Vec<ContentId> = self
            .files
            .values()
            .filter(|(_, _, s)| matches!(s, FileState::Running(_)))
            .map(|(c, _, _)| *c)
            .collect();
        v.sort();
        v
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_job_agrees_with_the_model(
        listed in prop::collection::vec((0u8..30, 0u8..12, 0u64..1500, any::<bool>()), 0..40),
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let files: Vec<JobFile> = listed
            .iter()
            .map(|(p, c, size, _)| JobFile {
                name: format!("d/f{p}"),
                content: ContentId([*c; 32]),
                size: *size,
            })
            .collect();
        let have: BTreeMap<String, bool> =
            listed.iter().map(|(p, _, _, h)| (format!("d/f{p}"), *h)).collect();
        let mut job = FolderJob::new(files.clone(), |f| have[&f.name]);
        let mut model = Model::default();
        for f in &files {
            // The first listing of a path wins.
            model.files.entry(f.name.clone()).or_insert_with(|| {
                let s = if have[&f.name] { FileState::Skipped } else { FileState::Waiting };
                (f.content, f.size, s)
            });
        }
        let same_files: Vec<String> = job.files().map(|(f, _)| f.name.clone()).collect();
        prop_assert_eq!(same_files, model.files.keys().cloned().collect::<Vec<_>>());
        for op in ops {
            match op {
                Op::Start => {
                    while let Some(f) = job.next_start() {
                        let (name, content) = (f.name.clone(), f.content);
                        let m = model.files.get_mut(&name).unwrap();
                        prop_assert_eq!(&m.2, &FileState::Waiting, "{} started twice", name);
                        m.2 = FileState::Running(0);
                        prop_assert_eq!(
                            model.running().iter().filter(|c| **c == content).count(), 1,
                            "two files of one content run"
                        );
                    }
                    // Nothing more could start: the window is full, or every waiting file's
                    // content runs.
                    let running = model.running();
                    let blocked = model.files.values().all(|(c, _, s)| {
                        *s != FileState::Waiting || running.contains(c)
                    });
                    prop_assert!(running.len() == MAX_FILES_IN_FLIGHT || blocked);
                }
                Op::Progress(k, d) => {
                    let running = model.running();
                    if !running.is_empty() {
                        let c = running[k % running.len()];
                        job.on_progress(&c, d);
                        let m = model.files.values_mut().find(|(x, _, s)| *x == c && matches!(s, FileState::Running(_))).unwrap();
                        m.2 = FileState::Running(d.min(m.1));
                    }
                }
                Op::Done(k) | Op::Fail(k) => {
                    let running = model.running();
                    if running.is_empty() {
                        continue;
                    }
                    let c = running[k % running.len()];
                    let (name, m) = model.files.iter_mut().find(|(_, (x, _, s))| *x == c && matches!(s, FileState::Running(_))).unwrap();
                    let got = if matches!(op, Op::Done(_)) {
                        m.2 = FileState::Done(format!("dl_{name}"));
                        job.on_done(&c, format!("dl_{name}")).map(str::to_owned)
                    } else {
                        m.2 = FileState::Failed("no peer".into());
                        job.on_failed(&c, "no peer".into()).map(str::to_owned)
                    };
                    prop_assert_eq!(got.as_deref(), Some(name.as_str()));
                }
                Op::Stray(c) => {
                    let c = ContentId([100 + c % 100; 32]);
                    prop_assert!(job.on_done(&c, "x".into()).is_none());
                    prop_assert!(job.on_failed(&c, "x".into()).is_none());
                }
                Op::Stop => {
                    let mut stopped = job.stop("stopped");
                    stopped.sort();
                    prop_assert_eq!(stopped, model.running());
                    for m in model.files.values_mut() {
                        if matches!(m.2, FileState::Waiting | FileState::Running(_)) {
                            m.2 = FileState::Failed("stopped".into());
                        }
                    }
                }
            }
            job.check_invariants().map_err(TestCaseError::fail)?;
            let states: Vec<FileState> = job.files().map(|(_, s)| s.clone()).collect();
            let want: Vec<FileState> = model.files.values().map(|m| m.2.clone()).collect();
            prop_assert_eq!(states, want);
            let t = job.totals();
            let count = |p: fn(&FileState) -> bool| model.files.values().filter(|m| p(&m.2)).count();
            prop_assert_eq!(t.files, model.files.len());
            prop_assert_eq!(t.done, count(|s| matches!(s, FileState::Done(_))));
            prop_assert_eq!(t.failed, count(|s| matches!(s, FileState::Failed(_))));
            prop_assert_eq!(t.skipped, count(|s| *s == FileState::Skipped));
            prop_assert!(t.running <= MAX_FILES_IN_FLIGHT);
            prop_assert!(t.bytes_done <= t.bytes);
            prop_assert_eq!(job.is_finished(), t.done + t.failed + t.skipped == t.files);
        }
    }
}
