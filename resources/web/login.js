// The local sign-in page. It talks only to its own origin (/login*), never to /api/*: the page
// has no bearer token, and the server only answers it over loopback.
"use strict";

// The app opens this page as /#s=<secret>: signing in or out needs this session's secret, so no
// other program on the machine can switch the account the nodes use. A fragment never reaches
// the server's logs or a Referer.
const SESSION = new URLSearchParams(window.location.hash.slice(1)).get("s") || "";

const $ = (id) => document.getElementById(id);

// The desktop app shows this page in its own light or dark theme, not the system's.
function setTheme(name) {
  if (name === "dark" || name === "light") document.documentElement.dataset.theme = name;
}
window.rlSwarmTheme = setTheme;
setTheme(new URLSearchParams(window.location.search).get("theme"));
const POLL_MS = 2000;
let busy = false;
// Bumped by every sign-in/out: a poll that started before one must not undo what it showed.
let generation = 0;

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = kind || "";
}

function render(info) {
  const signedIn = Boolean(info && info.signedIn);
  $("signin-form").hidden = signedIn;
  $("account").hidden = !signedIn;
  if (!signedIn) {
    if (!busy) setStatus("signed out");
    return;
  }
  setStatus("signed in", "ok");
  $("account-email").textContent = info.email || "";
  $("address").textContent = info.address || "";
  $("org-id").textContent = info.orgId || "";
  const list = $("peers");
  const peers = Array.isArray(info.peers) ? info.peers : [];
  // textContent, never innerHTML: peer ids come from the network.
  list.replaceChildren(...peers.map((p) => {
    const li = document.createElement("li");
    li.textContent = p;
    return li;
  }));
  $("no-peers").hidden = peers.length > 0;
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Login-Session": SESSION },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  let data = {};
  try { data = await resp.json(); } catch (_) { /* keep {} */ }
  return { ok: resp.ok, data };
}

async function refresh() {
  const started = generation;
  try {
    const resp = await fetch("/login/status", { cache: "no-store" });
    const info = resp.ok ? await resp.json() : null;
    if (info && started === generation) render(info);
  } catch (_) {
    if (!busy) setStatus("the login server is not reachable", "error");
  }
}

async function signIn(event) {
  event.preventDefault();
  const email = $("email").value.trim();
  if (!email) {
    setStatus("enter your email", "error");
    return;
  }
  busy = true;
  generation += 1;
  $("signin").disabled = true;
  setStatus("signing in…");
  try {
    const { ok, data } = await post("/login", { email });
    if (ok) render(data);
    else setStatus(data.detail || data.error || "sign-in failed", "error");
  } catch (_) {
    setStatus("the login server is not reachable", "error");
  } finally {
    busy = false;
    $("signin").disabled = false;
  }
}

async function signOut(event) {
  event.preventDefault();
  generation += 1;
  try {
    const { ok, data } = await post("/login/logout");
    if (ok) render({ signedIn: false });
    else setStatus(data.detail || data.error || "sign-out failed", "error");
  } catch (_) {
    setStatus("the login server is not reachable", "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  refresh();
  setInterval(refresh, POLL_MS);
});
