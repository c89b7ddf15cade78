// The dashboard in a real browser (Debian's Chromium driven by Playwright):
// the service (HARPOON_SERVICE_BIN, default target/debug/service) with two
// models on the OpenAI stand-in (tests/e2e/openai_peer.py), requests made
// as two tenants, then the page signed in with the admin key and with one
// tenant's key. Screenshots go to target/browser/; with DASHBOARD_DOCS_PNG
// set, a small one of the traffic panel is written there too (make
// dashboard-screenshot).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BINARY = process.env.HARPOON_SERVICE_BIN || path.join(ROOT, "target/debug/service");
const SHOTS = path.join(ROOT, "target/browser");
const PYTHON = existsSync(path.join(ROOT, ".venv/bin/python"))
  ? path.join(ROOT, ".venv/bin/python")
  : "python3";
// Without these Chromium waits on the network this machine does not have.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
// The colour the charts write data labels in (crates/service/src/dashboard/charts.rs).
const LABEL_FILL = "#112233";

const children = [];
let base, admin, tenants, browser, dataDir, profileDir;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function start(command, args, env) {
  const child = spawn(command, args, { env, stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  return child;
}

async function waitFor(url, child) {
  // Bounded: 300 tries, 100 ms apart.
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode})`);
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch (_) {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer in 30 s`);
}

async function api(key, method, route, body) {
  const r = await fetch(base + route, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text.startsWith("{") ? JSON.parse(text) : text };
}

async function chat(key, model, content) {
  const r = await api(key, "POST", "/v1/chat/completions", {
    model, messages: [{ role: "user", content }], max_tokens: 8,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

before(async () => {
  assert.ok(existsSync(BINARY), `${BINARY} is missing: cargo build -p service`);
  dataDir = mkdtempSync(path.join(tmpdir(), "harpoon-browser-"));
  profileDir = mkdtempSync(path.join(tmpdir(), "harpoon-chromium-"));
  mkdirSync(SHOTS, { recursive: true });
  const peerPort = await freePort();
  const peer = start(PYTHON, [path.join(ROOT, "tests/e2e/openai_peer.py"), "--port", String(peerPort)],
    { PATH: process.env.PATH });
  await waitFor(`http://127.0.0.1:${peerPort}/v1/models`, peer);
  admin = JSON.parse(execFileSync(BINARY, ["admin", "key", "generate"], {
    env: { PATH: process.env.PATH, HOME: dataDir, HARPOON__STORAGE__DATA_DIR: dataDir },
  })).key;
  const port = await freePort();
  const upstream = `http://127.0.0.1:${peerPort}/v1`;
  const service = start(BINARY, [], {
    PATH: process.env.PATH,
    HOME: dataDir,
    RUST_LOG: "warn",
    SERVICE_PORT: String(port),
    HARPOON__STORAGE__DATA_DIR: dataDir,
    HARPOON__AUTH__MODE: "required",
    HARPOON_ADMIN_KEY: admin,
    // Both tiers on the OpenAI stand-in, so `auto` splits small and large.
    HARPOON__MODELS__GEMMA__ENGINE: "openai",
    HARPOON__MODELS__GEMMA__REPO: "openai/gpt-4o-mini",
    HARPOON__MODELS__GEMMA__BASE_URL: upstream,
    HARPOON__MODELS__GEMMA__SERVED_MODEL: "gpt-4o-mini",
    HARPOON__MODELS__QWEN__ENGINE: "openai",
    HARPOON__MODELS__QWEN__REPO: "openai/gpt-4o",
    HARPOON__MODELS__QWEN__BASE_URL: upstream,
    HARPOON__MODELS__QWEN__SERVED_MODEL: "gpt-4o",
  });
  base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health`, service);

  tenants = {};
  for (const name of ["acme", "globex"]) {
    const t = await api(admin, "POST", "/v2/admin/tenants", { name });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const k = await api(admin, "POST", `/v2/admin/tenants/${t.body.id}/keys`, {});
    assert.equal(k.status, 201, JSON.stringify(k.body));
    tenants[name] = { id: t.body.id, key: k.body.key };
  }
  // acme: three easy prompts and a hard one through the router; globex: two
  // requests to the large model by name.
  const small = [];
  for (const prompt of ["hi there", "what is 2+2?", "say hello"]) {
    small.push((await chat(tenants.acme.key, "auto", prompt)).model);
  }
  const hard = await chat(tenants.acme.key, "auto",
    "Prove that the sum of the first n odd numbers is n squared, step by step, with a formal "
    + "induction argument, then write a Rust implementation with property tests.");
  assert.deepEqual(small, ["gemma", "gemma", "gemma"], "easy prompts go to the small tier");
  assert.equal(hard.model, "qwen", "the hard prompt goes to the large tier");
  await chat(tenants.globex.key, "qwen", "hello");
  await chat(tenants.globex.key, "qwen", "hello again");
  // The ledger's writer commits every 100 ms.
  await new Promise((r) => setTimeout(r, 400));

  // A persistent context on a fresh profile: Playwright passes it as --user-data-dir.
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 30000,
  });
});

after(async () => {
  await browser?.close();
  for (const child of children.reverse()) {
    if (child.exitCode === null) child.kill("SIGTERM");
  }
  await Promise.all(children.map((c) => (c.exitCode !== null ? null
    : new Promise((r) => c.once("exit", r)))));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/** Signs in on a fresh page and waits for the panels of the 1h window. */
async function signIn(key) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(`${base}/dashboard`);
  await page.fill("#key", key);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector('figure[data-chart="requests-by-model"] svg');
  await page.selectOption("#window", "1h");
  await page.waitForSelector('body[data-loaded="1h"]');
  return { page, problems };
}

/** A chart's data labels (text in the label colour) as numbers. */
async function labels(page, chart) {
  return page.$$eval(`figure[data-chart="${chart}"] svg text`, (nodes, fill) =>
    nodes.filter((n) => n.getAttribute("fill") === fill).map((n) => Number(n.textContent.trim())),
  LABEL_FILL);
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

test("an admin key sees every tenant's requests drawn", async () => {
  const { page, problems } = await signIn(admin);
  const total = await page.getAttribute('figure[data-chart="requests-by-model"]', "data-total");
  assert.equal(total, "6");
  assert.equal(sum(await labels(page, "requests-by-model")), 6, "bar labels add up to the requests made");
  assert.equal(sum(await labels(page, "requests-by-tenant")), 6);
  // The routing split: 3 small (acme's easy prompts), 3 large (acme's hard one, globex's two).
  const split = await page.$$eval('figure[data-chart="routing-split"] svg text', (nodes) =>
    nodes.map((n) => n.textContent.trim()));
  assert.ok(split.includes("small") && split.includes("large"), split.join("|"));
  assert.deepEqual((await labels(page, "routing-split")).sort(), [3, 3]);
  const tenantsChart = await page.textContent('figure[data-chart="requests-by-tenant"]');
  assert.match(tenantsChart, /acme/);
  assert.match(tenantsChart, /globex/);
  // Latency per model: a row for each, with first-token times recorded.
  for (const model of ["gemma", "qwen"]) {
    const cells = await page.$$eval(`#latency tr[data-model="${model}"] td`, (tds) => tds.map((t) => t.textContent));
    assert.equal(cells.length, 7, model);
    assert.ok(Number(cells[4]) > 0, `${model}: TTFT p50 ${cells[4]}`);
  }
  assert.equal(await page.textContent('#latency tr[data-model="gemma"] td:nth-child(2)'), "3");
  assert.match(await page.textContent("#deployments"), /qwen\s*openai\s*large\s*available\s*remote/);
  // The admin sees each deployment live: qwen's one, with the three requests it served.
  const qwenRow = await page.$$eval('#deployment-list tr', (rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((t) => t.textContent)).find((c) => c[0] === "qwen/openai"));
  assert.ok(qwenRow, "qwen's deployment is listed");
  assert.deepEqual([qwenRow[1], qwenRow[3], qwenRow[7]], ["primary", "none", "3"]);
  await page.screenshot({ path: path.join(SHOTS, "dashboard-admin.png"), fullPage: true });
  if (process.env.DASHBOARD_DOCS_PNG) {
    const traffic = await page.$("#traffic");
    await traffic.screenshot({ path: process.env.DASHBOARD_DOCS_PNG, scale: "css" });
  }
  // An admin may narrow the view to one tenant.
  await page.fill("#tenant", "globex");
  await page.dispatchEvent("#tenant", "change");
  await page.waitForFunction(() => /tenant globex/.test(document.querySelector("#traffic h2")?.textContent));
  assert.equal(await page.getAttribute('figure[data-chart="requests-by-model"]', "data-total"), "2");
  assert.doesNotMatch(await page.textContent("#panels"), /acme/);
  assert.deepEqual(problems, []);
  await page.close();
});

test("a tenant key sees its own tenant only, on the page and through its endpoints", async () => {
  const { page, problems } = await signIn(tenants.acme.key);
  assert.equal(await page.getAttribute('figure[data-chart="requests-by-model"]', "data-total"), "4");
  assert.equal(sum(await labels(page, "requests-by-model")), 4);
  const html = await page.content();
  assert.doesNotMatch(html, /globex/, "the other tenant's name is nowhere on the page");
  assert.match(await page.textContent("#traffic h2"), /tenant acme/);
  assert.equal(await page.$("#deployment-list"), null, "deployments are the operator's view");
  await page.screenshot({ path: path.join(SHOTS, "dashboard-tenant.png"), fullPage: true });
  // Asking the page for the other tenant shows nothing but the refusal.
  await page.fill("#tenant", "globex");
  await page.dispatchEvent("#tenant", "change");
  await page.waitForFunction(() => /not found/.test(document.querySelector("#status").textContent));
  assert.equal(await page.$$eval("#panels > *", (n) => n.length), 0);
  assert.doesNotMatch(await page.content(), /data-total/);

  // The endpoints the page calls, asked for the other tenant with acme's key.
  const globex = tenants.globex;
  for (const route of [`/dashboard/panels?tenant=${globex.id}`, "/dashboard/panels?tenant=globex",
    `/v2/dashboard?tenant=${globex.id}`]) {
    const r = await api(tenants.acme.key, "GET", route);
    assert.equal(r.status, 404, `${route}: ${JSON.stringify(r.body)}`);
  }
  const own = await api(tenants.acme.key, "GET", "/v2/dashboard?window=1h");
  assert.equal(own.status, 200);
  assert.deepEqual([...new Set(own.body.buckets.map((b) => b.tenant))], ["acme"]);
  assert.equal(sum(own.body.buckets.map((b) => b.requests)), 4);
  assert.deepEqual(problems.filter((p) => !/status of 404/.test(p)), [], "only the refusal asked for");
  await page.close();
});

test("a wrong key is refused on the sign-in form", async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/dashboard`);
  await page.fill("#key", "hk_" + "x".repeat(40));
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent.length > 0);
  assert.equal(await page.isVisible("#panels"), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the refused key is forgotten");
  await page.close();
});

test("the router box shows the tier, the complexity and the signals as bars", async () => {
  const { page, problems } = await signIn(tenants.globex.key);
  await page.fill("#prompt", "Prove that there are infinitely many primes, step by step.");
  await page.click("#router-form button[type=submit]");
  await page.waitForSelector('figure[data-chart="signals"] svg');
  const tier = await page.getAttribute("[data-tier]", "data-tier");
  const direct = await api(tenants.globex.key, "POST", "/classify",
    { text: "Prove that there are infinitely many primes, step by step.", explain: true });
  assert.equal(tier, direct.body.tier, "the box shows the router's own decision");
  const bars = await labels(page, "signals");
  assert.equal(bars.length, direct.body.signals.length, "one bar per signal");
  assert.ok(bars.length > 0);
  bars.forEach((b, i) => assert.ok(Math.abs(b - direct.body.signals[i].weight) <= 0.006,
    `bar ${i}: ${b} for weight ${direct.body.signals[i].weight}`));
  await page.screenshot({ path: path.join(SHOTS, "dashboard-router.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});
