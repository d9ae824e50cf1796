// duecall console: every page's behaviour, on the /api/v1 JSON API with the
// session cookie and its CSRF token (from <meta name="csrf-token">). No
// external host, no inline script (the page's CSP forbids both). The page
// says which view it is in <main data-page="..." data-id="...">.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(path, opts = {}) {
  const init = { credentials: "same-origin", headers: {} };
  if (opts.method) init.method = opts.method;
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers["content-type"] = "application/json";
  }
  if (init.method && init.method !== "GET") init.headers["x-csrf-token"] = csrf();
  const r = await fetch(path, init);
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!r.ok) {
    const msg = body && body.error ? body.error + (body.field ? " (" + body.field + ")" : "") : r.status + "";
    const e = new Error(msg);
    e.status = r.status;
    throw e;
  }
  return body;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function say(msg, bad) {
  const s = document.getElementById("status");
  if (!s) return;
  s.textContent = msg;
  s.className = bad ? "status bad" : "status";
}

const main = () => document.getElementById("main");
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
const fmtAge = (s) => (s < 3600 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d");
const pct = (x) => (x === null || x === undefined ? "" : Math.round(x * 100) + "%");
// The language tag of text in an account's language (Chinese names and
// transcripts get zh-Hans, so the browser picks Simplified Chinese glyphs).
const langTag = (l) => (l === "zh" ? "zh-Hans" : l || null);
// The brief a collector reads first: the summary's first line.
const briefOf = (summary) => (summary || "").split("\n")[0];
const ms = (m) => { const s = Math.floor(m / 1000); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };

// ---- the escalation queue -------------------------------------------------

async function queuePage(root) {
  const filters = el("form", { class: "filters", id: "filters" },
    el("label", {}, "Intent ", el("input", { name: "intent", size: 12 })),
    el("label", {}, "Reason ", el("input", { name: "reason", size: 12 })),
    el("label", {}, "Claimed ", el("select", { name: "claimed" },
      el("option", { value: "" }, "any"), el("option", { value: "false" }, "not claimed"), el("option", { value: "true" }, "claimed"))),
    el("label", {}, "Older than (min) ", el("input", { name: "min_age_minutes", size: 5, inputmode: "numeric" })),
    el("label", {}, "Status ", el("select", { name: "status" },
      el("option", { value: "open" }, "open"), el("option", { value: "claimed" }, "claimed"), el("option", { value: "closed" }, "closed"), el("option", { value: "" }, "all"))),
    el("button", { type: "submit" }, "Filter"));
  const table = el("table", { class: "grid", id: "queue" },
    el("thead", {}, el("tr", {}, ["Case", "Account", "Phone", "Amount", "Days past due", "Why", "Intent", "Confidence", "Age", "Claimed by"].map((h) => el("th", {}, h)))),
    el("tbody"));
  root.append(el("h1", {}, "Escalations"), filters, el("p", { class: "hint" }, "↑/↓ or j/k move, Enter opens the case."), table);
  const load = async () => {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v !== "") q.set(k, v);
    q.set("order", "newest");
    const rows = await api("/api/v1/escalations?" + q);
    const tb = table.tBodies[0];
    tb.replaceChildren();
    for (const r of rows) {
      const a = r.account || {};
      const tr = el("tr", { tabindex: 0, "data-id": r.id, class: r.claimed_by ? "claimed" : "" },
        el("td", {}, el("a", { href: "/case/" + r.id }, "#" + r.id)),
        el("td", { lang: langTag(a.language) }, a.name ? a.name + " (" + r.account_id + ")" : r.account_id),
        el("td", {}, a.phone_masked || ""),
        el("td", {}, a.amount ? a.amount + " " + (a.currency || "") : ""),
        el("td", {}, a.days_past_due ?? ""),
        el("td", { title: briefOf(r.summary) }, r.reason),
        el("td", {}, r.intent || ""),
        el("td", {}, pct(r.confidence)),
        el("td", {}, fmtAge(r.age_s)),
        el("td", {}, r.claimed_by || ""));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter") location.href = "/case/" + r.id;
      });
      tb.append(tr);
    }
    say(rows.length + " cases");
  };
  filters.addEventListener("submit", (e) => { e.preventDefault(); load().catch((x) => say(x.message, true)); });
  table.addEventListener("keydown", (e) => {
    const rows = [...table.tBodies[0].rows];
    const i = rows.indexOf(document.activeElement);
    if ((e.key === "ArrowDown" || e.key === "j") && i < rows.length - 1) { rows[i + 1].focus(); e.preventDefault(); }
    if ((e.key === "ArrowUp" || e.key === "k") && i > 0) { rows[i - 1].focus(); e.preventDefault(); }
  });
  await load();
  const first = table.tBodies[0].rows[0];
  if (first) first.focus();
}

// ---- transcript and player (case page and QA) -----------------------------

function transcriptTable(lines, audio, lang) {
  const t = el("table", { class: "grid transcript", id: "transcript" },
    el("thead", {}, el("tr", {}, ["At", "Who", "Said", "Intent", "Confidence", "Prompt"].map((h) => el("th", {}, h)))),
    el("tbody"));
  for (const l of lines) {
    const prompt = l.speaker === "agent"
      ? (l.finished === false ? "cut by barge-in" + (l.cut_at_ms != null ? " at " + ms(l.cut_at_ms) : "") : l.finished ? "played to the end" : "")
      : "";
    const tr = el("tr", { class: "line " + l.speaker, tabindex: 0, "data-start": l.rec_ms ?? "", "data-end": l.rec_end_ms ?? "" },
      el("td", {}, ms(l.rec_ms ?? l.at_ms)),
      el("td", {}, l.speaker === "agent" ? "duecall" : "debtor"),
      el("td", { class: "said", lang: langTag(lang) }, l.text),
      el("td", {}, l.intent || ""),
      el("td", {}, pct(l.confidence)),
      el("td", {}, (l.prompt ? l.prompt + " " : "") + prompt));
    if (audio && l.rec_ms != null) {
      const seek = () => { audio.currentTime = l.rec_ms / 1000; audio.play().catch(() => {}); };
      tr.addEventListener("click", seek);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") seek(); });
    }
    t.tBodies[0].append(tr);
  }
  if (audio) {
    audio.addEventListener("timeupdate", () => {
      const now = audio.currentTime * 1000;
      let cur = null;
      for (const tr of t.tBodies[0].rows) {
        const s = tr.dataset.start === "" ? null : Number(tr.dataset.start);
        if (s !== null && s <= now) cur = tr;
        tr.classList.remove("current");
      }
      if (cur) { cur.classList.add("current"); cur.scrollIntoView({ block: "nearest" }); }
    });
  }
  return t;
}

function player(url) {
  if (!url) return [el("p", { class: "hint" }, "No recording."), null];
  const audio = el("audio", { controls: true, preload: "metadata", src: url, id: "player" });
  return [audio, audio];
}

// Both channels' waveforms drawn from the WAV (16-bit PCM, two channels).
async function waveforms(url, audio) {
  const canvas = el("canvas", { id: "waves", width: 900, height: 120, class: "waves" });
  try {
    const r = await fetch(url, { credentials: "same-origin" });
    const buf = new DataView(await r.arrayBuffer());
    let off = 12, fmt = null, data = null;
    while (off + 8 <= buf.byteLength) {
      const id = String.fromCharCode(buf.getUint8(off), buf.getUint8(off + 1), buf.getUint8(off + 2), buf.getUint8(off + 3));
      const len = buf.getUint32(off + 4, true);
      if (id === "fmt ") fmt = { ch: buf.getUint16(off + 10, true), bits: buf.getUint16(off + 22, true) };
      if (id === "data") { data = { at: off + 8, len: Math.min(len, buf.byteLength - off - 8) }; break; }
      off += 8 + len + (len % 2);
    }
    if (!fmt || !data || fmt.bits !== 16) return canvas;
    const ctx = canvas.getContext("2d");
    const frames = Math.floor(data.len / (2 * fmt.ch));
    const w = canvas.width, half = canvas.height / fmt.ch;
    for (let c = 0; c < fmt.ch; c++) {
      ctx.fillStyle = c === 0 ? "#2b6cb0" : "#c05621";
      for (let x = 0; x < w; x++) {
        const a = Math.floor((x * frames) / w), b = Math.floor(((x + 1) * frames) / w);
        let peak = 0;
        for (let i = a; i < b; i += 4) peak = Math.max(peak, Math.abs(buf.getInt16(data.at + (i * fmt.ch + c) * 2, true)));
        const h = (peak / 32768) * half;
        ctx.fillRect(x, c * half + (half - h) / 2, 1, Math.max(1, h));
      }
    }
    const dur = frames / 8000;
    canvas.addEventListener("click", (e) => {
      const rect = canvas.getBoundingClientRect();
      audio.currentTime = ((e.clientX - rect.left) / rect.width) * (audio.duration || dur);
    });
  } catch (_) { /* the player still works */ }
  return canvas;
}

// ---- one case --------------------------------------------------------------

// What the rules are called on screen (the stored names stay the gate's).
const RULE_LABELS = {
  jurisdiction: "Jurisdiction", suppression: "Suppression / do-not-call", hold: "Hold (dispute, collector)",
  stage: "Collection stage", pause: "Pause", callback: "Callback time", window: "Calling window",
  holiday: "Public holiday", asked_hours: "Hours the debtor asked for", call_hours: "Hours in the accounts file",
  quiet_after_conversation: "Quiet days after a conversation", number_available: "Number available",
  attempts_per_number_per_day: "Attempts on this number today", hard_cap_per_number_per_day: "Hard cap per number per day",
};
const ruleLabel = (r) => RULE_LABELS[r] || r.replace(/_/g, " ");

// The gate's decision as a collector or QA reads it: the verdict with its
// moment and zone, one row per rule checked (passed or not, in the gate's
// words and figures), and the stored JSON for an audit.
function policyView(p) {
  if (!p || !Array.isArray(p.rules)) return el("p", { class: "hint", id: "policy" }, "No decision stored.");
  const allowed = p.decision === "allow";
  const zones = (p.zones || []).join(", ");
  const head = el("p", { class: "verdict " + (allowed ? "pass" : "fail"), id: "policy-verdict" },
    (allowed ? "Allowed" : "Denied") + " at " + fmtTime(p.at) +
    " (" + (p.jurisdiction || "?") + (zones ? ", " + zones : "") + ")" +
    (!allowed && p.next_allowed_at ? "; next allowed " + fmtTime(p.next_allowed_at) : "") +
    (p.human_queue ? "; past the robot stage: a collector's case" : ""));
  const rows = p.rules.map((r) =>
    el("tr", { class: r.passed ? "pass" : "fail", "data-rule": r.rule },
      el("td", {}, r.passed ? "✓" : "✗"),
      el("td", {}, ruleLabel(r.rule)),
      el("td", {}, r.detail || "")));
  const table = el("table", { id: "policy", class: "policy" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "Rule"), el("th", {}, "In the gate's words"))),
    el("tbody", {}, rows));
  const raw = el("details", {}, el("summary", {}, "Stored decision (JSON)"),
    el("pre", { class: "policy" }, JSON.stringify(p, null, 2)));
  return el("div", {}, head, table, raw);
}

// A closure's outcome is an object tagged by `outcome` (pause, suppress, ...).
const outcomeOf = (cl) => (cl.outcome && typeof cl.outcome === "object" ? cl.outcome.outcome : cl.outcome);

async function casePage(root, id) {
  const c = await api("/api/v1/escalations/" + id);
  const a = c.account || {};
  const [audioEl, audio] = player(c.recording_url);
  root.append(
    el("h1", {}, "Case #" + c.id + " · " + c.reason),
    el("p", { class: "brief", id: "brief" }, briefOf(c.summary)),
    el("section", { class: "cols" },
      el("dl", { class: "facts" },
        el("dt", {}, "Account"), el("dd", { id: "case-account", lang: langTag(a.language) }, (a.name || "") + " (" + c.account_id + ")"),
        el("dt", {}, "Phone"), el("dd", {}, a.phone_masked || ""),
        el("dt", {}, "Amount"), el("dd", {}, a.amount ? a.amount + " " + (a.currency || "") : ""),
        el("dt", {}, "Days past due"), el("dd", {}, a.days_past_due ?? ""),
        el("dt", {}, "Why"), el("dd", {}, c.reason),
        el("dt", {}, "Intent"), el("dd", {}, (c.intent || "") + (c.confidence != null ? " (" + pct(c.confidence) + ")" : "")),
        el("dt", {}, "Status"), el("dd", { id: "case-status" }, c.status + (c.claimed_by ? " by " + c.claimed_by : "")),
        el("dt", {}, "Route"), el("dd", { id: "route" }, c.route ? c.route.kind + " (" + c.route.reason + ")" : "")),
      el("div", {},
        el("h2", {}, "Why the call was allowed"),
        policyView(c.policy))),
    el("h2", {}, "Recording"), audioEl,
    el("h2", {}, "Transcript"), transcriptTable(c.transcript || [], audio, a.language),
    el("details", {}, el("summary", {}, "The case as sent to collectors (text)"),
      el("pre", { class: "summary" }, c.summary)));
  const actions = el("section", { class: "actions" },
    el("button", { id: "claim", onclick: () => act("claim") }, "Claim"),
    el("form", { id: "note-form" }, el("input", { name: "text", placeholder: "Note", size: 40, required: true }), el("button", {}, "Add note")),
    el("form", { id: "close-form" },
      el("select", { name: "outcome" }, ["pause", "suppress", "release", "retry", "resolved"].map((o) => el("option", { value: o }, o))),
      el("input", { name: "until", type: "datetime-local", title: "pause until / retry at" }),
      el("select", { name: "scope" }, el("option", { value: "account" }, "whole account"), el("option", { value: "number" }, "this number")),
      el("input", { name: "note", placeholder: "Closing note", size: 30 }),
      el("button", {}, "Close case")));
  const notes = el("ul", { id: "notes" }, (c.notes || []).map((n) => el("li", {}, fmtTime(n.created_at) + " " + n.author + ": " + n.text)));
  root.append(el("h2", {}, "Work the case"), actions, el("h3", {}, "Notes"), notes);
  // A closed case says so, by whom and when, and can no longer be worked.
  function showClosure(cl) {
    const old = document.getElementById("closure");
    if (old) old.remove();
    root.append(el("p", { id: "closure" }, "Closed: " + outcomeOf(cl) + " by " + cl.closed_by + ", " + fmtTime(cl.closed_at)));
    for (const x of actions.querySelectorAll("button, input, select")) x.disabled = true;
  }
  if (c.closure) showClosure(c.closure);

  async function act(what, body) {
    try {
      const r = await api("/api/v1/escalations/" + id + "/" + what, { method: "POST", json: body || {} });
      if (what === "claim") document.getElementById("case-status").textContent = "claimed by " + r.claimed_by;
      if (what === "notes") notes.append(el("li", {}, "just now: " + body.text));
      if (what === "close") {
        const s = r.account_state;
        document.getElementById("case-status").textContent = "closed: " + outcomeOf(r.closure);
        const st = [];
        if (s.suppressed_account) st.push("account suppressed");
        if (s.suppressed_numbers.length) st.push("numbers suppressed: " + s.suppressed_numbers.join(", "));
        if (s.paused_now) st.push("paused until " + fmtTime(s.pause_until));
        if (s.callback_at) st.push("call back at " + fmtTime(s.callback_at));
        document.getElementById("route").textContent = st.length ? st.join("; ") : "callable again";
        if (body && body.note) notes.append(el("li", {}, "just now: " + body.note));
        showClosure(r.closure);
      }
      say(what + ": done");
    } catch (e) { say(what + ": " + e.message, true); }
  }
  document.getElementById("note-form").addEventListener("submit", (e) => {
    e.preventDefault();
    act("notes", { text: new FormData(e.target).get("text") });
  });
  document.getElementById("close-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { outcome: f.get("outcome") };
    const t = f.get("until");
    if (t) { const iso = new Date(t).toISOString(); if (body.outcome === "retry") body.at = iso; else body.until = iso; }
    if (body.outcome === "suppress") body.scope = f.get("scope");
    if (f.get("note")) body.note = f.get("note");
    act("close", body);
  });
}

// ---- holds -----------------------------------------------------------------

async function holdsPage(root) {
  const [pauses, supp, cbs] = await Promise.all([api("/api/v1/pauses"), api("/api/v1/suppressions"), api("/api/v1/callbacks")]);
  const pt = el("table", { class: "grid", id: "pauses" },
    el("thead", {}, el("tr", {}, ["Account", "Phone", "Why", "Until", "", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, pauses.map((p) => {
      const until = el("input", { type: "date", name: "until" });
      return el("tr", {},
        el("td", {}, p.account_id), el("td", {}, p.account ? p.account.phone_masked : ""), el("td", {}, p.reason),
        el("td", {}, p.hold ? "held until a person releases it" : fmtTime(p.until)),
        el("td", {}, el("button", { onclick: async () => {
          try { await api("/api/v1/pauses/" + p.id + "/release", { method: "POST" }); say("released " + p.account_id); } catch (e) { say(e.message, true); }
        } }, "Release")),
        el("td", {}, until, el("button", { onclick: async () => {
          try { await api("/api/v1/pauses/" + p.id + "/extend", { method: "POST", json: { until: new Date(until.value).toISOString() } }); say("extended " + p.account_id); } catch (e) { say(e.message, true); }
        } }, "Extend")));
    })));
  root.append(el("h1", {}, "Holds and queues"), el("h2", {}, "Paused and held"), pt,
    el("h2", {}, "Suppressed"), el("table", { class: "grid", id: "suppressions" },
      el("thead", {}, el("tr", {}, ["Account", "Scope", "Number", "Why", "From", "Since"].map((h) => el("th", {}, h)))),
      el("tbody", {}, supp.map((s) => el("tr", {}, el("td", {}, s.account_id || "every account"), el("td", {}, s.scope), el("td", {}, s.phone_masked || ""), el("td", {}, s.reason), el("td", {}, s.source === "list" ? "do-not-call list" : "call"), el("td", {}, fmtTime(s.created_at)))))),
    el("h2", {}, "Called back later"), el("table", { class: "grid", id: "callbacks" },
      el("thead", {}, el("tr", {}, ["Account", "At", "Asked"].map((h) => el("th", {}, h)))),
      el("tbody", {}, cbs.map((c) => el("tr", {}, el("td", {}, c.account_id), el("td", {}, fmtTime(c.at)), el("td", {}, fmtTime(c.created_at)))))));
}

// ---- QA --------------------------------------------------------------------

async function qaPage(root) {
  const filters = el("form", { class: "filters" },
    el("label", {}, "Since ", el("input", { name: "since", type: "date" })),
    el("label", {}, "Route ", el("select", { name: "route" }, ["", "agent", "pause", "suppress", "retry", "callback", "none"].map((r) => el("option", { value: r }, r || "any")))),
    el("label", {}, "Intent ", el("input", { name: "intent", size: 12 })),
    el("label", {}, "Disposition ", el("select", { name: "disposition" }, ["", "answered", "voicemail", "busy", "no-answer", "failed"].map((r) => el("option", { value: r }, r || "any")))),
    el("label", {}, "Confidence below ", el("input", { name: "max_confidence", size: 4 })),
    el("button", {}, "Filter"));
  const table = el("table", { class: "grid", id: "calls" },
    el("thead", {}, el("tr", {}, ["Call", "When", "Account", "Disposition", "Route", "Intent", "Lowest confidence", "Labels"].map((h) => el("th", {}, h)))),
    el("tbody"));
  root.append(el("h1", {}, "QA review"), filters,
    el("p", {}, el("a", { href: "/api/v1/labels/export", id: "export" }, "Export labelled calls (JSON lines)")), table);
  const load = async () => {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v !== "") q.set(k, k === "since" ? new Date(v).toISOString() : v);
    const rows = await api("/api/v1/attempts?" + q);
    table.tBodies[0].replaceChildren(...rows.map((r) => el("tr", {},
      el("td", {}, el("a", { href: "/qa/" + r.id }, "#" + r.id)), el("td", {}, fmtTime(r.decided_at)), el("td", {}, r.account_id + " " + r.phone_masked),
      el("td", {}, r.disposition || r.state), el("td", {}, r.route || ""), el("td", {}, r.intent || ""), el("td", {}, pct(r.min_confidence)), el("td", {}, r.labels))));
    say(rows.length + " calls");
  };
  filters.addEventListener("submit", (e) => { e.preventDefault(); load().catch((x) => say(x.message, true)); });
  await load();
}

async function qaCallPage(root, id) {
  const c = await api("/api/v1/attempts/" + id);
  const [audioEl, audio] = player(c.recording_url);
  root.append(el("h1", {}, "Call #" + c.id + " · " + (c.disposition || c.state)),
    el("p", {}, c.account_id + " " + c.phone_masked + " · " + fmtTime(c.decided_at) + (c.route ? " · route " + c.route.kind : "")),
    audioEl);
  if (audio) root.append(await waveforms(c.recording_url, audio));
  root.append(el("h2", {}, "Transcript (click a line to hear it)"), transcriptTable(c.transcript || [], audio, c.language));
  const debtorTurns = (c.transcript || []).filter((l) => l.speaker === "debtor");
  const form = el("form", { id: "label-form", class: "filters" },
    el("label", {}, "Reply ", el("select", { name: "turn" }, el("option", { value: "" }, "whole call"), debtorTurns.map((l) => el("option", { value: l.turn }, "#" + l.turn + " " + l.text.slice(0, 40))))),
    el("label", {}, "Verdict ", el("select", { name: "verdict" }, ["correct", "wrong_intent", "script_problem", "compliance_concern"].map((v) => el("option", { value: v }, v.replace("_", " "))))),
    el("label", {}, "Right intent ", el("input", { name: "right_intent", size: 14 })),
    el("label", {}, "Right text ", el("input", { name: "right_text", size: 24 })),
    el("label", {}, "Score ", el("select", { name: "score" }, ["", "1", "2", "3", "4", "5"].map((v) => el("option", { value: v }, v || "—")))),
    el("label", {}, "Note ", el("input", { name: "note", size: 24 })),
    el("button", {}, "Save label"));
  const list = el("ul", { id: "labels" }, (c.labels || []).map((l) => el("li", {}, l.verdict + (l.score ? " score " + l.score : "") + " by " + l.labelled_by)));
  root.append(el("h2", {}, "Labels"), form, list);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { verdict: f.get("verdict") };
    if (f.get("turn") !== "") body.turn = Number(f.get("turn"));
    for (const k of ["right_intent", "right_text", "note"]) if (f.get(k)) body[k] = f.get(k);
    if (f.get("score")) body.score = Number(f.get("score"));
    try {
      await api("/api/v1/attempts/" + id + "/labels", { method: "POST", json: body });
      list.append(el("li", {}, body.verdict + (body.score ? " score " + body.score : "") + " (saved)"));
      say("label saved");
    } catch (x) { say(x.message, true); }
  });
}

// ---- dashboard -------------------------------------------------------------

function barChart(id, points, key, label) {
  const w = 600, h = 160, pad = 24;
  const max = Math.max(1, ...points.map((p) => p[key]));
  const bw = points.length ? (w - pad) / points.length : 0;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 20}`);
  svg.setAttribute("id", id);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  points.forEach((p, i) => {
    const v = p[key], bh = ((h - pad) * v) / max;
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", pad + i * bw + 2); r.setAttribute("y", h - bh); r.setAttribute("width", Math.max(1, bw - 4)); r.setAttribute("height", bh);
    r.setAttribute("class", "bar");
    const t = document.createElementNS(ns, "title"); t.textContent = (p.day || p.label) + ": " + v; r.append(t);
    svg.append(r);
    const tx = document.createElementNS(ns, "text");
    tx.setAttribute("x", pad + i * bw + bw / 2); tx.setAttribute("y", h + 14); tx.setAttribute("text-anchor", "middle"); tx.setAttribute("class", "axis");
    tx.textContent = p.label || (p.day || "").slice(5);
    svg.append(tx);
  });
  return svg;
}

async function dashboardPage(root) {
  const s = await api("/api/v1/stats");
  const card = (k, v) => el("div", { class: "card" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k));
  const outcomes = Object.entries(s.by_disposition).map(([k, v]) => ({ label: k, n: v }));
  root.append(el("h1", {}, "Campaign dashboard"),
    el("section", { class: "cards", id: "cards" },
      card("calls", s.attempts), card("in flight", s.in_flight), card("right-party contact", pct(s.right_party_contact_rate)),
      card("promise to pay", pct(s.promise_to_pay_rate)), card("escalations open", s.escalations_open),
      card("reply latency p50 / p95", (s.reply_latency_p50_ms ?? "—") + " / " + (s.reply_latency_p95_ms ?? "—") + " ms")),
    el("h2", {}, "Calls per day"), barChart("chart-days", s.per_day, "attempts", "calls per day"),
    el("h2", {}, "Outcomes"), barChart("chart-outcomes", outcomes, "n", "outcomes"));
  const camps = await api("/api/v1/campaigns").catch(() => []);
  if (camps.length) root.append(el("h2", {}, "Campaigns"), el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["Campaign", "State", "Accounts"].map((h) => el("th", {}, h)))),
    el("tbody", {}, camps.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.state), el("td", {}, c.accounts))))));
}

// ---- start -----------------------------------------------------------------

const PAGES = { queue: queuePage, case: casePage, holds: holdsPage, qa: qaPage, "qa-call": qaCallPage, dashboard: dashboardPage };

document.addEventListener("DOMContentLoaded", () => {
  const m = main();
  const page = PAGES[m.dataset.page];
  if (!page) return;
  m.append(el("p", { id: "status", class: "status", role: "status" }));
  page(m, m.dataset.id).catch((e) => say(e.message, true));
});
