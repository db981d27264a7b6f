// End-to-end: the live dashboards in a real browser. `wire-stub` replays the
// built-in day at a steady rate; `decision` runs on it (--wire-url, so it
// keeps serving once the day is over); Chromium opens both dashboards (`/`
// on decision's metrics address and on the stub) while the day runs.
//
//   node tests/browser/dashboard.mjs
//
// Environment:
//   WIRE_STUB    the stub binary (default: <repo>/target/debug/wire-stub)
//   DECISION     the decision binary (default: <repo>/target/debug/decision)
//   CHROMIUM     the browser (default: /usr/bin/chromium)
//   BROWSER_OUT  where the screenshots go (default: ${CARGO_TARGET_DIR:-<repo>/target}/browser)
//
// Every number a page shows names its value with a JSON pointer into the
// document it came from (data-metric="/engine/cash", inside data-doc="metrics");
// the page keeps the documents it last received (window.__last, and their
// raw text in window.__raw). The checks, for each page:
//
// - while the day runs: at three successive `metrics` events, every number
//   on the page equals its value in the page's document (null as "—", with
//   data-digits as toFixed, else String), every pointer names a value; and
//   /metrics.json fetched between two events has the same keys and, for the
//   counters (which only grow), a value between the two events' values.
// - at rest (the day over, the engine at the stub's head, the 10 s message
//   rate down to 0): "the same moment" is sound there, since nothing moves:
//   take the page's document D1, fetch /metrics.json J, wait two more
//   events (each made a second after the one before, so the second was made
//   after J), D2; when D1 and D2 are the same text, nothing changed in
//   between, and J must be that text byte for byte (else, a heartbeat moved
//   a counter: again, up to 5 times). Then the numbers are checked again,
//   the latest decisions on decision's page must be the audit log's last
//   lines, and a screenshot of each page is saved and checked non-empty.
//
// Exits 0 when every test passed; the last line is `browser: N passed, M failed`.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const TARGET_DIR = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
const bin = (env, name) => (process.env[env] ? path.resolve(process.env[env]) : path.join(TARGET_DIR, 'debug', name));
const STUB_BIN = bin('WIRE_STUB', 'wire-stub');
const DECISION_BIN = bin('DECISION', 'decision');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.BROWSER_OUT ? path.resolve(process.env.BROWSER_OUT) : path.join(TARGET_DIR, 'browser');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

const RATE = 500; // events/s: the built-in day (6,347 events) in about 13 s, checked while it runs
const DEADLINE_MS = 100_000;
const TESTS = ['decision dashboard while running', 'decision dashboard at rest', 'wire-stub dashboard while running', 'wire-stub dashboard at rest'];
const COUNTERS = {
  metrics: {
    decision: ['/messages_received', '/engine/events', '/engine/decisions', '/engine/last_event_id', '/reconnect_attempts'],
    stub: ['/head_id', '/events_published', '/events_sent/sse', '/connections_opened/sse'],
  },
};

const started = Date.now();
const log = (msg) => console.log(`browser: ${msg}`);
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const results = [];
const stderrs = {};

const cleanups = [];
let cleaning = null;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
  })());
let dying = false;
function die(message, code = 1) {
  if (dying) return;
  dying = true;
  console.error(`browser: FATAL: ${message}`);
  for (const [name, lines] of Object.entries(stderrs)) console.error(`browser: ${name} stderr:\n${lines.join('').trimEnd()}`);
  const finish = () => {
    const passed = results.filter((r) => r.ok).length;
    console.log(`browser: ${passed} passed, ${TESTS.length - passed} failed`);
    process.exit(code);
  };
  setTimeout(finish, 5000).unref();
  cleanup().finally(finish);
}
setTimeout(() => die(`the run took longer than ${DEADLINE_MS / 1000}s`), DEADLINE_MS).unref();
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) process.on(sig, () => die(`interrupted by ${sig}`, code));
process.on('unhandledRejection', (e) => die(`unhandled rejection: ${e?.stack ?? e}`));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(timer));
}

/** Starts a binary; resolves with the first match of `pattern` in its stdout or stderr. */
async function start(name, file, args, pattern) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  process.on('exit', () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if ((await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 3000))])) === null) child.kill('SIGKILL');
  });
  const lines = (stderrs[name] = []);
  let seen = '';
  const found = new Promise((resolve, reject) => {
    for (const s of [child.stdout, child.stderr]) {
      s.setEncoding('utf8');
      s.on('data', (d) => {
        if (s === child.stderr) lines.push(d);
        seen += d;
        const m = pattern.exec(seen);
        if (m) resolve(m[1]);
      });
    }
    child.once('error', (e) => reject(new Error(`cannot start ${name} (${file}): ${e.message}; build it or set its variable`)));
    exited.then(({ code, signal }) => reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was up`)));
  });
  return { url: await withTimeout(found, 15_000, `${name} start`), child };
}

async function fetchText(url) {
  const res = await withTimeout(fetch(url), 5000, `GET ${url}`);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return res.text();
}

// The rule the pages follow, written again here: a JSON pointer, and how a value is shown.
const ptr = (doc, p) => p.split('/').slice(1).reduce((o, k) => (o == null ? undefined : o[k.replace(/~1/g, '/').replace(/~0/g, '~')]), doc);
const show = (v, digits) => (v == null ? '—' : typeof v === 'number' && digits != null ? v.toFixed(digits) : String(v));

/** What a page shows and what it last received, at one moment (one task of the page). */
const snapshot = (page) =>
  page.evaluate(() => ({
    shown: [...document.querySelectorAll('[data-metric]')].map((el) => ({
      doc: el.closest('[data-doc]').dataset.doc, pointer: el.dataset.metric,
      digits: el.dataset.digits ?? null, text: el.textContent,
    })),
    raw: { ...window.__raw },
    count: { ...window.__count },
    kill: document.getElementById('kill')?.textContent ?? null,
  }));

/** Every number shown equals its value in the document the page holds. */
function checkShown(check, snap, docs) {
  let n = 0;
  for (const s of snap.shown) {
    const v = ptr(docs[s.doc], s.pointer);
    check(v !== undefined, `${s.doc} ${s.pointer}: names nothing in the document`);
    const want = show(v, s.digits == null ? null : Number(s.digits));
    check(s.text === want, `${s.doc} ${s.pointer}: the page shows ${JSON.stringify(s.text)}, the document has ${JSON.stringify(v)} (shown as ${JSON.stringify(want)})`);
    n++;
  }
  return n;
}

const parsed = (snap) => Object.fromEntries(Object.entries(snap.raw).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => JSON.parse(x)) : JSON.parse(v)]));
const waitCount = (page, n) => page.waitForFunction((n) => window.__count.metrics >= n, n, { timeout: 10_000, polling: 20 });
const keys = (o) => JSON.stringify(Object.keys(o).sort());

async function whileRunning(check, note, { page, base, counters, running }) {
  await waitCount(page, 1);
  let checked = 0;
  for (let i = 0; i < 3; i++) {
    const a = await snapshot(page);
    const docsA = parsed(a);
    checked += checkShown(check, a, docsA);
    const j = JSON.parse(await fetchText(`${base}/metrics.json`));
    await waitCount(page, a.count.metrics + 2);
    const b = parsed(await snapshot(page));
    check(keys(j) === keys(docsA.metrics), `/metrics.json keys ${keys(j)} differ from the page's ${keys(docsA.metrics)}`);
    for (const c of counters) {
      const [x, y, z] = [ptr(docsA.metrics, c), ptr(j, c), ptr(b.metrics, c)];
      check(x <= y && y <= z, `${c}: /metrics.json has ${y}, not between the page's ${x} and then ${z}`);
    }
    if (i === 0) check(running(docsA.metrics), `the day was over before the page was checked: ${a.raw.metrics}`);
  }
  note(`${checked} numbers checked over 3 events while the day ran`);
}

/** At rest: D1, /metrics.json, D2 two events later; D1 === D2 means J must be the same text. */
async function atRest(check, note, { page, base, docs, shot, extra }) {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const a = await snapshot(page);
    const fetched = {};
    for (const [name, p] of Object.entries(docs)) fetched[name] = await fetchText(base + p);
    await waitCount(page, a.count.metrics + 2);
    const b = await snapshot(page);
    if (Object.keys(docs).some((name) => a.raw[name] !== b.raw[name])) continue;
    for (const name of Object.keys(docs)) {
      check(fetched[name] === a.raw[name], `${docs[name]} at rest differs from the page's ${name} event:\n  ${fetched[name]}\n  ${a.raw[name]}`);
    }
    const n = checkShown(check, b, parsed(b));
    if (extra) await extra(b);
    await mkdir(OUT, { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    const size = (await stat(shot)).size;
    check(size > 10_000, `${shot}: ${size} bytes`);
    note(`at rest (attempt ${attempt}): ${Object.values(docs).join(' and ')} equal the page's last events byte for byte; ${n} numbers checked; screenshot ${shot} (${size} bytes)`);
    return;
  }
  check(false, 'the figures never stayed still for two events');
}

async function test(name, body) {
  const failures = [];
  const notes = [];
  const check = (ok, message) => (ok || failures.push(message), ok);
  try {
    await body(check, (n) => notes.push(n));
  } catch (e) {
    failures.push(`error: ${e.message}`);
  }
  for (const n of notes) log(`  ${name}: ${n}`);
  log(`${failures.length ? 'FAIL' : 'ok  '} ${name}`);
  for (const f of failures.slice(0, 20)) log(`  ${name}: ${f}`);
  results.push({ name, ok: failures.length === 0 });
}

async function openPage(context, url) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  const pageLog = [];
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  const outside = [];
  page.on('request', (r) => new URL(r.url()).origin !== new URL(url).origin && outside.push(r.url()));
  await page.goto(`${url}/`, { timeout: 15_000 });
  return { page, pageLog, outside };
}

async function main() {
  log(`wire-stub ${STUB_BIN}; decision ${DECISION_BIN}; browser ${CHROMIUM}; screenshots in ${OUT}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tickwire-dashboard-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const profile = path.join(dir, 'chromium');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS,
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false, timeout: 20_000,
  }).catch((e) => { throw new Error(`cannot launch ${CHROMIUM}: ${e.message.split('\n')[0]}`); });
  cleanups.push(() => withTimeout(context.close(), 5000, 'closing the browser'));
  log(`chromium ${context.browser()?.version() ?? ''} up (${elapsed()})`);

  const fixture = (await readFile(path.join(REPO, 'fixtures', 'default.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).length;
  const stub = await start('wire-stub', STUB_BIN, ['--addr', '127.0.0.1:0', '--rate', String(RATE)], /wire-stub listening on (http:\/\/127\.0\.0\.1:\d+)/);
  const audit = path.join(dir, 'audit.jsonl');
  const desk = await start('decision', DECISION_BIN, ['--wire-url', stub.url, '--metrics-addr', '127.0.0.1:0', '--audit-log', audit],
    /dashboard on (http:\/\/127\.0\.0\.1:\d+)\//);
  log(`wire-stub at ${stub.url}, decision's metrics at ${desk.url}, the day's ${fixture} events at ${RATE}/s (${elapsed()})`);
  const deskPage = await openPage(context, desk.url);
  const stubPage = await openPage(context, stub.url);

  await test(TESTS[0], (check, note) =>
    whileRunning(check, note, { page: deskPage.page, base: desk.url, counters: COUNTERS.metrics.decision, running: (d) => (d.engine.last_event_id ?? 0) < fixture }));
  await test(TESTS[2], (check, note) =>
    whileRunning(check, note, { page: stubPage.page, base: stub.url, counters: COUNTERS.metrics.stub, running: (d) => d.head_id < fixture }));

  // Rest: the day published and applied, the message rate (a 10 s window) down to 0.
  await deskPage.page.waitForFunction((n) => {
    const m = window.__last.metrics;
    return m && m.engine.last_event_id === n && m.message_rate === 0 && m.connection_state === 'live';
  }, fixture, { timeout: 45_000, polling: 100 }).catch(() => {});
  log(`at rest (${elapsed()})`);

  await test(TESTS[1], (check, note) =>
    atRest(check, note, {
      page: deskPage.page, base: desk.url, docs: { metrics: '/metrics.json' }, shot: path.join(OUT, 'dashboard-decision.png'),
      extra: async (snap) => {
        const m = JSON.parse(snap.raw.metrics);
        check(m.engine.last_event_id === fixture && m.message_rate === 0, `not at rest: ${snap.raw.metrics}`);
        check(snap.kill === (m.engine.state === 'halted' ? 'TRIPPED' : 'armed'), `kill switch shown as ${snap.kill} in state ${m.engine.state}`);
        // The latest decisions: the audit log's last lines, newest first.
        const lines = (await readFile(audit, 'utf8')).split('\n').filter(Boolean);
        check(lines.length === m.engine.decisions, `audit log ${lines.length} lines, engine ${m.engine.decisions} decisions`);
        const want = lines.slice(-50).reverse();
        const got = snap.raw.decisions ?? [];
        check(got.length === want.length && got.every((l, i) => l === want[i]), `the page's ${got.length} latest decisions are not the audit log's last ${want.length} lines`);
        check(want.length > 0 && snap.shown.filter((s) => s.doc === 'decisions').length === want.length * 9, 'a row of 9 cells per decision');
        note(`${m.engine.decisions} decisions (${m.engine.denials} denied); the page's latest ${got.length} are the audit log's`);
      },
    }));
  await test(TESTS[3], (check, note) =>
    atRest(check, note, {
      page: stubPage.page, base: stub.url, docs: { metrics: '/metrics.json', connections: '/connections' }, shot: path.join(OUT, 'dashboard-wire-stub.png'),
      extra: async (snap) => {
        const conns = JSON.parse(snap.raw.connections);
        check(conns.length === 1 && conns[0].lag === 0, `the engine should be the one client, caught up: ${snap.raw.connections}`);
      },
    }));
  for (const [name, p] of [['decision', deskPage], ['wire-stub', stubPage]]) {
    if (p.outside.length) results.push({ name: `${name} offline`, ok: false }), log(`FAIL ${name} page fetched from elsewhere: ${p.outside.join(', ')}`);
    if (p.pageLog.length) log(`${name} page log:\n${p.pageLog.join('\n')}`);
    if (p.pageLog.some((l) => l.startsWith('pageerror'))) results.push({ name: `${name} script`, ok: false }), log(`FAIL ${name} page script threw`);
  }
  for (const [name, c] of [['wire-stub', stub.child], ['decision', desk.child]]) {
    if (c.exitCode !== null) results.push({ name: `${name} alive`, ok: false }), log(`FAIL ${name} exited early (code ${c.exitCode})`);
  }
  const failed = results.filter((r) => !r.ok).length;
  if (failed) for (const [name, lines] of Object.entries(stderrs)) console.error(`browser: ${name} stderr:\n${lines.join('').trimEnd()}`);
  await withTimeout(cleanup(), 10_000, 'cleanup').catch((e) => log(`cleanup: ${e.message}`));
  log(`done in ${elapsed()}`);
  console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => die(e.message));
