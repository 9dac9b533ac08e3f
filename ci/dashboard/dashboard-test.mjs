// Drives deskline's admin dashboard (GET /) in the system's headless Chromium through
// playwright-core. Run by ci/dashboard/run.sh, which starts the server and sets:
//   ADMIN_URL  http://127.0.0.1:PORT      TOKEN  the admin token (DATA_DIR/admin.token)
//   SIP_UDP    127.0.0.1:PORT             SIP_DOMAIN  the server's domain
//   SCREENSHOT where the full-page PNG goes (docs/dashboard.png)
//   WORK       a scratch dir (browser profile, failure screenshot)
//   CHROMIUM   the browser (default /usr/bin/chromium)
// Steps: users + devices through the API; the page opened and given the token; the SSE stream
// live; phones register over UDP (ci/dashboard/phone.py) and their rows appear without a reload;
// the screenshot; "Deactivate" clicked for one user (its confirm() accepted) -> its row leaves the
// registrations table, the user shows "suspended", the other phone stays; the API agrees and a
// new REGISTER of the suspended user's phone gets 403. Any failed expectation exits 1.

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";

const HERE = dirname(fileURLToPath(import.meta.url));
const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined || v === "") fail(`environment variable ${k} is not set (run ci/dashboard/run.sh)`);
  return v;
};

const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const info = (m) => console.log(`  ${stamp()}  ${m}`);
const step = (m) => console.log(`\n  ${stamp()}  == ${m}`);

let browser = null;
let page = null;
const children = [];

class Expectation extends Error {}
function fail(msg) {
  throw new Expectation(msg);
}
function expect(cond, msg) {
  if (!cond) fail(msg);
}

const ADMIN_URL = env("ADMIN_URL").replace(/\/$/, "");
const TOKEN = env("TOKEN");
const SIP_UDP = env("SIP_UDP");
const DOMAIN = env("SIP_DOMAIN");
const SCREENSHOT = env("SCREENSHOT");
const WORK = env("WORK");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const T = 15000; // default wait for anything the page should show

// Two users, each with one desk phone whose SIP credentials we choose.
const ALICE = { username: "alice", display_name: "Alice Lindqvist", extension: "2101", mac: "0004f2d00101",
  vendor: "Polycom", model: "VVX 450", sip_username: "dev-0004f2d00101", sip_password: "S1p-Alice-Desk!" };
const BOB = { username: "bob", display_name: "Bob Okafor", extension: "2102", mac: "0004f2d00102",
  vendor: "Yealink", model: "T54W", sip_username: "dev-0004f2d00102", sip_password: "S1p-Bob-Desk!" };
const CAROL = { username: "carol", display_name: "Carol Mendes", extension: "2103", mac: "805ec0d00103",
  vendor: "Yealink", model: "T46U", sip_username: "dev-805ec0d00103", sip_password: "S1p-Carol-Desk!" };

async function api(method, path, body, want) {
  const resp = await fetch(ADMIN_URL + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await resp.text();
  if (want !== undefined && resp.status !== want) fail(`${method} ${path} -> HTTP ${resp.status} (expected ${want}): ${text}`);
  return text ? JSON.parse(text) : null;
}

// Starts phone.py; resolves with its "final" line once it has an answer to its REGISTER.
function phone(p, extra = []) {
  const args = [join(HERE, "phone.py"), SIP_UDP, DOMAIN, p.extension, p.sip_username, p.sip_password, ...extra];
  const want = extra.includes("--expect") ? Number(extra[extra.indexOf("--expect") + 1]) : 200;
  const child = spawn("python3", args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines = [];
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Expectation(`phone ${p.extension}: no answer to REGISTER within 20 s`)), 20000);
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      let ev;
      try { ev = JSON.parse(line); } catch { ev = { event: "text", line }; }
      lines.push(ev);
      if (ev.event === "request") info(`phone ${p.extension} got ${ev.method}${ev.event_header ? " (Event: " + ev.event_header + ")" : ""}, answered 200`);
      if (ev.event === "final") {
        clearTimeout(timer);
        if (ev.code === want) resolve({ ...ev, child, lines });
        else reject(new Expectation(`phone ${p.extension} (SIP user ${p.sip_username}): REGISTER -> ${ev.code} ${ev.reason}, expected ${want}`));
      }
      if (ev.event === "error") { clearTimeout(timer); reject(new Expectation(`phone ${p.extension}: ${ev.message}`)); }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (!lines.some((l) => l.event === "final" || l.event === "error")) {
        reject(new Expectation(`phone ${p.extension} (python3 phone.py) exited ${code} without an answer: ${stderr.trim()}`));
      }
    });
  });
}

const regRow = (p) => page.locator("#registrations tbody tr", { hasText: `sip:${p.extension}@` });
const userRow = (p) => page.locator("#users tbody tr").filter({ has: page.locator("td:first-child", { hasText: new RegExp(`^${p.username}$`) }) });

async function userStatus(p) {
  return (await userRow(p).locator("td:nth-child(3)").textContent({ timeout: T })).trim();
}

async function waitFor(what, fn, timeout = T) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last === true) return;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) fail(`${what} (waited ${timeout / 1000} s; last seen: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stat(label) {
  const text = await page.locator("#stats div", { hasText: label }).first().locator("b").textContent({ timeout: 2000 });
  return Number(text);
}

async function main() {
  step(`API: users and devices (${ADMIN_URL})`);
  for (const p of [ALICE, BOB, CAROL]) {
    await api("POST", "/api/v1/users", { username: p.username, display_name: p.display_name, password: `Login-${p.username}-Pw!`, extension: p.extension }, 201);
    await api("POST", "/api/v1/devices", { mac: p.mac, user: p.username, extension: p.extension, vendor: p.vendor, model: p.model,
      sip_username: p.sip_username, sip_password: p.sip_password }, 201);
    info(`user ${p.username} (ext ${p.extension}) with device ${p.mac}, SIP user ${p.sip_username}`);
  }

  step(`Chromium: ${CHROMIUM}`);
  const profile = mkdtempSync(join(WORK, "chromium-profile-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
  });
  info(`browser ${browser.browser()?.version() ?? "(persistent context)"}`);
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(T);
  const pageErrors = [];
  page.on("pageerror", (e) => { pageErrors.push(e.message); info(`PAGE ERROR: ${e.message}`); });
  page.on("console", (m) => {
    // A failed load is logged with its URL by the response handler below.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) info(`console error: ${m.text()}`);
  });
  page.on("response", (r) => { if (r.status() >= 400) info(`(page request ${r.request().method()} ${r.url()} -> ${r.status()})`); });
  let navigations = 0;
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations++; });

  step(`open ${ADMIN_URL}/`);
  const resp = await page.goto(ADMIN_URL + "/", { waitUntil: "load" });
  expect(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
  expect((await page.title()).includes("deskline"), `unexpected page title ${JSON.stringify(await page.title())}`);
  for (const id of ["#token", "#token-save", "#registrations", "#devices", "#users", "#events", "#stats"]) {
    expect(await page.locator(id).count() === 1, `the page has no ${id}`);
  }
  info("page loaded, every stable id present");

  step("enter the admin token");
  await page.fill("#token", TOKEN);
  await page.click("#token-save");
  await waitFor("#whoami names the admin role after 'Use token'", async () => /\(admin\)/.test(await page.textContent("#whoami")) || (await page.textContent("#whoami")) + " / " + (await page.textContent("#message")));
  await waitFor("the event stream indicator says 'stream: live'", async () => (await page.textContent("#live")).trim() === "stream: live" || (await page.textContent("#live")).trim());
  const stored = await page.evaluate(() => sessionStorage.getItem("deskline-token"));
  expect(stored === TOKEN, "the token is not in sessionStorage after 'Use token'");
  info(`whoami: ${(await page.textContent("#whoami")).trim()}; ${(await page.textContent("#live")).trim()}; token in sessionStorage`);
  for (const p of [ALICE, BOB, CAROL]) {
    await userRow(p).waitFor();
    expect((await userStatus(p)) === "active", `user ${p.username} is not shown active at the start`);
    await page.locator("#devices tbody tr", { hasText: p.mac }).waitFor();
  }
  expect(await page.locator("#registrations tbody tr").count() === 0, "registrations table not empty before any phone registered");
  info("users table: alice, bob, carol active; devices table: 3 devices; registrations: none");

  // A marker that a reload would wipe.
  await page.evaluate(() => { window.__desklineNoReload = 42; });
  const navsBefore = navigations;

  step("phones register over UDP; rows must appear live (SSE), without a reload");
  const phones = {};
  for (const p of [ALICE, BOB]) {
    const r = await phone(p);
    phones[p.username] = r;
    info(`phone ${p.extension}: REGISTER -> ${r.code} ${r.reason} (digest ${r.algorithm}), contact ${r.contact}`);
    await regRow(p).waitFor({ timeout: 10000 }).catch(() => fail(`no row for ${r.contact} in #registrations within 10 s of the phone's 200 OK`));
    const text = (await regRow(p).innerText()).replace(/\s+/g, " ");
    expect(text.includes(r.contact), `the registrations row of ${p.extension} does not show the contact ${r.contact}: ${text}`);
    expect(text.includes(p.mac), `the registrations row of ${p.extension} does not show the device ${p.mac}: ${text}`);
    expect(text.includes(p.username), `the registrations row of ${p.extension} does not show the user ${p.username}: ${text}`);
    info(`row: ${text}`);
  }
  expect(await page.evaluate(() => window.__desklineNoReload) === 42, "the page was reloaded (marker lost)");
  expect(navigations === navsBefore, `the page navigated ${navigations - navsBefore} times while phones registered`);
  const regEvents = await page.locator("#events li").filter({ hasText: /\bregistered\b/ }).count();
  expect(regEvents >= 2, `#events lists ${regEvents} 'registered' events from the stream (expected >= 2)`);
  await waitFor("the registrations count shows (2)", async () => (await page.textContent("#registrations-count")).trim() === "(2)" || (await page.textContent("#registrations-count")));
  await waitFor("the devices table shows the two phones registered", async () => {
    for (const p of [ALICE, BOB]) {
      const cells = await page.locator("#devices tbody tr", { hasText: p.mac }).locator("td").allTextContents();
      if (cells[6] !== "yes") return `${p.mac}: ${cells.join(" | ")}`;
    }
    return true;
  });
  await waitFor("the overview shows 2 registered devices", async () => (await stat("Devices registered")) === 2 || await stat("Devices registered"));
  info(`no reload; ${regEvents} 'registered' events in #events; registrations (2); devices table and overview agree`);

  step(`screenshot -> ${SCREENSHOT}`);
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.mouse.move(1, 1); // no hover outline on "Use token"
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  info("full-page screenshot written");

  step("click Deactivate for alice (confirm() accepted)");
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(`${d.type()}: ${d.message()}`); await d.accept(); });
  const button = page.locator(`#users button[data-action="deactivate"][data-user="${ALICE.username}"]`);
  expect(await button.count() === 1, "no Deactivate button (data-action=deactivate, data-user=alice) in #users");
  expect(await button.isEnabled(), "alice's Deactivate button is disabled for an admin");
  await button.click();
  await waitFor("a confirm() dialog", async () => dialogs.length > 0 || "none yet", 5000);
  info(`dialog: ${dialogs.join("; ")}`);
  expect(dialogs[0].startsWith("confirm:") && dialogs[0].includes(ALICE.username), `unexpected dialog: ${dialogs[0]}`);
  await waitFor("#message reports the deactivation", async () => /deactivate alice: 1 bindings removed/.test(await page.textContent("#message")) || await page.textContent("#message"));
  info(`message: ${(await page.textContent("#message")).trim()}`);
  await regRow(ALICE).waitFor({ state: "detached", timeout: 10000 }).catch(() => fail(`alice's row (sip:${ALICE.extension}@...) is still in #registrations 10 s after Deactivate`));
  await waitFor("alice shows 'suspended' in #users", async () => (await userStatus(ALICE)) === "suspended" || await userStatus(ALICE));
  expect(await regRow(BOB).count() === 1, "bob's registration disappeared too");
  expect((await userStatus(BOB)) === "active", "bob is no longer active");
  const aliceButtons = userRow(ALICE);
  expect(await aliceButtons.locator('button[data-action="deactivate"]').isDisabled(), "alice's Deactivate button is still enabled");
  expect(await aliceButtons.locator('button[data-action="reactivate"]').isEnabled(), "alice's Reactivate button is not enabled");
  await waitFor("the overview shows 1 suspended user", async () => (await stat("Users suspended")) === 1 || await stat("Users suspended"));
  await waitFor("the registrations count shows (1)", async () => (await page.textContent("#registrations-count")).trim() === "(1)" || (await page.textContent("#registrations-count")));
  expect(await page.evaluate(() => window.__desklineNoReload) === 42, "the page was reloaded (marker lost)");
  info("alice's row gone, alice suspended (Reactivate enabled), bob still registered and active, no reload");

  step("the API and the registrar agree");
  const aliceRegs = await api("GET", `/api/v1/registrations?user=${ALICE.username}`, undefined, 200);
  expect(Array.isArray(aliceRegs) && aliceRegs.length === 0, `the API still lists alice's bindings: ${JSON.stringify(aliceRegs)}`);
  const aliceView = await api("GET", `/api/v1/users/${ALICE.username}`, undefined, 200);
  expect(aliceView.status === "suspended", `the API says alice is ${aliceView.status}`);
  const again = await phone(ALICE, ["--expect", "403"]);
  expect(/suspended/i.test(again.reason), `alice's new REGISTER got 403 "${again.reason}", expected 403 Account Suspended`);
  info(`alice: no binding, status suspended; her phone's new REGISTER -> ${again.code} ${again.reason}`);
  expect(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join("; ")}`);
}

let code = 0;
const watchdog = setTimeout(() => {
  console.error("\nFAIL: the dashboard test did not finish within 240 s");
  process.exit(1);
}, 240000);
try {
  await main();
  console.log(`\n  ${stamp()}  dashboard: PASS`);
} catch (e) {
  code = 1;
  console.error(`\nFAIL: ${e instanceof Expectation ? e.message : e.stack || e}`);
  if (page) {
    const shot = join(WORK, "failure.png");
    await page.screenshot({ path: shot, fullPage: true }).then(() => console.error(`  (page at the failure: ${shot})`)).catch(() => {});
    const body = await page.locator("body").innerText({ timeout: 2000 }).catch(() => "");
    if (body) console.error("--- page text at the failure ---\n" + body.slice(0, 4000));
  }
} finally {
  for (const c of children) c.kill("SIGTERM");
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(code);
