//! What the page's buttons do: start a download (a file by its content id, or a folder by its
//! name, the way the control socket's `get` does), stop one, forget the ended ones.
//!
//! Invariants: every answer is JSON (`{"ok": true, "key"}`, `{"said"}` when there is nothing
//! to do, or `{"error"}` with a 4xx/5xx status), and every error is also shown on every open
//! page (a note through the hub), never only in the terminal; at most [`MAX_FOLDER_JOBS`] folder
//! jobs started here run at once, one per folder.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use p2pshare_host::{Controller, Request};
use p2pshare_proto::ContentId;
use serde::Deserialize;
use serde_json::json;

use super::Web;
use super::http::Response;
use super::hub::Msg;
use crate::commands::{Unresolved, content_by_name};
use crate::folder;

/// Most folder jobs the page runs at once (each runs up to four files at a time).
pub const MAX_FOLDER_JOBS: usize = 4;

/// What a button needs.
pub struct Ctx<'a> {
    hub: &'a SyncSender<Msg>,
    ctl: &'a Controller,
    shared: &'a Path,
    folders: &'a Arc<Mutex<BTreeSet<String>>>,
}

impl<'a> Ctx<'a> {
    /// The context of the page server `web`.
    pub(super) fn of(web: &'a Web) -> Ctx<'a> {
        Ctx {
            hub: &web.hub,
            ctl: &web.ctl,
            shared: &web.shared,
            folders: &web.folders,
        }
    }

    /// Fails with `error` (status `status`), shown on every page too.
    fn fail(&self, status: u16, error: String) -> Response {
        let _ = self.hub.try_send(Msg::Note(error.clone()));
        Response::json(status, json!({ "error": error }).to_string())
    }
}

/// The body of `POST /api/get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBody {
    /// A file by content id (hex), saved under `name` if it is one of its names.
    #[serde(default)]
    content: Option<String>,
    /// A folder (`photos/`), or a file by name or content-id prefix.
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/get`.
pub fn get(cx: &Ctx<'_>, body: &[u8]) -> Response {
    let Ok(b) = serde_json::from_slice::<GetBody>(body) else {
        return Response::json(400, json!({"error": "bad request"}).to_string());
    };
    let snap = match cx.ctl.snapshot() {
        Ok(s) => s,
        Err(e) => return cx.fail(503, e.to_string()),
    };
    let (content, name) = match (b.content, b.name) {
        (Some(hex), name) => {
            let Some(content) = ContentId::from_hex(&hex) else {
                return Response::json(400, json!({"error": "bad content id"}).to_string());
            };
            let Some(f) = snap.remote.iter().find(|f| f.content == content) else {
                let n = name.unwrap_or_else(|| content.short());
                return cx.fail(404, format!("no peer shares {n:?} any more (see the list)"));
            };
            let name = name.filter(|n| f.names.contains(n));
            if f.local {
                let text = format!(
                    "you already share {}",
                    name.as_deref().unwrap_or("this file")
                );
                return Response::json(200, json!({ "said": text }).to_string());
            }
            (content, name)
        }
        (None, Some(name)) if folder::is_folder(&snap, &name) => {
            return get_folder(cx, &snap, &name);
        }
        (None, Some(name)) => match content_by_name(&snap, &name, cx.shared) {
            Ok(pick) => (pick.content, pick.name),
            Err(Unresolved::Unknown(m)) => return cx.fail(404, m),
            Err(Unresolved::Have(m)) => {
                return Response::json(200, json!({ "said": m }).to_string());
            }
            Err(Unresolved::Ambiguous(a)) => {
                return cx.fail(409, format!("{}; pick one in the list", a.what));
            }
        },
        (None, None) => return Response::json(400, json!({"error": "no name"}).to_string()),
    };
    let shown = name.clone().unwrap_or_else(|| {
        snap.remote
            .iter()
            .find(|f| f.content == content)
            .and_then(|f| f.names.first().cloned())
            .unwrap_or_else(|| content.short())
    });
    if let Err(e) = cx.ctl.request(Request::Get { content, name }) {
        return cx.fail(503, e.to_string());
    }
    let _ = cx.hub.try_send(Msg::Asked {
        content,
        name: shown,
    });
    Response::json(
        200,
        json!({"ok": true, "key": content.to_hex()}).to_string(),
    )
}

/// Starts the folder job for `name` on a thread of its own.
fn get_folder(cx: &Ctx<'_>, snap: &p2pshare_host::Snapshot, name: &str) -> Response {
    let job = folder::plan(snap, cx.shared, name);
    let totals = job.totals();
    if totals.files == 0 {
        return cx.fail(404, format!("no peer shares a folder named {name:?}"));
    }
    // The row clicked shows the folder's size and file count (no question past the prompt's
    // threshold), but a folder the disk has no room for is refused.
    if let Err(e) = folder::preview(snap, cx.shared, name, &job).room(cx.shared) {
        return cx.fail(507, e);
    }
    let label = format!("{}/", name.trim_end_matches('/'));
    {
        let Ok(mut running) = cx.folders.lock() else {
            return cx.fail(503, "the page's folder jobs are broken".into());
        };
        if running.contains(&label) {
            return cx.fail(409, format!("{label} is being downloaded already"));
        }
        if running.len() >= MAX_FOLDER_JOBS {
            return cx.fail(
                503,
                format!("{MAX_FOLDER_JOBS} folders are being downloaded already; wait for one"),
            );
        }
        running.insert(label.clone());
    }
    let contents: Vec<ContentId> = job.files().map(|(f, _)| f.content).collect();
    let cancel = Arc::new(AtomicBool::new(false));
    let (hub, ctl, shared, folders) = (
        cx.hub.clone(),
        cx.ctl.clone(),
        cx.shared.to_path_buf(),
        cx.folders.clone(),
    );
    let (l, n) = (label.clone(), name.to_owned());
    let stop = cancel.clone();
    let run = move || {
        let _ = hub.send(Msg::FolderStarted {
            label: l.clone(),
            contents,
            cancel: stop.clone(),
            totals,
        });
        let result = folder::run_watched(&ctl, &shared, &n, job, |job, peers, news| {
            if stop.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            if news {
                let _ = hub.try_send(Msg::FolderProgress {
                    label: l.clone(),
                    totals: job.totals(),
                    peers,
                });
            }
            Ok(())
        });
        let _ = hub.send(Msg::FolderEnded {
            label: l.clone(),
            result,
        });
        if let Ok(mut running) = folders.lock() {
            running.remove(&l);
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("p2pshare-web-folder".into())
        .spawn(run)
    {
        if let Ok(mut running) = cx.folders.lock() {
            running.remove(&label);
        }
        return cx.fail(503, format!("cannot start the folder job: {e}"));
    }
    let key = format!("folder:{label}");
    Response::json(200, json!({"ok": true, "key": key}).to_string())
}

/// The body of `POST /api/cancel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    key: String,
}

/// `POST /api/cancel`: stops the download with that key; its partial files are kept.
pub fn cancel(hub: &SyncSender<Msg>, body: &[u8]) -> Response {
    match serde_json::from_slice::<CancelBody>(body) {
        Ok(b) => tell(hub, Msg::Cancel(b.key)),
        Err(_) => Response::json(400, json!({"error": "bad request"}).to_string()),
    }
}

/// Passes `m` to the hub: `{"ok": true}`, or 503 when it is swamped.
pub fn tell(hub: &SyncSender<Msg>, m: Msg) -> Response {
    match hub.try_send(m) {
        Ok(()) => Response::json(200, json!({"ok": true}).to_string()),
        Err(_) => Response::json(503, json!({"error": "busy"}).to_string()),
    }
}
