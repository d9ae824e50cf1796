// Runs tests/webrtc/phone.html (a JsSIP browser phone) in Debian's chromium through playwright-core:
//   node phone.mjs <ws_port> <user> <password> <result.json> <timeout_ms> <reply.wav>...
// Prints "READY" once registered, waits for one call to end (or the timeout), writes the page's
// RESULT as JSON and exits 0 (the Rust test judges it). Nothing is downloaded: the JsSIP bundle is
// built by scripts/setup (npm run bundle), chromium is /usr/bin/chromium.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const [ws, user, password, out, timeoutMs, ...wavs] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const profile = mkdtempSync(join(tmpdir(), 'duecall-phone-'));
const replies = wavs.map(w => readFileSync(w).toString('base64'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-pings', '--dns-prefetch-disable', '--disable-quic',
    '--disable-features=MediaRouter,OptimizationHints,WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
let result = { error: 'no result' };
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', m => console.log(m.text()));
  page.on('pageerror', e => console.log('[pageerror]', e.message));
  await page.addInitScript(r => { window.REPLIES = r; }, replies);
  const q = new URLSearchParams({ ws, user, password });
  await page.goto(`file://${join(here, 'phone.html')}?${q}`);
  await page.waitForFunction(() => window.RESULT && window.RESULT.registered, null, { timeout: 15000 });
  console.log('READY');
  await page.waitForFunction(() => window.RESULT.ended !== null, null,
    { timeout: Number(timeoutMs), polling: 200 }).catch(() => console.log('[phone] timed out'));
  await page.waitForTimeout(300);
  result = await page.evaluate(() => window.RESULT);
} catch (e) {
  result = { error: String(e) };
  console.log('[phone] error', e);
} finally {
  writeFileSync(out, JSON.stringify(result, null, 1));
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
