// README screenshots of the console, taken by Debian's chromium through
// playwright-core against a running `duecall serve`: the collectors' queue
// and the QA player (waveforms, aligned transcript). Checks each page has
// its content (no error page) before saving it.
// Usage: node screenshots.mjs URL OUTDIR (passwords in
// DUECALL_COLLECTOR_PASSWORD and DUECALL_QA_PASSWORD, users carol and quinn).
import { chromium } from "playwright-core";
import { strict as assert } from "node:assert";
import path from "node:path";

const [base, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});

async function login(page, user, pw, next) {
  await page.goto(base + next);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', pw);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

async function shot(page, name) {
  const text = await page.locator("body").innerText();
  assert.ok(!/internal error|not found/i.test(text), name + ": an error page: " + text.slice(0, 300));
  const file = path.join(out, name + ".png");
  await page.screenshot({ path: file });
  console.log("saved " + file);
}

try {
  const c = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await c.newPage();
  await login(page, "carol", process.env.DUECALL_COLLECTOR_PASSWORD, "/queue");
  await page.waitForSelector("#queue tbody tr");
  await shot(page, "console-queue");
  await c.close();

  const q = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const qa = await q.newPage();
  await login(qa, "quinn", process.env.DUECALL_QA_PASSWORD, "/qa");
  await qa.waitForSelector("#calls tbody tr");
  const call = qa.locator("#calls tbody tr", { hasText: "hardship" }).first();
  await Promise.all([qa.waitForNavigation(), call.locator("a").click()]);
  await qa.waitForSelector("#transcript tbody tr");
  await qa.waitForSelector("#waves");
  await qa.waitForTimeout(500);
  await shot(qa, "console-qa-player");
  await q.close();
} finally {
  await browser.close();
}
