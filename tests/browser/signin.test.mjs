// Sign-in for people in a real browser (Debian's Chromium driven by
// Playwright): the service (HARPOON_SERVICE_BIN, default target/debug/service)
// with GitHub sign-in against the stand-in (github_standin.mjs) and OpenID
// Connect against the npm package oidc-provider (oidc_provider.mjs), both on
// loopback. Each refusal the sign-in makes has its own test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startGithubStandin } from "./github_standin.mjs";
import { startOidcProvider } from "./oidc_provider.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BINARY = process.env.HARPOON_SERVICE_BIN || path.join(ROOT, "target/debug/service");
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const GITHUB_APP = { id: "Iv1.harpoontest", secret: "github-test-secret-" + process.pid };
const OIDC_CLIENT = { id: "harpoon", secret: "oidc-test-secret-" + process.pid };
// GitHub people: bob is in acme; alice is in acme's platform team (admin);
// mallory's only organisation is mapped to nothing.
const GITHUB_USERS = {
  bob: { id: 1, orgs: ["acme"], teams: [] },
  alice: { id: 2, orgs: ["acme"], teams: ["acme/platform"] },
  mallory: { id: 3, orgs: ["initech"], teams: ["initech/ops"] },
  erin: { id: 4, orgs: [], teams: [] },
};

let base, admin, github, oidc, service, browser, dataDir, attacker;

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

async function waitFor(url, child) {
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

async function api(method, route, { key, cookie, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (cookie) h.Cookie = cookie;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const r = await fetch(base + route, {
    method, headers: h, redirect: "manual", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: /^[[{]/.test(text) ? JSON.parse(text) : text };
}

before(async () => {
  assert.ok(existsSync(BINARY), `${BINARY} is missing: cargo build -p service`);
  dataDir = mkdtempSync(path.join(tmpdir(), "harpoon-signin-"));
  const [port, githubPort, oidcPort] = [await freePort(), await freePort(), await freePort()];
  base = `http://127.0.0.1:${port}`;
  github = await startGithubStandin({
    port: githubPort, clientId: GITHUB_APP.id, clientSecret: GITHUB_APP.secret, users: GITHUB_USERS,
  });
  oidc = await startOidcProvider({
    port: oidcPort,
    client: { ...OIDC_CLIENT, redirectUri: `${base}/auth/oidc/corp/callback` },
    people: { carol: ["harpoon-globex", "staff"], dave: ["contractors"] },
  });
  const config = path.join(dataDir, "config.yaml");
  writeFileSync(config, `
auth:
  mode: required
  github:
    web_url: ${github.url}
    api_url: ${github.url}
    org_tenants:
      acme: {tenant: acme, role: member}
      acme/platform: {tenant: acme, role: admin}
  oidc:
    corp:
      issuer_url: ${oidc.issuer}
      client_id: ${OIDC_CLIENT.id}
      client_secret: ${OIDC_CLIENT.secret}
      display_name: Corp SSO
      scopes: [groups]
      claim: groups
      claim_tenants:
        harpoon-globex: {tenant: globex, role: member}
`);
  const env = { PATH: process.env.PATH, HOME: dataDir, HARPOON__STORAGE__DATA_DIR: dataDir };
  admin = JSON.parse(execFileSync(BINARY, ["admin", "key", "generate"], { env })).key;
  service = spawn(BINARY, [], {
    env: {
      ...env,
      RUST_LOG: "warn",
      HARPOON_CONFIG: config,
      SERVICE_PORT: String(port),
      HARPOON_ADMIN_KEY: admin,
      // The documented environment names of the GitHub app.
      GITHUB_CLIENT_ID: GITHUB_APP.id,
      GITHUB_CLIENT_SECRET: GITHUB_APP.secret,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitFor(`${base}/health`, service);
  for (const name of ["acme", "globex"]) {
    const t = await api("POST", "/v2/admin/tenants", { key: admin, body: { name } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
  }
  // A page on another origin of this host (same site: cookies travel with its requests).
  const attackerPort = await freePort();
  attacker = createHttpServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><form id="f" method="POST" action="${base}/v2/admin/tenants/globex/suspend"></form>
      <script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((resolve) => attacker.listen(attackerPort, "127.0.0.1", resolve));
  attacker.url = `http://127.0.0.1:${attackerPort}/`;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 30000 });
});

after(async () => {
  await browser?.close();
  if (service && service.exitCode === null) {
    service.kill("SIGTERM");
    await new Promise((r) => service.once("exit", r));
  }
  await github?.close();
  await oidc?.close();
  attacker?.closeAllConnections();
  await new Promise((r) => (attacker ? attacker.close(r) : r()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A fresh browser context (its own cookies) and page on the dashboard. */
async function dashboard() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/dashboard`);
  return { context, page };
}

/** Signs in with GitHub as `user` from the dashboard's button; resolves on the page it lands on. */
async function githubSignIn(user) {
  github.user = user;
  const { context, page } = await dashboard();
  const seen = { callback: null, attemptCookie: null };
  page.on("request", (r) => {
    if (r.url().startsWith(`${base}/auth/github/callback`)) seen.callback = r.url();
  });
  page.on("response", async (r) => {
    if (r.url().startsWith(`${base}/auth/github/login`)) {
      const set = await r.headerValue("set-cookie");
      seen.attemptCookie = set && set.match(/^harpoon_signin=([^;]*)/)?.[1];
    }
  });
  await page.click('#providers a:has-text("GitHub")');
  // The dashboard when signed in, or the callback's refusal page.
  await page.waitForURL((url) => url.pathname === "/dashboard" || url.pathname === "/auth/github/callback");
  await page.waitForLoadState();
  return { context, page, seen };
}

async function sessionCookie(context) {
  return (await context.cookies(base)).find((c) => c.name === "harpoon_session");
}

test("GitHub: a member of a mapped organisation lands on the dashboard as its tenant; sign-out ends the session", async () => {
  const { context, page } = await githubSignIn("bob");
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  await page.waitForFunction(() => /github:bob · acme \(member\)/.test(document.querySelector("#who").textContent));
  await page.waitForFunction(() => /tenant acme/.test(document.querySelector("#traffic h2")?.textContent));
  assert.doesNotMatch(await page.content(), /globex/, "a member sees their own tenant only");
  const cookie = await sessionCookie(context);
  assert.ok(cookie, "the session cookie is set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.secure, false, "a loopback bind serves plain http");
  assert.ok(cookie.expires > Date.now() / 1000 + 11 * 3600, "expires with auth.session_hours (12)");
  const jar = `harpoon_session=${cookie.value}`;
  // The cookie opens the dashboard's and admin API's routes, not the programs' ones.
  const report = await api("GET", "/v2/dashboard?window=1h", { cookie: jar });
  assert.equal(report.status, 200, JSON.stringify(report.body));
  const models = await api("GET", "/v1/models", { cookie: jar });
  assert.equal(models.status, 401);
  assert.equal(models.body.error.code, "api_key_required");
  const adminRoute = await api("GET", "/v2/admin/tenants", { cookie: jar });
  assert.equal(adminRoute.status, 403, "a member is not an admin");
  // The token GitHub gave was used for /user, /user/orgs and /user/teams, once each.
  assert.equal(github.apiCalls % 3, 0);

  await page.click("#signout");
  await page.waitForSelector("#signin:not([hidden])");
  assert.equal(await sessionCookie(context), undefined, "the cookie is deleted");
  const after = await api("GET", "/v2/dashboard?window=1h", { cookie: jar });
  assert.equal(after.status, 401, "the old cookie no longer works");
  assert.equal(after.body.error.code, "invalid_session");
  await context.close();
});

test("OpenID Connect: a person whose groups claim is mapped lands on the dashboard as its tenant; sign-out ends it", async () => {
  const { context, page } = await dashboard();
  await page.click('#providers a:has-text("Corp SSO")');
  // oidc-provider's own login and consent pages.
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', "carol");
  await page.fill('input[name="password"]', "any");
  await page.click('button[type="submit"]');
  await page.waitForURL((url) => url.pathname === "/dashboard" || /consent|interaction/.test(url.pathname));
  if (new URL(page.url()).pathname !== "/dashboard") {
    await page.click('button[type="submit"]');
    await page.waitForURL((url) => url.pathname === "/dashboard");
  }
  await page.waitForFunction(() => /corp:carol · globex \(member\)/.test(document.querySelector("#who").textContent));
  await page.waitForFunction(() => /tenant globex/.test(document.querySelector("#traffic h2")?.textContent));
  const cookie = await sessionCookie(context);
  const jar = `harpoon_session=${cookie.value}`;
  const session = await api("GET", "/auth/session", { cookie: jar });
  assert.equal(session.body.session.subject, "corp:carol");
  assert.equal(session.body.session.tenant, "globex");
  await page.click("#signout");
  await page.waitForSelector("#signin:not([hidden])");
  const after = await api("GET", "/v2/dashboard", { cookie: jar });
  assert.equal(after.status, 401);
  await context.close();
});

test("a person of an unmapped organisation is refused with a page saying why", async () => {
  const { context, page } = await githubSignIn("mallory");
  assert.equal(new URL(page.url()).pathname, "/auth/github/callback");
  assert.equal(await page.getAttribute("#reason", "data-outcome"), "not_mapped");
  const reason = await page.textContent("#reason");
  assert.match(reason, /github:mallory/);
  assert.match(reason, /initech/);
  assert.match(reason, /auth\.github\.org_tenants/);
  assert.equal(await sessionCookie(context), undefined, "no session is opened");
  await context.close();
});

test("GitHub: a person a tenant's admin invited by login is let in without an organisation rule", async () => {
  let { context, page } = await githubSignIn("erin");
  assert.equal(await page.getAttribute("#reason", "data-outcome"), "not_mapped", "not before the invitation");
  assert.match(await page.textContent("#reason"), /none were given/);
  await context.close();
  const invited = await api("POST", "/v2/admin/tenants/globex/invitations",
    { key: admin, body: { github_login: "Erin" } });
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  assert.deepEqual([invited.body.github_login, invited.body.role], ["erin", "member"]);
  ({ context, page } = await githubSignIn("erin"));
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  await page.waitForFunction(() => /github:erin · globex \(member\)/.test(document.querySelector("#who").textContent));
  await context.close();
  const withdrawn = await api("DELETE", "/v2/admin/tenants/globex/invitations/erin", { key: admin });
  assert.equal(withdrawn.status, 204);
});

test("a forged state is refused: a callback begun in another browser does not sign this one in", async () => {
  // The attacker begins a sign-in of their own (alice, an admin) and stops
  // at the callback URL, which they hand to the victim's browser.
  github.user = "alice";
  const login = await fetch(`${base}/auth/github/login`, { redirect: "manual" });
  assert.equal(login.status, 303);
  const authorize = await fetch(login.headers.get("location"), { redirect: "manual" });
  const callback = authorize.headers.get("location");
  assert.match(callback, /\/auth\/github\/callback\?code=.*&state=/);
  const { context, page } = await dashboard();
  const response = await page.goto(callback);
  assert.equal(response.status(), 400);
  assert.equal(await page.getAttribute("#reason", "data-outcome"), "forged_state");
  assert.equal(await sessionCookie(context), undefined);
  await context.close();
});

test("a replayed callback (its code and state) is refused, without asking GitHub again", async () => {
  const { context, page, seen } = await githubSignIn("bob");
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  assert.ok(seen.callback && seen.attemptCookie, "the callback and the attempt cookie were seen");
  const exchanges = github.exchanges;
  // Replayed with the attempt cookie it began with, as a thief of both would.
  await context.clearCookies();
  await context.addCookies([{ name: "harpoon_signin", value: seen.attemptCookie, url: `${base}/auth/` }]);
  const response = await page.goto(seen.callback);
  assert.equal(response.status(), 400);
  assert.equal(await page.getAttribute("#reason", "data-outcome"), "unknown_attempt");
  assert.equal(github.exchanges, exchanges, "the code was not exchanged a second time");
  assert.equal(await sessionCookie(context), undefined);
  await context.close();
});

test("a tampered session cookie is refused", async () => {
  const { context, page } = await githubSignIn("bob");
  const cookie = await sessionCookie(context);
  // Change a character of the signature (the cookie's first 44 characters),
  // leaving the token after it as it was.
  const first = cookie.value[0] === "A" ? "B" : "A";
  const tampered = first + cookie.value.slice(1);
  const refused = await api("GET", "/v2/dashboard", { cookie: `harpoon_session=${tampered}` });
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.code, "invalid_session");
  assert.match(refused.body.error.message, /altered/);
  await context.clearCookies();
  await context.addCookies([{ ...cookie, value: tampered }]);
  await page.goto(`${base}/dashboard`);
  await page.waitForSelector("#signin:not([hidden])");
  assert.equal(await page.isVisible("#panels"), false);
  await context.close();
});

test("a cross-site POST with the session cookie but without the CSRF token is refused", async () => {
  const { context, page } = await githubSignIn("alice");
  await page.waitForFunction(() => /github:alice · acme \(admin\)/.test(document.querySelector("#who").textContent));
  // A page of another origin (same site) posts a form to an admin route.
  const landed = page.waitForResponse((r) => r.url().endsWith("/v2/admin/tenants/globex/suspend"));
  await page.goto(attacker.url);
  const response = await landed;
  assert.equal(response.status(), 403);
  assert.equal((await response.json()).error.code, "csrf_refused");
  const tenants = await api("GET", "/v2/admin/tenants", { key: admin });
  assert.equal(tenants.body.find((t) => t.name === "globex").status, "active", "nothing was suspended");
  // The dashboard's own request, with the token, is taken.
  await page.goto(`${base}/dashboard`);
  await page.waitForFunction(() => /alice/.test(document.querySelector("#who").textContent));
  const own = await page.evaluate(async () => {
    const s = await (await fetch("/auth/session")).json();
    const r = await fetch("/v2/admin/tenants/globex/activate", {
      method: "POST", headers: { "X-CSRF-Token": s.session.csrf_token },
    });
    return r.status;
  });
  assert.equal(own, 200);
  await context.close();
});
