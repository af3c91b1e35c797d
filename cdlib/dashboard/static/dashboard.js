// cdlib dashboard: refresh the live part, sign in, send promote and abort.
// The live part's HTML comes from the server, rendered and escaped there; this script
// never builds markup from data, and the page's CSP allows no other script.
"use strict";
(function () {
  const live = document.getElementById("live");
  const updated = document.getElementById("updated");
  const notice = document.getElementById("notice");
  const every = Math.max(0.5, Number(live.dataset.interval || "2")) * 1000;
  let last = null;
  let timer = null;

  function say(text, bad) {
    notice.textContent = text;
    notice.className = bad ? "bad" : "ok";
  }

  function keepOpen(apply) {
    // A refresh keeps which <details> the reader opened or closed.
    const state = {};
    live.querySelectorAll("details[id]").forEach((d) => { state[d.id] = d.open; });
    apply();
    live.querySelectorAll("details[id]").forEach((d) => {
      if (d.id in state) d.open = state[d.id];
    });
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await fetch("/api/state", { cache: "no-store", headers: { Accept: "application/json" } });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const data = await r.json();
      if (data.html !== last) {
        last = data.html;
        keepOpen(() => { live.innerHTML = data.html; });
      }
      updated.textContent = "updated " + new Date().toLocaleTimeString();
      updated.classList.remove("stale");
    } catch (e) {
      updated.textContent = "not updated: " + e.message;
      updated.classList.add("stale");
    }
    timer = setTimeout(refresh, every);
  }

  function creds() {
    return {
      token: sessionStorage.getItem("cdlib-token") || "",
      name: sessionStorage.getItem("cdlib-name") || "",
    };
  }

  async function post(path, body) {
    const c = creds();
    const r = await fetch(path, {
      method: "POST",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-Cdlib-Token": c.token, "X-Cdlib-Name": c.name },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: "HTTP " + r.status }; }
    return { ok: r.ok, data: data };
  }

  const login = document.getElementById("login");
  if (login) {
    const who = document.getElementById("whoami");
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("cdlib-name", document.getElementById("login-name").value.trim());
      sessionStorage.setItem("cdlib-token", document.getElementById("login-token").value.trim());
      document.getElementById("login-token").value = "";
      const res = await post("/api/login");
      if (res.ok) {
        who.textContent = "acting as " + res.data.by;
        say("signed in", false);
      } else {
        sessionStorage.removeItem("cdlib-token");
        who.textContent = "";
        say(res.data.error || "sign-in refused", true);
      }
      refresh();
    });
  }

  live.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    if (!creds().token) { say("sign in with the access token first", true); return; }
    const action = b.dataset.action;
    if (action === "abort" && !window.confirm("Abort the release of " + b.dataset.app + "?")) return;
    b.disabled = true;
    const res = await post("/api/apps/" + encodeURIComponent(b.dataset.app) + "/" + action,
      { release: b.dataset.release });
    say(res.ok ? res.data.message + " (as " + res.data.by + ")" : res.data.error, !res.ok);
    refresh();
  });

  timer = setTimeout(refresh, every);
})();
