// The page's pure half: formatting exactly as the CLI formats (sizes, rates, the progress line),
// the folder summaries `list` prints, search, the event-stream parser and the state the events
// build. No DOM here: `node --test cli/web/test/` imports this module as it is.
//
// Invariants: every figure the page shows goes through these functions, whose results equal the
// Rust ones on the cases both test suites read (test/cases.json); numbers are rounded as Rust's
// `{:.N}` rounds (exact value, ties to even), not as `toFixed` does (ties away from zero).

/** `v` with `digits` decimals, as Rust's `format!("{:.digits$}", v)` writes it. */
export function fixed(v, digits) {
  if (!Number.isFinite(v)) return String(v);
  const negative = v < 0 || Object.is(v, -0);
  // The exact value of the double: mantissa × 2^exponent.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(v));
  const bits = view.getBigUint64(0);
  const expBits = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let exp;
  if (expBits === 0) {
    exp = -1074;
  } else {
    mant |= 1n << 52n;
    exp = expBits - 1075;
  }
  // scaled = mant × 2^exp × 10^digits, as a fraction num / den.
  let num = mant * 10n ** BigInt(digits);
  let den = 1n;
  if (exp >= 0) num <<= BigInt(exp);
  else den <<= BigInt(-exp);
  let q = num / den;
  const r2 = (num % den) * 2n;
  if (r2 > den || (r2 === den && q % 2n === 1n)) q += 1n;
  let s = q.toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return negative ? `-${s}` : s;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `1.5 MiB`-style sizes (the CLI's `format::size`). */
export function size(bytes) {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u + 1 < UNITS.length) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${bytes} B` : `${fixed(v, 1)} ${UNITS[u]}`;
}

/** `12.3 MB/s`, the average of a finished download (the CLI's `format::rate`). */
export function mbps(bytes, secs) {
  return secs <= 0 ? "-" : `${fixed(bytes / secs / 1e6, 1)} MB/s`;
}

/** `""` for one, `"s"` otherwise. */
export function plural(n) {
  return n === 1 ? "" : "s";
}

/** What follows a download's bar, as the prompt prints it (`meter::line`). */
export function line(rate, eta, peers, rejected, note = "") {
  const r = rate == null ? "-" : size(Math.trunc(rate));
  const e = eta == null ? "ETA -" : `ETA ${fixed(eta, 0)} s`;
  let s = `${r}/s  ${e}  ${peers} peer${plural(peers)}`;
  if (rejected > 0) s += `  ${rejected} rejected`;
  if (note) s += `  ${note}`;
  return s;
}

/** A content id's short form (its first 12 hex digits). */
export function short(hex) {
  return String(hex).slice(0, 12);
}

/** `a` before `b` as Rust orders strings (by code point, not UTF-16 unit). */
export function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** True when `name` lies under `folder` (proto's `name::is_under`). */
export function isUnder(name, folder) {
  const f = folder.replace(/\/+$/, "");
  return f.length > 0 && name.length > f.length + 1 && name.startsWith(f) && name[f.length] === "/";
}

/** Names shown for one file; the others are counted (the CLI's `names_cell`). */
export const NAMES_SHOWN = 3;

/** The NAME cell of a file: its first names, and how many more it has. */
export function namesCell(names) {
  const shown = names.slice(0, NAMES_SHOWN).join(", ");
  const more = names.length - NAMES_SHOWN;
  return more > 0 ? `${shown}, … (+${more} more)` : shown;
}

/** The SIZE cell: a Python peer's file shows its upper bound, marked `≤`. */
export function sizeCell(f) {
  return f.python ? `≤${size(f.size)}` : size(f.size);
}

/**
 * What `list PREFIX/` shows: the files at that level and each folder below it in one row
 * (`format::list_under`). `files` are `list --json`'s; `prefix` a folder or "" for the top.
 * Returns `{folders: [{path, name, files, bytes, peers}], files: [{file, names}]}`, folders in
 * Rust's order, files in the list's.
 */
export function summarise(files, prefix = "") {
  const p = prefix.replace(/\/+$/, "");
  const below = (n) => (p ? (isUnder(n, p) ? p.length + 1 : -1) : 0);
  const folders = new Map();
  const out = [];
  for (const f of files) {
    const here = [];
    for (const n of f.names) {
      const at = below(n);
      if (at < 0) continue;
      const slash = n.indexOf("/", at);
      if (slash >= 0) {
        const path = n.slice(0, slash);
        const e = folders.get(path) ?? { path, name: `${path}/`, files: 0, bytes: 0, peers: 0 };
        e.files += 1;
        e.bytes += f.size;
        e.peers = Math.max(e.peers, f.peers);
        folders.set(path, e);
      } else {
        here.push(n);
      }
    }
    if (here.length > 0) out.push({ file: f, names: here });
  }
  const rows = [...folders.values()].sort((a, b) => byCodePoint(a.path, b.path));
  return { folders: rows, files: out };
}

/** The files one of whose names contains `query` (any case), with those names. */
export function search(files, query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const out = [];
  for (const f of files) {
    const names = f.names.filter((n) => n.toLowerCase().includes(q));
    if (names.length > 0) out.push({ file: f, names });
  }
  return out;
}

/** The names of the files a peer (by id) shares, sorted. */
export function sharedBy(files, id) {
  const names = [];
  for (const f of files) {
    if ((f.holders ?? []).includes(id)) names.push(...f.names);
  }
  return names.sort(byCodePoint);
}

/** The folders above `prefix`, for a breadcrumb: `a/b/` → [["", "all"], ["a/", "a"], ["a/b/", "b"]]. */
export function crumbs(prefix) {
  const parts = prefix.split("/").filter(Boolean);
  const out = [["", "all files"]];
  let at = "";
  for (const p of parts) {
    at += `${p}/`;
    out.push([at, p]);
  }
  return out;
}

/** What a download row shows: its bar (percent, or null before the size is known), the bytes,
 * the line after the bar, and the state in words. */
export function downloadText(d) {
  const known = d.total != null;
  const pct = !known ? null : d.total === 0 ? 100 : (d.done * 100) / d.total;
  const note = d.files ? `${d.files.done}/${d.files.all} files${d.files.failed > 0 ? `, ${d.files.failed} failed` : ""}` : "";
  const bytes = known ? `${size(d.done)}/${size(d.total)}` : "";
  let state;
  switch (d.phase) {
    case "manifest":
      state = "asking for the file's manifest";
      break;
    case "opening":
      state = "opening the partial file";
      break;
    case "finishing":
      state = "checking the whole file's SHA-256";
      break;
    case "done":
      state = "verified and saved";
      break;
    case "cancelled":
      state = "cancelled; the partial file is kept";
      break;
    case "failed":
      state = "failed";
      break;
    default:
      state = "downloading";
  }
  const running = !["done", "failed", "cancelled"].includes(d.phase);
  const after = running && known ? line(d.rate, d.eta, d.peers, d.rejected, note) : note;
  return {
    pct,
    percent: pct == null ? "" : `${fixed(pct, 0)}%`,
    bytes,
    line: after,
    state,
    running,
  };
}

/**
 * Parses a `text/event-stream` as it arrives: `feed` takes the next piece of text and returns
 * the events it completed, `[{event, data}]` (comments and unknown fields are skipped).
 */
export class EventParser {
  constructor() {
    this.buf = "";
    this.cr = false;
  }

  feed(text) {
    // A CR that ends a piece may be the first half of a CRLF: decided with the next piece.
    let t = (this.cr ? "\r" : "") + text;
    this.cr = t.endsWith("\r");
    if (this.cr) t = t.slice(0, -1);
    this.buf += t.replace(/\r\n?/g, "\n");
    const events = [];
    let end;
    while ((end = this.buf.indexOf("\n\n")) >= 0) {
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      let event = "message";
      const data = [];
      for (const l of block.split("\n")) {
        if (l.startsWith(":")) continue;
        const colon = l.indexOf(":");
        const field = colon < 0 ? l : l.slice(0, colon);
        let value = colon < 0 ? "" : l.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length > 0) events.push({ event, data: data.join("\n") });
    }
    return events;
  }
}

/** The page's state before anything came. */
export function initialState() {
  return { view: null, files: [], filesTotal: 0, downloads: [], notes: [], changed: new Set() };
}

/**
 * The state after event `event` with JSON `data`: a new object, the parts that changed named
 * in `changed` (the page redraws those only). Unknown events and bad JSON change nothing.
 */
export function reduce(state, event, data) {
  let body;
  try {
    body = JSON.parse(data);
  } catch {
    return { ...state, changed: new Set() };
  }
  const next = { ...state, changed: new Set() };
  switch (event) {
    case "view":
      next.view = body;
      next.changed.add("view");
      break;
    case "files":
      next.files = Array.isArray(body.files) ? body.files : [];
      next.filesTotal = body.total ?? next.files.length;
      next.changed.add("files");
      break;
    case "downloads":
      next.downloads = Array.isArray(body.downloads) ? body.downloads : [];
      next.changed.add("downloads");
      break;
    case "notes":
      next.notes = Array.isArray(body.notes) ? body.notes : [];
      next.changed.add("notes");
      break;
    default:
      break;
  }
  return next;
}

/** The token in a page address's fragment (`#TOKEN`), or "". */
export function tokenOf(hash) {
  const t = String(hash ?? "").replace(/^#/, "");
  return /^[0-9a-f]{64}$/.test(t) ? t : "";
}
