// The console as a person uses it, in Debian's chromium driven by
// playwright-core: an anonymous visitor is sent to the login; a collector
// opens the queue, a hardship case, checks its transcript and that the
// recording plays, claims and closes it and sees the route change, and
// cannot open QA pages; QA labels a call in the player and exports the
// labels. Screenshots go to OUT. Usage: node console.mjs URL OUT
// (passwords in DUECALL_COLLECTOR_PASSWORD, DUECALL_QA_PASSWORD).
import { chromium } from "playwright-core";
import { strict as assert } from "node:assert";
import path from "node:path";

const [base, out] = process.argv.slice(2);
const collectorPw = process.env.DUECALL_COLLECTOR_PASSWORD;
const qaPw = process.env.DUECALL_QA_PASSWORD;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--disable-gpu"],
});
const step = (s) => console.log("step: " + s);

async function login(page, user, pw, next) {
  await page.goto(base + next);
  assert.match(new URL(page.url()).pathname, /^\/login/, "sent to the login");
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', pw);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

async function shot(page, name) {
  const file = path.join(out, name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  const text = await page.locator("body").innerText();
  assert.ok(!/internal error|not found/i.test(text), name + ": an error page: " + text.slice(0, 300));
  return file;
}

try {
  const anon = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  step("anonymous visitor");
  await anon.goto(base + "/qa");
  assert.match(anon.url(), /\/login\?next=%2Fqa/, "anonymous: to the login: " + anon.url());
  await anon.close();

  // A collector.
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  step("collector logs in");
  await login(page, "carol", collectorPw, "/queue");
  assert.equal(new URL(page.url()).pathname, "/queue");
  await page.waitForSelector("#queue tbody tr");
  const rows = await page.locator("#queue tbody tr").count();
  assert.ok(rows > 0, "the queue has cases");
  // Keyboard: the first row has focus, ArrowDown moves, Enter opens.
  await page.keyboard.press("ArrowDown");
  await shot(page, "queue");
  step("open a hardship case");
  const hardship = page.locator("#queue tbody tr", { hasText: "hardship" }).first();
  const caseId = await hardship.getAttribute("data-id");
  await hardship.focus();
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.equal(new URL(page.url()).pathname, "/case/" + caseId);
  await page.waitForSelector("#transcript tbody tr");
  const said = await page.locator("#transcript").innerText();
  assert.ok(said.includes("duecall") && said.includes("debtor"), "both sides in the transcript");
  step("the gate's decision reads as rules");
  const verdict = await page.locator("#policy-verdict").innerText();
  assert.match(verdict, /^Allowed at .* \([a-z]{2}/, "the verdict with its moment and jurisdiction: " + verdict);
  const ruleRows = await page.locator("#policy tbody tr").count();
  assert.ok(ruleRows >= 5, "one row per rule checked: " + ruleRows);
  const windowRow = await page.locator('#policy tbody tr[data-rule="window"]').innerText();
  assert.ok(windowRow.includes("✓") && windowRow.includes("Calling window"), "the window rule passed, in words: " + windowRow);
  step("the recording plays");
  const played = await page.evaluate(async () => {
    const a = document.getElementById("player");
    if (!a) return -1;
    a.muted = true;
    await a.play();
    await new Promise((r) => setTimeout(r, 1500));
    return a.currentTime;
  });
  assert.ok(played > 0.3, "the audio element's time advances: " + played);
  step("claim and close");
  await page.click("#claim");
  await page.locator("#case-status", { hasText: "claimed by" }).waitFor();
  await page.selectOption('#close-form select[name="outcome"]', "pause");
  const until = new Date(Date.now() + 20 * 86400e3);
  const local = new Date(until.getTime() - until.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  await page.fill('#close-form input[name="until"]', local);
  await page.fill('#close-form input[name="note"]', "agreed a plan");
  await page.click("#close-form button");
  await page.locator("#case-status", { hasText: "closed" }).waitFor();
  const route = await page.locator("#route").innerText();
  assert.match(route, /paused until/, "the route shows the pause: " + route);
  const closure = await page.locator("#closure").innerText();
  assert.match(closure, /^Closed: pause by carol, /, "the closure says what, who and when: " + closure);
  assert.ok((await page.locator("#notes").innerText()).includes("agreed a plan"), "the closing note is listed");
  assert.ok(await page.locator("#claim").isDisabled(), "a closed case can no longer be worked");
  await shot(page, "case");
  step("the brief says why in words");
  const brief = await page.locator("#brief").innerText();
  assert.ok(brief.startsWith("The debtor says they cannot pay now.") && /Right person (not )?confirmed\./.test(brief),
    "the case opens with a brief in words: " + brief);
  step("a Mandarin case renders in Chinese glyphs");
  await page.goto(base + "/queue");
  const zhRow = page.locator("#queue tbody tr", { hasText: "ZH-01" }).first();
  await Promise.all([page.waitForNavigation(), zhRow.locator("a").click()]);
  await page.waitForSelector("#transcript tbody tr.debtor");
  const account = page.locator("#case-account");
  assert.equal(await account.getAttribute("lang"), "zh-Hans", "the name is tagged Chinese");
  assert.ok((await account.innerText()).includes("王伟"), "the Chinese name shows");
  const zhSaid = await page.locator("#transcript").innerText();
  assert.ok(zhSaid.includes("我最近失业了") && /王伟|您/.test(zhSaid), "both sides in Chinese: " + zhSaid.slice(0, 300));
  // Each Han character is drawn with the page's own font and compared with
  // what the font draws for a code point no font has (the "tofu" box): a
  // page without a CJK font draws every one of them as that box.
  const tofu = await page.evaluate(() => {
    const said = document.querySelector('#transcript tr.debtor td.said[lang="zh-Hans"]');
    const lines = [...document.querySelectorAll('#transcript td.said[lang="zh-Hans"]')].map((e) => e.innerText).join("");
    const family = getComputedStyle(said || document.body).fontFamily;
    const c = document.createElement("canvas");
    c.width = 48; c.height = 48;
    const g = c.getContext("2d");
    g.font = "40px " + family;
    const draw = (ch) => { g.clearRect(0, 0, 48, 48); g.fillText(ch, 2, 40); return g.getImageData(0, 0, 48, 48).data.join(""); };
    const box = draw("\u{10FFFD}");
    const chars = [...new Set(document.getElementById("case-account").innerText + lines)]
      .filter((ch) => /\p{Script=Han}/u.test(ch));
    const shapes = new Set(chars.map(draw));
    return { tagged: !!said, chars: chars.length, missing: chars.filter((ch) => draw(ch) === box), shapes: shapes.size };
  });
  assert.ok(tofu.tagged, "the debtor's Chinese line is tagged zh-Hans");
  assert.ok(tofu.chars >= 20, "Han characters to check (both sides): " + JSON.stringify(tofu));
  assert.deepEqual(tofu.missing, [], "every Han character has a glyph: " + JSON.stringify(tofu));
  assert.equal(tofu.shapes, tofu.chars, "different characters draw differently: " + JSON.stringify(tofu));
  await shot(page, "case-zh");
  step("a collector cannot open QA");
  const r = await page.goto(base + "/qa");
  assert.equal(r.status(), 403);
  assert.ok((await page.locator("body").innerText()).includes("Not for your role"));
  assert.deepEqual(errors, [], "no script errors");
  await ctx.close();

  // QA.
  const qctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const qa = await qctx.newPage();
  qa.on("pageerror", (e) => errors.push(e.message));
  step("qa logs in");
  await login(qa, "quinn", qaPw, "/qa");
  await qa.waitForSelector("#calls tbody tr");
  const call = qa.locator("#calls tbody tr", { hasText: "hardship" }).first();
  await Promise.all([qa.waitForNavigation(), call.locator("a").click()]);
  const callId = new URL(qa.url()).pathname.split("/").pop();
  await qa.waitForSelector("#transcript tbody tr");
  await qa.waitForSelector("#waves");
  step("click a line to seek");
  const line = qa.locator("#transcript tbody tr.debtor").first();
  const start = Number(await line.getAttribute("data-start"));
  await line.click();
  // waitForFunction evaluates strings, which the page's CSP forbids: poll.
  let at = -1;
  for (let i = 0; i < 50 && Math.abs(at - start) >= 1500; i++) {
    at = await qa.evaluate(() => document.getElementById("player").currentTime * 1000);
    if (Math.abs(at - start) >= 1500) await qa.waitForTimeout(100);
  }
  assert.ok(Math.abs(at - start) < 1500, "the player sought to the line: " + at + " vs " + start);
  step("label");
  await qa.selectOption('#label-form select[name="turn"]', { index: 1 });
  await qa.selectOption('#label-form select[name="verdict"]', "wrong_intent");
  await qa.fill('#label-form input[name="right_intent"]', "hardship");
  await qa.selectOption('#label-form select[name="score"]', "2");
  await qa.click("#label-form button");
  await qa.locator("#labels", { hasText: "(saved)" }).waitFor();
  await shot(qa, "qa-player");
  step("export");
  const exported = await qa.evaluate(async () => (await fetch("/api/v1/labels/export")).text());
  const lines = exported.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.intent === "hardship" && l.audio), "the export has the label: " + exported.slice(0, 300));
  step("dashboard");
  await qa.goto(base + "/dashboard");
  await qa.waitForSelector("#chart-days rect, #chart-outcomes rect");
  await shot(qa, "dashboard");
  assert.deepEqual(errors, [], "no script errors");
  console.log("console test passed: case " + caseId + ", call " + callId);
} finally {
  await browser.close();
}
