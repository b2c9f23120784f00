// The page's DOM half: follows the peer's event stream and redraws only the part an event
// changed, reusing the rows that stay (keyed by content id, folder or address), so a download's
// bar moves without the list around it being rebuilt.
//
// Invariants: every name, path or message from the peer (and so from other peers) is set as
// text (`textContent`), never parsed as HTML; the token travels only in an `Authorization`
// header, never in an address; every figure is formatted by view.mjs.

import {
  EventParser,
  byCodePoint,
  crumbs,
  downloadText,
  initialState,
  namesCell,
  plural,
  reduce,
  search,
  sharedBy,
  short,
  size,
  sizeCell,
  summarise,
  tokenOf,
} from "./view.mjs";

/** Rows drawn at most in one list (the CLI's `list` stops at 1,000 too). */
const ROWS = 1000;
/** Names listed under one peer. */
const PEER_NAMES = 200;

const token = tokenOf(location.hash);
let state = initialState();
let live = false;
let folder = "";
let query = "";
let runningKeys = "";
const localNotes = [];
const dismissed = new Set();

const $ = (id) => document.getElementById(id);

/** A new element; string children become text nodes (never HTML). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "type") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Makes `box`'s children the rows of `items` in order, reusing the rows whose key stays. */
function sync(box, items, keyOf, make, update) {
  const old = new Map();
  for (const c of [...box.children]) old.set(c.dataset.key, c);
  let prev = null;
  for (const item of items) {
    const k = keyOf(item);
    let node = old.get(k);
    if (node) old.delete(k);
    else {
      node = make(item);
      node.dataset.key = k;
    }
    update(node, item);
    const want = prev ? prev.nextSibling : box.firstChild;
    if (node !== want) box.insertBefore(node, want);
    prev = node;
  }
  for (const n of old.values()) n.remove();
}

async function post(path, body) {
  try {
    const res = await fetch(path, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const j = await res.json().catch(() => ({}));
    if (j.said) addLocal("info", j.said);
    // Errors reach every page as notes; without the stream, say it here.
    if (j.error && !live) addLocal("error", j.error);
    if (!res.ok && !j.error) addLocal("error", `${path}: ${res.status}`);
  } catch (e) {
    addLocal("error", `the peer did not answer (${e.message})`);
  }
}

function addLocal(level, text) {
  localNotes.push({ id: `local-${Date.now()}-${localNotes.length}`, level, text });
  while (localNotes.length > 5) localNotes.shift();
  drawNotes();
}

function setConn(text, cls) {
  const c = $("conn");
  setText(c, text);
  c.className = `conn ${cls}`;
}

// --- Notes ----------------------------------------------------------------------------------

function drawNotes() {
  const all = [...state.notes, ...localNotes].filter((n) => !dismissed.has(String(n.id))).slice(-5).reverse();
  sync(
    $("notes"),
    all,
    (n) => String(n.id),
    (n) =>
      el(
        "div",
        { class: `note ${n.level}`, role: n.level === "error" ? "alert" : "status" },
        el("span", { class: "text" }),
        el("button", { type: "button", class: "dismiss", title: "Dismiss", on: { click: () => { dismissed.add(String(n.id)); drawNotes(); } } }, "×"),
      ),
    (node, n) => setText(node.querySelector(".text"), n.text),
  );
}

// --- This peer ------------------------------------------------------------------------------

function drawMe() {
  const v = state.view;
  if (!v) return;
  const me = v.me;
  const rows = [
    ["id", me.id],
    ["folder", me.folder],
    ["addresses", me.addresses.length ? me.addresses.join(", ") : `TCP port ${me.transfer_port} (no LAN interface)`],
    ["discovery", `UDP port ${me.discovery_port}`],
    ["page", me.web],
  ];
  sync(
    $("me"),
    rows,
    (r) => r[0],
    (r) => el("div", { class: "pair" }, el("dt", {}, r[0]), el("dd")),
    (node, r) => setText(node.querySelector("dd"), r[1]),
  );
  setText($("me-short"), me.short);
  // The counters of dropped and refused input (`serve -v`'s stats line), those not zero.
  const stats = Object.entries(v.status?.stats ?? {}).filter(([, n]) => n > 0);
  setText($("stats-summary"), `counters: ${stats.length} not zero, notices dropped ${v.status?.notices_dropped ?? 0}`);
  sync(
    $("stats"),
    stats,
    ([k]) => k,
    () => el("li"),
    (li, [k, n]) => setText(li, `${k}=${n}`),
  );
  drawPeers();
  drawShared();
}

// --- Peers ----------------------------------------------------------------------------------

function drawPeers() {
  const peers = state.view?.status?.peers ?? [];
  setText($("peers-count"), String(peers.length));
  $("peers-empty").hidden = peers.length > 0;
  sync(
    $("peers"),
    peers,
    (p) => p.id,
    () =>
      el(
        "li",
        { class: "peer" },
        el("div", { class: "line" }, el("span", { class: "addr" }), el("span", { class: "kind" }), el("span", { class: "id" })),
        el("details", {}, el("summary"), el("ul", { class: "names" })),
      ),
    (node, p) => {
      setText(node.querySelector(".addr"), p.addr);
      // "new": a key this folder had not met before this run (README: known peers).
      // How it is reached and how it was found (README: Finding peers).
      const reach = p.interface ? `${p.routed ? "routed via" : "on"} ${p.interface}` : "";
      const kind = [p.python ? "python" : "", p.new ? "new" : "", reach, p.found ?? ""];
      setText(node.querySelector(".kind"), kind.filter(Boolean).join(", "));
      setText(node.querySelector(".id"), short(p.id));
      const files = p.files == null ? "catalog not fetched yet" : `shares ${p.files} file${plural(p.files)}`;
      setText(node.querySelector("summary"), files);
      const names = sharedBy(state.files, p.id);
      const shown = names.slice(0, PEER_NAMES);
      if (names.length > PEER_NAMES) shown.push(`… and ${names.length - PEER_NAMES} more`);
      sync(node.querySelector(".names"), shown, (n) => n, () => el("li"), (li, n) => setText(li, n));
    },
  );
}

// --- Shared by this peer --------------------------------------------------------------------

function drawShared() {
  const shared = [...(state.view?.status?.shared ?? [])].sort((a, b) => byCodePoint(a.name, b.name));
  setText($("shared-count"), String(shared.length));
  $("shared-empty").hidden = shared.length > 0;
  sync(
    $("shared").tBodies[0],
    shared.slice(0, ROWS),
    (f) => `${f.name}\u0000${f.content}`,
    () => el("tr", {}, el("td", { class: "name" }), el("td", { class: "size" }), el("td", { class: "id" })),
    (tr, f) => {
      setText(tr.cells[0], f.name);
      setText(tr.cells[1], size(f.size));
      setText(tr.cells[2], short(f.content));
    },
  );
  setText($("shared-more"), shared.length > ROWS ? `… and ${shared.length - ROWS} more` : "");
}

// --- Files on other peers -------------------------------------------------------------------

function running(key) {
  return state.downloads.some((d) => d.key === key && !["done", "failed", "cancelled"].includes(d.phase));
}

function getButton(label) {
  return el("button", { type: "button", class: "get" }, label);
}

function drawFiles() {
  const box = $("files").tBodies[0];
  let rows;
  let heading;
  if (query) {
    rows = search(state.files, query).map((m) => ({ kind: "file", key: `f:${m.file.content}`, ...m }));
    heading = `${rows.length} file${plural(rows.length)} match “${query}”`;
    $("crumbs").hidden = true;
  } else {
    const s = summarise(state.files, folder);
    rows = [
      ...s.folders.map((f) => ({ kind: "folder", key: `d:${f.path}`, folder: f })),
      ...s.files.map((m) => ({ kind: "file", key: `f:${m.file.content}`, ...m })),
    ];
    heading = "";
    $("crumbs").hidden = false;
    drawCrumbs();
  }
  setText($("files-heading"), heading);
  const more = rows.length - ROWS;
  sync(
    box,
    rows.slice(0, ROWS),
    (r) => r.key,
    (r) => {
      const tr = el("tr", { class: r.kind }, el("td", { class: "name" }), el("td", { class: "size" }), el("td", { class: "peers" }), el("td", { class: "act" }));
      if (r.kind === "folder") {
        const open = el("button", { type: "button", class: "open" });
        tr.cells[0].append(open);
        open.addEventListener("click", () => {
          folder = tr.dataset.path;
          drawFiles();
        });
      }
      const b = getButton("Get");
      b.addEventListener("click", () => {
        const body = tr.dataset.kind === "folder" ? { name: tr.dataset.path + "/" } : { content: tr.dataset.content, name: tr.dataset.name };
        b.disabled = true;
        post("/api/get", body).finally(() => drawFiles());
      });
      tr.cells[3].append(b);
      return tr;
    },
    (tr, r) => {
      tr.dataset.kind = r.kind;
      if (r.kind === "folder") {
        const f = r.folder;
        tr.dataset.path = f.path;
        setText(tr.querySelector(".open"), f.name);
        setText(tr.cells[1], size(f.bytes));
        setText(tr.cells[2], `${f.peers} · ${f.files} file${plural(f.files)}`);
        tr.querySelector(".get").disabled = running(`folder:${f.path}/`);
      } else {
        tr.dataset.content = r.file.content;
        tr.dataset.name = r.names[0];
        setText(tr.cells[0], namesCell(r.names) + (r.file.python ? "  (python)" : ""));
        tr.cells[0].title = short(r.file.content);
        setText(tr.cells[1], sizeCell(r.file));
        setText(tr.cells[2], String(r.file.peers));
        tr.querySelector(".get").disabled = running(r.file.content);
      }
    },
  );
  const notes = [];
  if (more > 0) notes.push(`… and ${more} more rows (search finds any)`);
  if (state.filesTotal > state.files.length) notes.push(`the page holds ${state.files.length} of ${state.filesTotal} files`);
  if (rows.length === 0) notes.push(query ? "No file matches." : folder ? `No files available under ${folder}` : "No files available.");
  setText($("files-note"), notes.join("; "));
}

function drawCrumbs() {
  sync(
    $("crumbs"),
    crumbs(folder),
    (c) => c[0],
    () => el("button", { type: "button", class: "crumb" }),
    (b, c) => {
      setText(b, c[1]);
      b.disabled = c[0] === folder;
      b.onclick = () => {
        folder = c[0];
        drawFiles();
      };
    },
  );
}

// --- Downloads ------------------------------------------------------------------------------

function drawDownloads() {
  const list = state.downloads;
  $("downloads-empty").hidden = list.length > 0;
  $("clear").hidden = !list.some((d) => ["done", "failed", "cancelled"].includes(d.phase));
  sync(
    $("downloads"),
    list,
    (d) => d.key,
    () => {
      const li = el(
        "li",
        { class: "download" },
        el("div", { class: "head" }, el("span", { class: "name" }), el("span", { class: "state" }), el("button", { type: "button", class: "cancel" }, "Cancel")),
        el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, el("div", { class: "fill" })),
        el("div", { class: "figures" }, el("span", { class: "bytes" }), el("span", { class: "percent" }), el("span", { class: "line" })),
        el("div", { class: "result" }),
      );
      li.querySelector(".cancel").addEventListener("click", (ev) => {
        ev.target.disabled = true;
        post("/api/cancel", { key: li.dataset.key });
      });
      return li;
    },
    (li, d) => {
      const t = downloadText(d);
      li.dataset.phase = d.phase;
      setText(li.querySelector(".name"), d.folder ? d.name : d.name || "…");
      setText(li.querySelector(".state"), t.state);
      const cancel = li.querySelector(".cancel");
      cancel.hidden = !t.running;
      const bar = li.querySelector(".bar");
      bar.classList.toggle("unknown", t.pct == null);
      const pct = t.pct == null ? 0 : Math.min(100, t.pct);
      bar.setAttribute("aria-valuenow", t.pct == null ? "" : String(Math.floor(pct)));
      bar.querySelector(".fill").style.width = `${pct}%`;
      setText(li.querySelector(".bytes"), t.bytes);
      setText(li.querySelector(".percent"), t.percent);
      setText(li.querySelector(".line"), t.line);
      const result = li.querySelector(".result");
      const lines = [];
      if (d.sha256) lines.push(`sha256 ${d.sha256}`);
      if (d.line) lines.push(d.line);
      setText(result, lines.join("\n"));
    },
  );
  // The Get buttons of what runs are disabled: redraw the files when that set changed.
  const now = list.filter((d) => downloadText(d).running).map((d) => d.key).join(" ");
  if (now !== runningKeys) {
    runningKeys = now;
    drawFiles();
  }
}

// --- The event stream -----------------------------------------------------------------------

function apply(ev) {
  state = reduce(state, ev.event, ev.data);
  const c = state.changed;
  if (c.has("view")) drawMe();
  if (c.has("files")) {
    drawFiles();
    drawPeers();
  }
  if (c.has("downloads")) drawDownloads();
  if (c.has("notes")) drawNotes();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow() {
  let wait = 500;
  for (;;) {
    try {
      const res = await fetch("/events", { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
      if (res.status === 403) {
        setConn("refused: open the address p2pshare printed, with its #token", "bad");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
      live = true;
      wait = 500;
      setConn("live", "ok");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new EventParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.feed(value)) apply(ev);
      }
    } catch {
      // The peer stopped or restarted: try again.
    }
    live = false;
    setConn("not connected: is the peer running? trying again…", "bad");
    await sleep(wait);
    wait = Math.min(wait * 2, 5000);
  }
}

function start() {
  $("search").addEventListener("input", (e) => {
    query = e.target.value;
    drawFiles();
  });
  $("clear").addEventListener("click", () => post("/api/clear", {}));
  if (!token) {
    setConn("no token: open the address p2pshare printed (it ends with #…)", "bad");
    return;
  }
  follow();
}

start();
