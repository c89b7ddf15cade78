// The dashboard's script. Two ways in: an API key kept in this tab's
// sessionStorage and sent as Authorization (no cookie: nothing for another
// site to forge), or a person's sign-in session (GitHub, OpenID Connect),
// whose HttpOnly cookie the browser sends and whose CSRF token this script
// adds to every request (/auth/session gives it). Then it fetches the
// server-drawn panels and refreshes them.
"use strict";

const KEY = "harpoon.dashboard.key";
const REFRESH_MS = 30000;
const $ = (id) => document.getElementById(id);
let timer = null;
// The sign-in session ({subject, tenant, role, csrf_token, …}) when signed in with a cookie.
let session = null;

function key() {
  return sessionStorage.getItem(KEY);
}

function signedIn() {
  return session !== null || key() !== null;
}

async function call(path, options = {}) {
  if (session) {
    const headers = { "X-CSRF-Token": session.csrf_token, ...(options.headers || {}) };
    return fetch(path, { ...options, headers, cache: "no-store", credentials: "same-origin" });
  }
  const headers = { Authorization: "Bearer " + key(), ...(options.headers || {}) };
  return fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
}

// The sign-in buttons of the configured providers.
async function showProviders() {
  const response = await fetch("/auth/providers", { cache: "no-store", credentials: "omit" });
  if (!response.ok) return;
  const { providers } = await response.json();
  const links = providers.map((p) => {
    const a = document.createElement("a");
    a.href = p.login;
    a.className = "provider";
    a.textContent = "Sign in with " + p.label;
    return a;
  });
  $("providers").replaceChildren(...links);
  $("providers").hidden = links.length === 0;
}

// The session behind this browser's cookie, if any.
async function readSession() {
  const response = await fetch("/auth/session", { cache: "no-store", credentials: "same-origin" });
  const body = response.ok ? await response.json() : null;
  session = body && body.signed_in ? body.session : null;
  $("who").textContent = session
    ? session.subject + " · " + session.tenant + " (" + session.role + ")"
    : "";
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error.message;
  } catch (_) {
    return response.status + " " + response.statusText;
  }
}

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("dashboard").hidden = !signedIn;
  $("controls").hidden = !signedIn;
}

async function signOut(message, ask) {
  if (session && ask) {
    // Ends the session on the server (every replica), which deletes the cookie.
    await call("/auth/logout", { method: "POST" });
  }
  session = null;
  $("who").textContent = "";
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  timer = null;
  $("panels").replaceChildren();
  $("router-result").replaceChildren();
  show(false);
  $("signin-error").textContent = message || "";
}

async function load() {
  if (!signedIn()) {
    show(false);
    return;
  }
  const window = $("window").value;
  const tenant = $("tenant").value.trim();
  $("status").textContent = "Loading…";
  const query = "?window=" + encodeURIComponent(window)
    + (tenant ? "&tenant=" + encodeURIComponent(tenant) : "");
  const response = await call("/dashboard/panels" + query);
  if (response.status === 401 || response.status === 403) {
    signOut(await errorText(response));
    return;
  }
  if (!response.ok) {
    $("panels").replaceChildren();
    $("status").textContent = await errorText(response);
    document.body.dataset.loaded = "";
    return;
  }
  show(true);
  // The server escapes every text it puts in the fragment.
  $("panels").innerHTML = await response.text();
  $("status").textContent = "Updated " + new Date().toLocaleTimeString();
  document.body.dataset.loaded = window;
}

function schedule() {
  clearInterval(timer);
  timer = $("auto").checked ? setInterval(load, REFRESH_MS) : null;
}

async function classify(event) {
  event.preventDefault();
  const response = await call("/dashboard/router", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: $("prompt").value }),
  });
  if (!response.ok) {
    $("router-result").textContent = await errorText(response);
    return;
  }
  $("router-result").innerHTML = await response.text();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    await load();
    schedule();
  });
  $("signout").addEventListener("click", () => signOut("", true));
  $("refresh").addEventListener("click", load);
  $("window").addEventListener("change", load);
  $("tenant").addEventListener("change", load);
  $("auto").addEventListener("change", schedule);
  $("router-form").addEventListener("submit", classify);
  Promise.all([showProviders(), readSession()]).then(() => {
    if (signedIn()) {
      load().then(schedule);
    } else {
      show(false);
    }
  });
});
