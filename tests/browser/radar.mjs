// Headless-Chromium checks of netmond's dashboard. Run by bins/netmond/tests/radar.rs:
//
//   node tests/browser/radar.mjs <mode> <url> [options]
//
// modes:
//   live   the radar shows blips, the chart has data, the table lists a flow with --sni, an
//          alert --alert (kind) from --alert-source appears; hovering a blip shows its flows
//   xss    every --hostile string shows literally (table and tooltip) and no script ran
//   perf   watches the page for --seconds and prints frame / event-handling times
// options: --token T (typed into the page's token form), --out DIR (screenshots),
//          --shot FILE (one extra screenshot, e.g. docs/radar.png), --seconds N
//
// With <url> `-`, the browser starts first, prints `READY` and reads the URL from a line of
// standard input: the test starts netmond (and its replay) only once the browser is up, so a
// slowly starting Chromium cannot miss a replay's live flows.
//
// Exit status 0 when every check passed; failures are printed with the page's state.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [mode, urlArg, ...rest] = process.argv.slice(2);
const opt = { hostile: [] };
for (let i = 0; i < rest.length; i += 2) {
  const k = rest[i].replace(/^--/, '');
  if (k === 'hostile') opt.hostile.push(rest[i + 1]); else opt[k] = rest[i + 1];
}
if (!mode || !urlArg) {
  console.error('usage: radar.mjs live|xss|perf URL [--token T] [--out DIR] ...');
  process.exit(2);
}
const out = opt.out || 'target/browser';
mkdirSync(out, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'netmon-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 940 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage'],
});
const page = ctx.pages()[0] || await ctx.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => { if (m.type() === 'error') console.log('[console] ' + m.text()); });
page.on('dialog', (d) => { problems.push('a dialog opened: ' + d.message()); d.dismiss(); });
// Injected before the page's own script (through the devtools protocol, not subject to CSP):
// records CSP violations and any dialog attempt.
await page.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
  });
  window.alert = () => { window.__xss = 'alert'; };
});

let failed = false;
function fail(msg) { failed = true; console.log('FAIL: ' + msg); }
async function waitFor(what, fn, arg, timeout = 30000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 200 });
    console.log('ok: ' + what);
    return true;
  } catch (_) {
    fail(what + ' (not within ' + timeout / 1000 + ' s)');
    return false;
  }
}
async function shot(name) {
  const p = join(out, name);
  await page.screenshot({ path: p });
  console.log('screenshot: ' + p);
}
// Hovers the blip of `addr` (or the first one) and returns the tooltip's text.
async function hoverBlip(addr) {
  const pos = await page.evaluate((a) => {
    const blips = window.__netmonRadar ? window.__netmonRadar() : [];
    const b = blips.find((x) => !a || x.addr === a) || null;
    if (!b) return null;
    const c = document.getElementById('radar');
    const r = c.getBoundingClientRect();
    const k = r.width / c.width;
    return { x: r.left + b.x * k, y: r.top + b.y * k };
  }, addr || null);
  if (!pos) return null;
  await page.mouse.move(pos.x, pos.y);
  await page.waitForTimeout(150);
  await page.mouse.move(pos.x + 0.5, pos.y + 0.5);
  await page.waitForTimeout(200);
  return page.evaluate(() => {
    const t = document.getElementById('tooltip');
    return t.classList.contains('hidden') ? null : t.textContent;
  });
}

let url = urlArg;
if (url === '-') {
  console.log('READY');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) { url = line.trim(); break; }
  lines.close();
  if (!url || url === '-') { console.error('no URL on standard input'); process.exit(2); }
}
await page.goto(url, { waitUntil: 'domcontentloaded' });
if (opt.token) {
  await page.waitForSelector('#login:not(.hidden)', { timeout: 15000 });
  console.log('ok: the page asks for the token');
  await page.fill('#token', opt.token);
  await page.click('#login button');
}

if (mode === 'live') {
  await waitFor('the radar shows blips', () => Number(document.getElementById('radar').dataset.blips) > 0);
  await waitFor('the bandwidth chart has data', () => Number(document.getElementById('chart').dataset.points) > 0);
  if (opt.sni) {
    await waitFor('the connections table lists a flow with SNI ' + opt.sni, (sni) =>
      Array.from(document.querySelectorAll('#conn-body td')).some((td) => td.textContent === sni), opt.sni);
  }
  if (opt.alert) {
    await waitFor('an alert ' + opt.alert + ' from ' + opt['alert-source'] + ' is listed', ([k, src]) =>
      Array.from(document.querySelectorAll('#alerts li')).some((li) =>
        li.textContent.includes(k) && li.textContent.includes(src || '')), [opt.alert, opt['alert-source']]);
  }
  await page.waitForTimeout(1500);
  await shot('radar-live.png');
  const tip = await hoverBlip(null);
  if (tip) console.log('ok: hovering a blip shows: ' + tip.slice(0, 160));
  else fail('hovering a blip shows no tooltip');
  await shot('radar-hover.png');
  // The filter narrows the table.
  if (opt.sni) {
    await page.fill('#filter', opt.sni.split('.').slice(-2).join('.'));
    await page.waitForTimeout(1300);
    const n = await page.$$eval('#conn-body tr', (r) => r.length);
    if (n < 1) fail('filtering by the domain leaves no row'); else console.log('ok: filter by domain: ' + n + ' row(s)');
    await page.fill('#filter', '');
  }
  if (opt.shot) {
    await page.mouse.move(5, 5);
    await page.waitForTimeout(1200);
    await page.screenshot({ path: opt.shot });
    console.log('screenshot: ' + opt.shot);
  }
} else if (mode === 'xss') {
  for (const h of opt.hostile) {
    await waitFor('the table shows ' + JSON.stringify(h) + ' as text', (s) =>
      Array.from(document.querySelectorAll('#conn-body td')).some((td) => td.textContent === s), h);
  }
  await waitFor('the radar shows blips', () => Number(document.getElementById('radar').dataset.blips) > 0);
  // Hover each blip named by a hostile string: the tooltip shows it literally.
  const named = await page.evaluate(() => (window.__netmonRadar ? window.__netmonRadar() : [])
    .filter((b) => b.name).map((b) => ({ addr: b.addr, name: b.name })));
  let tipOk = 0;
  for (const b of named) {
    if (!opt.hostile.includes(b.name)) continue;
    const tip = await hoverBlip(b.addr);
    if (tip && tip.includes(b.name)) { tipOk++; console.log('ok: tooltip of ' + b.addr + ' shows ' + JSON.stringify(b.name)); }
    else fail('tooltip of ' + b.addr + ' does not show ' + JSON.stringify(b.name) + ': ' + tip);
    await shot('radar-xss-tooltip-' + tipOk + '.png');
  }
  if (!tipOk) fail('no blip carried a hostile name');
  await page.waitForTimeout(1000);
  await shot('radar-xss.png');
  const st = await page.evaluate(() => ({
    xss: window.__xss === undefined ? null : String(window.__xss),
    csp: window.__csp,
    injected: document.querySelectorAll('body img, body svg, body script, body iframe, body object').length,
  }));
  if (st.xss !== null) fail('a script ran: window.__xss = ' + st.xss);
  else console.log('ok: no script ran (window.__xss unset)');
  if (st.injected) fail(st.injected + ' img/svg/script/iframe/object element(s) in the page: markup was injected');
  else console.log('ok: no element was injected');
  if (st.csp.length) fail('CSP violations (something tried to run): ' + st.csp.join(' | '));
  else console.log('ok: no CSP violation');
} else if (mode === 'perf') {
  const seconds = Number(opt.seconds || 15);
  await waitFor('the radar shows blips', () => Number(document.getElementById('radar').dataset.blips) > 0);
  await page.evaluate(() => {
    const p = window.__netmonPerf;
    p.frames.length = 0; p.updates.length = 0; p.endpointUpdates.length = 0; p.longTasks = 0; p.longTaskMs = 0;
    for (const k of Object.keys(p.render)) p.render[k].length = 0;
  });
  const t0 = Date.now();
  let maxBlips = 0; let maxFlows = 0;
  while (Date.now() - t0 < seconds * 1000) {
    await page.waitForTimeout(1000);
    const s = await page.evaluate(() => ({
      blips: Number(document.getElementById('radar').dataset.blips),
      flows: window.__netmonState ? window.__netmonState().activeFlows : 0,
    }));
    maxBlips = Math.max(maxBlips, s.blips); maxFlows = Math.max(maxFlows, s.flows || 0);
  }
  await shot('radar-perf.png');
  const r = await page.evaluate(() => {
    const q = (a, x) => { if (!a.length) return 0; const s = [...a].sort((m, n) => m - n); return s[Math.min(s.length - 1, Math.floor(x * s.length))]; };
    const p = window.__netmonPerf;
    const sum = (a) => a.reduce((m, n) => m + n, 0);
    return {
      frames: p.frames.length,
      frame_ms: { p50: q(p.frames, 0.5), p95: q(p.frames, 0.95), p99: q(p.frames, 0.99), max: Math.max(0, ...p.frames) },
      fps: p.frames.length / (sum(p.frames) / 1000 || 1),
      events: p.updates.length,
      event_ms: { p50: q(p.updates, 0.5), p99: q(p.updates, 0.99), max: Math.max(0, ...p.updates) },
      endpoints_events: p.endpointUpdates.length,
      endpoints_event_ms: { p50: q(p.endpointUpdates, 0.5), max: Math.max(0, ...p.endpointUpdates) },
      long_tasks: p.longTasks, long_task_ms: p.longTaskMs,
      render_ms: Object.fromEntries(Object.entries(p.render).map(([k, a]) => [k, { n: a.length, p50: q(a, 0.5), max: Math.max(0, ...a) }])),
    };
  });
  r.max_blips = maxBlips; r.max_active_flows_exported = maxFlows; r.seconds = seconds;
  console.log('PERF ' + JSON.stringify(r));
  // A very generous sanity bound only: timings belong in benchmarks.
  if (r.frames < seconds * 2) fail('fewer than 2 frames a second: the page is frozen');
  if (r.frame_ms.p50 > 500) fail('median frame time over 500 ms');
}

if (problems.length) { for (const p of problems) fail(p); }
await ctx.close();
rmSync(profile, { recursive: true, force: true });
console.log(failed ? 'RESULT: FAIL' : 'RESULT: PASS');
process.exit(failed ? 1 : 0);
