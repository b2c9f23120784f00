// The page's pure half: `node --test cli/web/test/` (cargo runs it too: cli/tests/page.rs).
// The formatting cases are shared with the Rust tests (cases.json), so the page and the
// prompt print the same for the same figures.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  EventParser,
  byCodePoint,
  crumbs,
  downloadText,
  fixed,
  initialState,
  isUnder,
  line,
  mbps,
  namesCell,
  reduce,
  search,
  sharedBy,
  size,
  sizeCell,
  summarise,
  tokenOf,
} from "../view.mjs";

const cases = JSON.parse(readFileSync(new URL("./cases.json", import.meta.url), "utf8"));

test("sizes are written as the CLI writes them", () => {
  for (const [bytes, text] of cases.size) assert.equal(size(bytes), text, `${bytes}`);
});

test("average rates are written as the CLI writes them", () => {
  for (const [bytes, secs, text] of cases.mbps) assert.equal(mbps(bytes, secs), text);
});

test("the line after a bar is the prompt's", () => {
  for (const c of cases.line) assert.equal(line(c.rate, c.eta, c.peers, c.rejected, c.note), c.text, JSON.stringify(c));
});

test("rounding is Rust's: the exact value, ties to even", () => {
  assert.equal(fixed(1.25, 1), "1.2");
  assert.equal(fixed(1.35, 1), "1.4"); // 1.350000000000000088… is above the tie
  assert.equal(fixed(0.25, 1), "0.2");
  assert.equal(fixed(0.75, 1), "0.8");
  assert.equal(fixed(2.5, 0), "2");
  assert.equal(fixed(3.5, 0), "4");
  assert.equal(fixed(1023.95, 1), "1024.0");
  assert.equal(fixed(0, 1), "0.0");
  assert.equal(fixed(1e21, 1), "1000000000000000000000.0");
  assert.equal(fixed(5e-324, 1), "0.0");
  assert.equal(fixed(-1.25, 1), "-1.2");
});

test("folders are summarised one level at a time, as list does", () => {
  const { files, levels } = cases.list;
  for (const level of levels) {
    const s = summarise(files, level.prefix);
    const rows = [
      ...s.folders.map((f) => [f.name, size(f.bytes), f.peers, `${f.files} file${f.files === 1 ? "" : "s"}`]),
      ...s.files.map((m) => [namesCell(m.names), sizeCell(m.file), m.file.peers]),
    ];
    assert.deepEqual(rows, level.rows, `level ${JSON.stringify(level.prefix)}`);
  }
  assert.deepEqual(summarise(files, "nope/"), { folders: [], files: [] });
});

test("names compare by code point, as Rust's strings do", () => {
  assert.ok(byCodePoint("ｚ", "😀") < 0, "U+FF5A before U+1F600 (UTF-16 units say the reverse)");
  assert.ok(byCodePoint("a", "ab") < 0);
  assert.equal(byCodePoint("x", "x"), 0);
});

test("under a folder means below it, not beside it", () => {
  assert.ok(isUnder("photos/2024/a.jpg", "photos"));
  assert.ok(isUnder("photos/2024/a.jpg", "photos/2024/"));
  assert.ok(!isUnder("photos2/a.jpg", "photos"));
  assert.ok(!isUnder("photos/", "photos"));
  assert.ok(!isUnder("a", ""));
});

test("search finds names anywhere in the tree, any case", () => {
  const { files } = cases.list;
  const hits = search(files, "B.JPG");
  assert.equal(hits.length, 1);
  assert.deepEqual(hits[0].names, ["photos/2024/b.jpg"]);
  assert.equal(search(files, "  ").length, 0);
  assert.equal(search(files, "many").length, 1);
});

test("a peer's files are the names it holds", () => {
  const files = [
    { names: ["b", "a"], holders: ["p1", "p2"] },
    { names: ["c"], holders: ["p2"] },
    { names: ["d"] },
  ];
  assert.deepEqual(sharedBy(files, "p1"), ["a", "b"]);
  assert.deepEqual(sharedBy(files, "p2"), ["a", "b", "c"]);
  assert.deepEqual(sharedBy(files, "p3"), []);
});

test("breadcrumbs lead back to the top", () => {
  assert.deepEqual(crumbs(""), [["", "all files"]]);
  assert.deepEqual(crumbs("a/b/"), [["", "all files"], ["a/", "a"], ["a/b/", "b"]]);
});

test("a download before its size is known shows no bytes and no full bar", () => {
  const t = downloadText({ phase: "manifest", done: 0, total: null, peers: 0, rejected: 0, rate: null, eta: null });
  assert.equal(t.pct, null);
  assert.equal(t.bytes, "");
  assert.equal(t.percent, "");
  assert.equal(t.line, "");
  assert.equal(t.state, "asking for the file's manifest");
  assert.ok(t.running);
});

test("a running download shows the prompt's figures", () => {
  const t = downloadText({ phase: "running", done: 16 << 20, total: 64 << 20, peers: 2, rejected: 1, rate: 10485760, eta: 4.8 });
  assert.equal(t.pct, 25);
  assert.equal(t.percent, "25%");
  assert.equal(t.bytes, "16.0 MiB/64.0 MiB");
  assert.equal(t.line, "10.0 MiB/s  ETA 5 s  2 peers  1 rejected");
});

test("a folder's row counts its files, and peers are not zero while it has senders", () => {
  const t = downloadText({
    phase: "running",
    folder: true,
    done: 3 << 20,
    total: 4 << 20,
    peers: 1,
    rejected: 0,
    rate: null,
    eta: null,
    files: { done: 3, all: 4, failed: 0 },
  });
  assert.equal(t.line, "-/s  ETA -  1 peer  3/4 files");
  const ended = downloadText({ phase: "done", folder: true, done: 4, total: 4, peers: 0, rejected: 0, files: { done: 3, all: 4, failed: 1 } });
  assert.equal(ended.line, "3/4 files, 1 failed");
  assert.equal(ended.percent, "100%");
  assert.ok(!ended.running);
});

test("an empty file is complete", () => {
  assert.equal(downloadText({ phase: "finishing", done: 0, total: 0, peers: 0, rejected: 0 }).pct, 100);
});

test("the event stream parser takes events in any pieces", () => {
  const p = new EventParser();
  const stream = 'event: view\ndata: {"a":1}\n\n: keepalive\n\nevent: downloads\r\ndata: {"downloads":[]}\r\n\r\ndata: x\ndata: y\n\n';
  const got = [];
  for (let i = 0; i < stream.length; i += 3) got.push(...p.feed(stream.slice(i, i + 3)));
  assert.deepEqual(got, [
    { event: "view", data: '{"a":1}' },
    { event: "downloads", data: '{"downloads":[]}' },
    { event: "message", data: "x\ny" },
  ]);
});

test("events build the state and name what changed", () => {
  let s = initialState();
  s = reduce(s, "files", JSON.stringify({ files: [{ names: ["a"] }], total: 3 }));
  assert.deepEqual([...s.changed], ["files"]);
  assert.equal(s.files.length, 1);
  assert.equal(s.filesTotal, 3);
  s = reduce(s, "downloads", JSON.stringify({ downloads: [{ key: "k" }] }));
  assert.deepEqual([...s.changed], ["downloads"]);
  assert.equal(s.files.length, 1, "other parts stay");
  const before = s;
  s = reduce(s, "downloads", "{not json");
  assert.equal(s.downloads, before.downloads);
  assert.equal(s.changed.size, 0);
  s = reduce(s, "surprise", "{}");
  assert.equal(s.changed.size, 0);
  s = reduce(s, "notes", JSON.stringify({ notes: [{ id: 1, text: "<img src=x onerror=alert(1)>" }] }));
  assert.equal(s.notes[0].text, "<img src=x onerror=alert(1)>", "kept as text");
});

test("the token is 64 hex digits after #, or nothing", () => {
  const t = "ab".repeat(32);
  assert.equal(tokenOf(`#${t}`), t);
  assert.equal(tokenOf(t), t);
  assert.equal(tokenOf("#abc"), "");
  assert.equal(tokenOf(`#${t}<script>`), "");
  assert.equal(tokenOf(undefined), "");
});
