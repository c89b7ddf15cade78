// The dashboard's script: keeps the API key in this tab's sessionStorage,
// fetches the server-drawn panels with it, and refreshes them. No cookie is
// ever set, so the browser sends nothing on its own (no CSRF surface).
"use strict";

const KEY = "harpoon.dashboard.key";
const REFRESH_MS = 30000;
const $ = (id) => document.getElementById(id);
let timer = null;

function key() {
  return sessionStorage.getItem(KEY);
}

async function call(path, options = {}) {
  const headers = { Authorization: "Bearer " + key(), ...(options.headers || {}) };
  return fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
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

function signOut(message) {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  timer = null;
  $("panels").replaceChildren();
  $("router-result").replaceChildren();
  show(false);
  $("signin-error").textContent = message || "";
}

async function load() {
  if (!key()) {
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
  $("signout").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", load);
  $("window").addEventListener("change", load);
  $("tenant").addEventListener("change", load);
  $("auto").addEventListener("change", schedule);
  $("router-form").addEventListener("submit", classify);
  if (key()) {
    load().then(schedule);
  } else {
    show(false);
  }
});
