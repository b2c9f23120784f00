// A headless Chromium for cli/tests/web.rs, driven one JSON command a line on stdin, one JSON
// answer a line on stdout: {"ok": true, "value": …} or {"ok": false, "error": "…"}.
//
// Commands: {"op": "open", "url"}; {"op": "eval", "js"} (an expression's value, awaited);
// {"op": "wait", "js", "ms"} (until the expression is truthy); {"op": "click", "selector"};
// {"op": "screenshot", "path"}; {"op": "dialogs"} (how many alert/confirm/prompt dialogs opened:
// a name that ran as a script would open one); {"op": "errors"} (the page's uncaught errors);
// {"op": "elsewhere", "url", "js"} (another tab: the status it got, the value of `js` there);
// {"op": "quit"}.
//
// The browser is Debian's (CHROMIUM, default /usr/bin/chromium), never a downloaded build; it
// runs with a fresh profile (PROFILE) and with every background service off, so it talks only to
// the address it is given (the test runs it inside the downloader's network namespace).

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = process.env.PROFILE;
if (!profile) {
  console.log(JSON.stringify({ ok: false, error: "PROFILE (a fresh user data dir) is not set" }));
  process.exit(2);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 420, height: 900 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
    // The one name the test uses to play a DNS-rebinding page: it resolves to our loopback,
    // and nothing else resolves at all.
    "--host-resolver-rules=MAP p2pshare-rebind.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
let dialogs = 0;
page.on("dialog", async (d) => {
  dialogs += 1;
  await d.dismiss().catch(() => {});
});
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

async function run(cmd) {
  switch (cmd.op) {
    case "open":
      await page.goto(cmd.url, { waitUntil: "load" });
      return null;
    case "eval":
      return await page.evaluate(cmd.js);
    case "wait": {
      // Polled from here: the page's CSP forbids the eval that waitForFunction would use.
      const deadline = Date.now() + (cmd.ms ?? 10000);
      for (;;) {
        const v = await page.evaluate(cmd.js);
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${cmd.js}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    case "click":
      await page.click(cmd.selector, { timeout: cmd.ms ?? 10000 });
      return null;
    case "screenshot":
      await page.screenshot({ path: cmd.path, fullPage: true });
      return cmd.path;
    case "dialogs":
      return dialogs;
    case "elsewhere": {
      // Another tab at `url` (another origin, or a foreign Host): the status it got, and the
      // value of `js` evaluated there.
      const other = await context.newPage();
      try {
        const res = await other.goto(cmd.url, { waitUntil: "load" });
        const value = cmd.js ? await other.evaluate(cmd.js) : null;
        return { status: res ? res.status() : null, value };
      } finally {
        await other.close();
      }
    }
    case "errors":
      return errors;
    case "quit":
      await context.close();
      process.exit(0);
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

console.log(JSON.stringify({ ok: true, value: "ready" }));
const lines = createInterface({ input: process.stdin });
for await (const l of lines) {
  let answer;
  try {
    answer = { ok: true, value: (await run(JSON.parse(l))) ?? null };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  console.log(JSON.stringify(answer));
}
await context.close();
