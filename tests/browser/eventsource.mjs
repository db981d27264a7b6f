// End-to-end: a real browser's EventSource, and `curl -N`, read wire-stub's
// SSE stream correctly (shared/design/sse-rules.md: "the browser behaviour is
// the contract").
//
//   node tests/browser/eventsource.mjs
//
// Environment:
//   WIRE_STUB  the stub binary (default: <repo>/target/debug/wire-stub)
//   CHROMIUM   the browser (default: /usr/bin/chromium)
//
// Test 1, eventsource: a page on one origin (a node http server) opens
// `new EventSource(<stub>/stream?cursor=0)` on another origin (the stub, with
// the page's origin on its CORS allow-list). After ~100 events the test drops
// the stream server-side (DELETE /connections/{id}); the browser reconnects by
// itself after the `retry: 1000` hint, sending Last-Event-ID, and the page
// collects 400 events. The ids must be exactly 1..400, in order, across the
// reconnect.
//
// Test 2, curl: `curl -sN -D - --max-time 3 <stub>/stream?cursor=0` shows the
// stream's headers and its first blocks.
//
// Test 3, eventsource reset: a page opens the stream with a cursor from
// another epoch (`?cursor=000000000001-5`); the first message must be the
// `reset` (naming both epochs, its id the new epoch's beginning, so the
// browser's lastEventId moves there), then the new epoch's events in order.
//
// Test 4, eventsource https: a second stub serves TLS (`--tls-cert/--tls-key`,
// a throwaway self-signed certificate for localhost and 127.0.0.1 made here
// with openssl); Chromium trusts exactly that key
// (`--ignore-certificate-errors-spki-list=<base64 sha256 of its SPKI>`, not a
// blanket ignore). The page streams 400 events, ids 1..400 in order, and
// proves HTTP/2: the stub's /connections lists the page's stream as
// `HTTP/2 over TLS`, and the page's own fetches to the stub have
// `nextHopProtocol === 'h2'` in resource timing.
//
// Exits 0 when every test passed; the last line is `browser: N passed, M failed`.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const STUB_BIN = process.env.WIRE_STUB
  ? path.resolve(process.env.WIRE_STUB)
  : path.join(REPO, 'target', 'debug', 'wire-stub');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // CI containers often have a 64 MB /dev/shm; Chromium then crashes.
  '--disable-dev-shm-usage',
];

const RATE = 200; // events per second published by the stub
const TARGET = 400; // events the page collects
const DROP_AFTER = 100; // events received before the server drops the stream
const RETRY_MS = 1000; // the stub's `retry:` hint
const DEADLINE_MS = 50_000; // then give up; with cleanup (5 s at most) the run stays under 60 s

const TESTS = ['eventsource', 'curl -N', 'eventsource reset', 'eventsource https (h2)'];

const started = Date.now();
const log = (msg) => console.log(`browser: ${msg}`);
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------- cleanup --

const cleanups = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort: the next step must still run
      }
    }
  })();
  return cleaning;
}

let dying = false;
function die(message, code = 1) {
  if (dying) return;
  dying = true;
  console.error(`browser: FATAL: ${message}`);
  if (stubStderr.length) console.error(`browser: wire-stub stderr:\n${stubStderr.join('').trimEnd()}`);
  const passed = results.filter((r) => r.ok).length;
  const finish = () => {
    console.log(`browser: ${passed} passed, ${TESTS.length - passed} failed`);
    process.exit(code);
  };
  setTimeout(finish, 5000).unref();
  cleanup().finally(finish);
}

setTimeout(() => die(`the run took longer than ${DEADLINE_MS / 1000}s`), DEADLINE_MS).unref();
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => die(`interrupted by ${sig}`, code));
}
process.on('unhandledRejection', (e) => die(`unhandled rejection: ${e?.stack ?? e}`));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------- stub --

const stubStderr = [];
const results = [];
let stubChild = null;

async function startStub(corsOrigin, extra = []) {
  const args = ['--addr', '127.0.0.1:0', '--rate', String(RATE), '--cors-origin', corsOrigin, ...extra];
  const child = spawn(STUB_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  stubChild = child;
  // Last resort, should the process exit before cleanup has run.
  process.on('exit', () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 3000))]);
    if (done === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => stubStderr.push(d));

  const firstLine = new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('error', (e) =>
      reject(
        new Error(
          e.code === 'ENOENT'
            ? `wire-stub not found at ${STUB_BIN}: build it (cargo build -p stub --bin wire-stub) or set WIRE_STUB`
            : `cannot start wire-stub (${STUB_BIN}): ${e.message}`,
        ),
      ),
    );
    exited.then(({ code, signal }) =>
      reject(new Error(`wire-stub exited (code ${code}, signal ${signal}) before printing its address`)),
    );
  });
  const line = await withTimeout(firstLine, 10_000, 'wire-stub start');
  const m = /^wire-stub listening on (https?:\/\/127\.0\.0\.1:\d+)$/.exec(line.trim());
  if (!m) throw new Error(`unexpected first stdout line from wire-stub: ${JSON.stringify(line)}`);
  return m[1];
}

// ------------------------------------------------------------------- page --

// The page: startStream(stubUrl) opens the EventSource; the page records what
// the browser hands it. The page loads before the stub starts, and the test
// calls startStream as soon as the stub is up, so the first connection's
// backlog stays small and the drop lands near event ${DROP_AFTER}, well before ${TARGET}.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tickwire EventSource e2e</title>
<script>
window.startStream = (stubUrl) => {
const s = window.__sse = {
  pageOrigin: location.origin, stubUrl, target: ${TARGET},
  events: [], opens: [], errors: [], controls: [], messages: 0, after: 0, done: false,
};
const es = new EventSource(s.stubUrl + '/stream?cursor=0');
es.addEventListener('open', () => s.opens.push({ t: performance.now(), n: s.events.length }));
es.addEventListener('error', () =>
  s.errors.push({ t: performance.now(), n: s.events.length, readyState: es.readyState }));
// Every event the stub sends is named, so nothing may reach onmessage.
es.onmessage = () => { s.messages++; };
function onEvent(e) {
  if (s.done) { s.after++; return; }
  let dataId = null, kind = null;
  try { const d = JSON.parse(e.data); dataId = d.id; kind = d.kind; }
  catch (err) { dataId = 'unparseable: ' + err; }
  s.events.push({ type: e.type, lastEventId: e.lastEventId, dataId, kind, origin: e.origin });
  if (s.events.length >= s.target) { s.done = true; es.close(); }
}
es.addEventListener('tick', onEvent);
es.addEventListener('news', onEvent);
for (const c of ['caught_up', 'heartbeat', 'overflow', 'cursor_expired']) {
  es.addEventListener(c, (e) =>
    s.controls.push({ type: c, lastEventId: e.lastEventId, data: e.data, n: s.events.length }));
}
};
// A cursor from another epoch: the stub must answer with a reset first,
// whose id moves the page's lastEventId to the new epoch's beginning, and
// then the new epoch's events.
window.startReset = (stubUrl, cursor, n) => {
  const r = window.__reset = { got: [], done: false };
  const es = new EventSource(stubUrl + '/stream?cursor=' + cursor);
  const push = (e) => {
    if (r.done) return;
    r.got.push({ type: e.type, lastEventId: e.lastEventId, data: e.data });
    if (r.got.length >= n) { r.done = true; es.close(); }
  };
  for (const t of ['reset', 'tick', 'news', 'caught_up']) es.addEventListener(t, push);
};
</script>
`;

async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && new URL(req.url, 'http://x').pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${server.address().port}`;
}

/** A throwaway self-signed certificate for localhost and 127.0.0.1, and the
 * base64 sha256 of its SPKI (what Chromium is told to trust). */
async function makeCert() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tickwire-tls-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const spki = new X509Certificate(await readFile(cert)).publicKey.export({ type: 'spki', format: 'der' });
  return { cert, key, spki: createHash('sha256').update(spki).digest('base64') };
}

async function launchBrowser(spki) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'tickwire-chromium-'));
  cleanups.push(() => rm(profile, { recursive: true, force: true }));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      timeout: 20_000,
    });
  } catch (e) {
    throw new Error(`cannot launch ${CHROMIUM} (set CHROMIUM to another binary): ${e.message.split('\n')[0]}`);
  }
  cleanups.push(() => withTimeout(context.close(), 5000, 'closing the browser'));
  return context;
}

// ------------------------------------------------------------------ tests --

/** Runs one test: `body(check)` calls check(ok, message) for each assertion. */
async function test(name, body) {
  const failures = [];
  const notes = [];
  const details = [];
  const check = (ok, message) => {
    if (!ok) failures.push(message);
    return ok;
  };
  try {
    await body(check, (n) => notes.push(n), (d) => details.push(d));
  } catch (e) {
    failures.push(`error: ${e.message}`);
  }
  for (const n of notes) log(`  ${name}: ${n}`);
  if (failures.length === 0) {
    log(`ok   ${name}`);
  } else {
    log(`FAIL ${name}`);
    for (const f of failures) log(`  ${name}: ${f}`);
    for (const d of details) log(`  ${name}: ${d}`);
  }
  results.push({ name, ok: failures.length === 0 });
}

async function stubJson(stubUrl, pathname, init) {
  const res = await withTimeout(fetch(stubUrl + pathname, init), 5000, `${init?.method ?? 'GET'} ${pathname}`);
  return res;
}

/** Loads the page (before the stub exists) and records the browser's requests to other origins. */
async function openPage(context, pageUrl) {
  const page = await context.newPage();
  const pageLog = [];
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => pageLog.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));

  // What the browser put on the wire for the stream, and what it got back.
  const requests = [];
  const byRequest = new WeakMap();
  page.on('request', (req) => {
    if (new URL(req.url()).origin === new URL(pageUrl).origin) return;
    const entry = { url: req.url(), method: req.method(), type: req.resourceType(), headers: null, response: null };
    requests.push(entry);
    byRequest.set(req, entry);
    entry.headersP = req.allHeaders().then(
      (h) => (entry.headers = h),
      () => {},
    );
  });
  page.on('response', (res) => {
    const entry = byRequest.get(res.request());
    if (!entry) return;
    entry.responseP = res.allHeaders().then(
      (h) => (entry.response = { status: res.status(), headers: h }),
      () => {},
    );
  });

  await page.goto(`${pageUrl}/`, { timeout: 15_000 });
  return { page, pageLog, requests };
}

async function eventsourceTest(check, note, detail, { page, pageLog, requests, stubUrl }) {
  const stubOrigin = new URL(stubUrl).origin;
  await page.evaluate((url) => window.startStream(url), stubUrl);

  // Let ~100 events through, then have the server drop the stream.
  const summary = () =>
    page.evaluate(() => {
      const s = window.__sse;
      return s ? `${s.events.length} events, ${s.opens.length} opens, ${s.errors.length} errors` +
        (s.errors.length ? ` (readyState ${s.errors.at(-1).readyState} after the last)` : '') : 'page script did not run';
    });
  try {
    // Stop waiting at once if the browser gave up (readyState CLOSED).
    await page.waitForFunction(
      (n) => window.__sse.events.length >= n || window.__sse.errors.at(-1)?.readyState === 2,
      DROP_AFTER,
      { timeout: 15_000, polling: 10 },
    );
    if ((await page.evaluate(() => window.__sse.events.length)) < DROP_AFTER) throw new Error('closed');
  } catch {
    detail(`page log:\n${pageLog.join('\n')}`);
    throw new Error(
      `the page did not get ${DROP_AFTER} events: ${await summary()}; ` +
        'readyState 2 (CLOSED) right away means the browser refused the response (CORS, status or content-type)',
    );
  }
  const conns = await (await stubJson(stubUrl, '/connections')).json();
  const sse = conns.filter((c) => c.transport === 'sse');
  if (sse.length !== 1) {
    detail(`page log:\n${pageLog.join('\n')}`);
    throw new Error(
      `GET /connections: expected 1 sse connection, got ${JSON.stringify(conns)}; page: ${await summary()}` +
        ` (${TARGET} events before the drop means the first backlog was too big: a very slow machine)`,
    );
  }
  const del = await stubJson(stubUrl, `/connections/${sse[0].id}`, { method: 'DELETE' });
  check(del.status === 204, `DELETE /connections/${sse[0].id}: status ${del.status}, expected 204`);
  const atDrop = await page.evaluate(() => window.__sse.events.length);
  note(`dropped sse connection ${sse[0].id} (stub had sent up to id ${sse[0].last_id_sent}; page had ${atDrop} events)`);

  try {
    await page.waitForFunction(() => window.__sse.done, null, { timeout: 20_000, polling: 20 });
  } catch {
    // the checks below say what is missing
  }
  const s = await page.evaluate(() => window.__sse);
  await Promise.all(requests.flatMap((r) => [r.headersP, r.responseP]));
  await page.close();

  // Origins: the page and the stub really are different origins (CORS).
  check(
    s.pageOrigin !== stubOrigin,
    `page origin ${s.pageOrigin} must differ from the stub origin ${stubOrigin}`,
  );
  check(
    s.events.every((e) => e.origin === stubOrigin),
    `MessageEvent.origin must be ${stubOrigin}`,
  );

  // Exactly 1..400, in order, no gap, no duplicate.
  check(s.done && s.events.length === TARGET, `expected ${TARGET} events, got ${s.events.length}`);
  const firstBad = s.events.findIndex((e, i) => e.dataId !== i + 1);
  if (firstBad >= 0) {
    const around = s.events.slice(Math.max(0, firstBad - 3), firstBad + 4).map((e) => e.dataId);
    const prev = firstBad > 0 ? s.events[firstBad - 1].dataId : 0;
    const what =
      typeof s.events[firstBad].dataId === 'number' && s.events[firstBad].dataId <= prev
        ? 'duplicate/out of order'
        : 'gap';
    check(false, `event #${firstBad + 1} has id ${s.events[firstBad].dataId}, expected ${firstBad + 1} (${what}; ids around: ${around.join(',')})`);
  }
  // The SSE id is the whole cursor, <epoch>-<id>: one epoch for the whole
  // run (the stub was not restarted), the id the data's.
  const epoch = /^([0-9a-f]{12})-\d+$/.exec(s.events[0]?.lastEventId ?? '')?.[1];
  check(epoch, `lastEventId must be <epoch>-<id>: got ${JSON.stringify(s.events[0]?.lastEventId)}`);
  const badLast = s.events.find((e) => e.lastEventId !== `${epoch}-${e.dataId}`);
  check(!badLast, `lastEventId must be ${epoch}-<data id>: got lastEventId ${JSON.stringify(badLast?.lastEventId)} for id ${badLast?.dataId}`);
  const badType = s.events.find((e) => e.type !== e.kind);
  check(!badType, `event type must equal the data kind: got type ${badType?.type} for kind ${badType?.kind} (id ${badType?.dataId})`);
  check(s.messages === 0, `${s.messages} unnamed events reached onmessage; every event must be named`);
  const bad = s.controls.filter((c) => c.type !== 'caught_up');
  check(bad.length === 0, `unexpected control messages: ${JSON.stringify(bad)}`);

  // The reconnect: one error (readyState CONNECTING, so the browser retries),
  // a second open, after the retry hint.
  check(s.errors.length >= 1, `no error event: the stream was never dropped (events at drop: ${atDrop})`);
  check(s.opens.length >= 2, `the browser did not reconnect: ${s.opens.length} open event(s)`);
  const err = s.errors[0];
  if (err) {
    check(err.readyState === 0, `after the drop readyState is ${err.readyState}, expected 0 (CONNECTING): the browser gave up`);
    check(err.n < TARGET, `the drop came after ${err.n} events, not before ${TARGET}`);
  }
  const reopen = err && s.opens.find((o) => o.t > err.t);
  let delay = null;
  if (reopen) {
    delay = reopen.t - err.t;
    // Chromium's default is 3000 ms: well under it means `retry: 1000` was honoured.
    check(
      delay >= RETRY_MS * 0.9 && delay < 2500,
      `reconnected ${delay.toFixed(0)} ms after the error; expected about ${RETRY_MS} ms (the retry: hint)`,
    );
  }

  // The wire: the first request has no Last-Event-ID, the reconnect sends the
  // last id received, and both were answered 200 text/event-stream with CORS.
  const streams = requests.filter((r) => new URL(r.url).pathname === '/stream');
  check(streams.length >= 2, `expected 2 stream requests, saw ${streams.length}`);
  const lastBeforeDrop = err && err.n > 0 ? s.events[err.n - 1].lastEventId : null;
  if (streams.length >= 2) {
    const [first, second] = streams;
    check(first.type === 'eventsource', `stream request type ${first.type}, expected eventsource`);
    check(first.headers && !('last-event-id' in first.headers), `first request sent Last-Event-ID: ${first.headers?.['last-event-id']}`);
    check(
      second.headers?.['last-event-id'] === lastBeforeDrop,
      `reconnect sent Last-Event-ID ${JSON.stringify(second.headers?.['last-event-id'])}, expected ${JSON.stringify(lastBeforeDrop)}`,
    );
    check(second.url === first.url, `reconnect URL ${second.url} differs from ${first.url}`);
    for (const [i, r] of [first, second].entries()) {
      const h = r.response?.headers ?? {};
      check(r.response?.status === 200, `stream response ${i + 1}: status ${r.response?.status}`);
      check(/^text\/event-stream\b/.test(h['content-type'] ?? ''), `stream response ${i + 1}: content-type ${h['content-type']}`);
      check(
        h['access-control-allow-origin'] === s.pageOrigin,
        `stream response ${i + 1}: access-control-allow-origin ${h['access-control-allow-origin']}, expected ${s.pageOrigin}`,
      );
    }
  }

  note(`page ${s.pageOrigin}, stub ${stubOrigin}`);
  note(
    `${s.events.length} events (ids ${s.events[0]?.dataId}..${s.events.at(-1)?.dataId}; ` +
      `${s.events.filter((e) => e.type === 'tick').length} tick, ${s.events.filter((e) => e.type === 'news').length} news), ` +
      `${s.opens.length} opens, ${s.errors.length} errors, ${s.controls.length} caught_up, ${s.messages} onmessage`,
  );
  if (err) {
    note(
      `dropped after id ${lastBeforeDrop}; reconnect ${delay === null ? 'never' : `after ${delay.toFixed(0)} ms`} ` +
        `with Last-Event-ID ${streams[1]?.headers?.['last-event-id'] ?? '(none)'}`,
    );
  }
  // Expected on success: ERR_INCOMPLETE_CHUNKED_ENCODING (the drop), ERR_ABORTED (close()).
  if (pageLog.length) detail(`page log:\n${pageLog.join('\n')}`);
}

function runCurl(args, ms) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    cleanups.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(e.code === 'ENOENT' ? 'curl not found on PATH' : `curl: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

async function curlTest(check, note, detail, { stubUrl }) {
  const url = `${stubUrl}/stream?cursor=0`;
  // -D - puts the response headers in front of the body on stdout. The stream
  // never ends, so --max-time ends curl: exit 28 is the expected way out.
  const { code, signal, out, err } = await runCurl(['-sN', '--max-time', '3', '-D', '-', url], 10_000);
  check(code === 28 || code === 0, `curl exited with ${code ?? signal}${err ? `: ${err.trim()}` : ''}`);
  const split = out.search(/\r?\n\r?\n/);
  check(split > 0, `no header/body boundary in curl's output (${out.length} bytes)`);
  const head = out.slice(0, split);
  const body = out.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  const headLines = head.split(/\r?\n/);
  check(/^HTTP\/1\.1 200\b/.test(headLines[0]), `status line: ${headLines[0]}`);
  for (const l of headLines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  check(/^text\/event-stream\b/.test(headers['content-type'] ?? ''), `content-type: ${headers['content-type']}`);
  check(headers['cache-control'] === 'no-cache', `cache-control: ${headers['cache-control']}`);
  check(headers['x-accel-buffering'] === 'no', `x-accel-buffering: ${headers['x-accel-buffering']}`);
  check(!headers['content-encoding'], `the stream must not be compressed (content-encoding: ${headers['content-encoding']})`);

  const epoch = headers['tickwire-epoch'] ?? '';
  check(/^[0-9a-f]{12}$/.test(epoch), `tickwire-epoch: ${JSON.stringify(headers['tickwire-epoch'])}`);
  const lines = body.split(/\r\n|\r|\n/);
  check(lines[0] === 'retry: 1000', `first body line ${JSON.stringify(lines[0])}, expected "retry: 1000"`);
  check(lines.includes('event: tick'), 'no "event: tick" line');
  check(lines.includes(`id: ${epoch}-1`), `no "id: ${epoch}-1" line`);
  const data = lines.filter((l) => l.startsWith('data: '));
  check(data.length > 0, 'no data lines');
  // The first event block: event, id 1, data holding id 1.
  const i1 = lines.indexOf(`id: ${epoch}-1`);
  const block = i1 > 0 ? lines.slice(i1 - 1, i1 + 2) : [];
  let firstData = null;
  try {
    firstData = JSON.parse((block[2] ?? '').replace(/^data: /, ''));
  } catch {
    // checked below
  }
  check(
    block[0]?.startsWith('event: ') && firstData?.id === 1 && block[0] === `event: ${firstData?.kind}`,
    `first event block is not event/id: ${epoch}-1/data{id:1}: ${JSON.stringify(block)}`,
  );
  const prefix = `id: ${epoch}-`;
  const idLines = lines.filter((l) => l.startsWith('id: '));
  check(idLines.every((l) => l.startsWith(prefix)), `an id line without the epoch: ${idLines.find((l) => !l.startsWith(prefix))}`);
  const ids = idLines.map((l) => Number(l.slice(prefix.length)));
  check(ids.every((id, i) => id === i + 1), 'curl: ids are not 1, 2, 3, ... in order');
  note(
    `curl exit ${code} (28 = --max-time); ${out.length} bytes; ${data.length} data lines, ids 1..${ids.at(-1)}; ` +
      `headers: content-type: ${headers['content-type']}, cache-control: ${headers['cache-control']}, x-accel-buffering: ${headers['x-accel-buffering']}`,
  );
}

async function resetTest(check, note, detail, { page, pageLog, stubUrl }) {
  const health = await (await stubJson(stubUrl, '/healthz')).json();
  const other = health.epoch === '000000000001' ? '000000000002' : '000000000001';
  await page.evaluate(([url, cursor]) => window.startReset(url, cursor, 21), [stubUrl, `${other}-5`]);
  try {
    await page.waitForFunction(() => window.__reset.done, null, { timeout: 15_000, polling: 20 });
  } catch {
    detail(`page log:\n${pageLog.join('\n')}`);
  }
  const r = await page.evaluate(() => window.__reset);
  await page.close();
  const [first, ...rest] = r.got;
  check(first?.type === 'reset', `the first message must be the reset, got ${JSON.stringify(first)}`);
  const reset = JSON.parse(first?.data ?? '{}');
  check(reset.from === other && reset.epoch === health.epoch, `reset names ${reset.from} -> ${reset.epoch}, expected ${other} -> ${health.epoch}`);
  check(
    first?.lastEventId === `${health.epoch}-${reset.oldest - 1}`,
    `the reset's id must be the new epoch's beginning: lastEventId ${JSON.stringify(first?.lastEventId)}`,
  );
  const events = rest.filter((e) => e.type === 'tick' || e.type === 'news');
  const ids = events.map((e) => JSON.parse(e.data).id);
  check(events.length === 20 && ids.every((id, i) => id === reset.oldest + i), `after the reset: ids ${ids.join(',')}`);
  check(events.every((e, i) => e.lastEventId === `${health.epoch}-${ids[i]}`), 'events after the reset carry the new epoch');
  note(`cursor ${other}-5 on epoch ${health.epoch}: reset (oldest ${reset.oldest}, head ${reset.head}), then ids ${ids[0]}..${ids.at(-1)}`);
}

async function httpsTest(check, note, detail, { page, pageLog, stubUrl }) {
  // The browser's own account of each response's protocol (DevTools
  // protocol): resource timing hides nextHopProtocol from a cross-origin page
  // unless the server sends Timing-Allow-Origin.
  const cdp = await page.context().newCDPSession(page);
  const responses = [];
  cdp.on('Network.responseReceived', (e) =>
    responses.push({ path: new URL(e.response.url).pathname, protocol: e.response.protocol }));
  await cdp.send('Network.enable');
  await page.evaluate((url) => window.startStream(url), stubUrl);
  try {
    await page.waitForFunction(
      (n) => window.__sse.events.length >= n || window.__sse.errors.at(-1)?.readyState === 2,
      DROP_AFTER,
      { timeout: 15_000, polling: 10 },
    );
  } catch {
    // the checks below say what is missing
  }
  // While the stream is open: what the stub saw, and what the page used.
  const seen = await page.evaluate(async (url) => {
    try {
      const conns = await (await fetch(url + '/connections')).json();
      await (await fetch(url + '/healthz')).text();
      const timing = performance.getEntriesByType('resource')
        .filter((e) => e.name.startsWith(url))
        .map((e) => ({ name: new URL(e.name).pathname, protocol: e.nextHopProtocol }));
      return { conns, timing };
    } catch (e) {
      return { error: String(e) };
    }
  }, stubUrl);
  if (seen.error) {
    detail(`page log:\n${pageLog.join('\n')}`);
    throw new Error(`the page could not fetch from the TLS stub: ${seen.error}`);
  }
  const sse = seen.conns.filter((c) => c.transport === 'sse');
  check(sse.length === 1, `GET /connections: expected 1 sse connection, got ${JSON.stringify(seen.conns)}`);
  check(sse[0]?.protocol === 'HTTP/2 over TLS', `the page's stream is ${sse[0]?.protocol}, expected HTTP/2 over TLS`);
  const stream = responses.filter((r) => r.path === '/stream');
  check(stream.length >= 1 && stream.every((r) => r.protocol === 'h2'), `the page's /stream response protocol: ${JSON.stringify(responses)}`);
  // Where resource timing can tell (a same-origin page, or Timing-Allow-Origin), it must say h2 too.
  const fetched = seen.timing.filter((t) => t.name === '/connections' || t.name === '/healthz');
  check(fetched.length === 2, `resource timing for /connections and /healthz: ${JSON.stringify(seen.timing)}`);
  check(
    fetched.every((t) => t.protocol === 'h2' || t.protocol === ''),
    `nextHopProtocol must be h2 where shown: ${JSON.stringify(seen.timing)}`,
  );
  try {
    await page.waitForFunction(() => window.__sse.done, null, { timeout: 20_000, polling: 20 });
  } catch {
    // checked below
  }
  const s = await page.evaluate(() => window.__sse);
  await page.close();
  check(s.done && s.events.length === TARGET, `expected ${TARGET} events, got ${s.events.length}`);
  const firstBad = s.events.findIndex((e, i) => e.dataId !== i + 1);
  check(firstBad < 0, `event #${firstBad + 1} has id ${s.events[firstBad]?.dataId}, expected ${firstBad + 1}`);
  check(s.events.every((e) => e.origin === new URL(stubUrl).origin), `MessageEvent.origin must be ${new URL(stubUrl).origin}`);
  note(
    `${s.events.length} events over ${sse[0]?.protocol} (stub's /connections); browser: ` +
      responses.map((r) => `${r.path} ${r.protocol}`).join(', ') + '; resource timing nextHopProtocol: ' +
      seen.timing.map((t) => `${t.name} ${t.protocol || '(hidden cross-origin)'}`).join(', '),
  );
  if (s.errors.length) detail(`page log:\n${pageLog.join('\n')}`);
}

// ------------------------------------------------------------------- main --

async function main() {
  log(`wire-stub ${STUB_BIN}; browser ${CHROMIUM}`);
  const pageUrl = await startPageServer();
  const tls = await makeCert();
  // Browser up and page loaded before the stub starts publishing (see PAGE).
  const context = await launchBrowser(tls.spki);
  const opened = await openPage(context, pageUrl);
  log(`chromium ${context.browser()?.version() ?? '(version unknown)'} up, page loaded (${elapsed()})`);
  const stubUrl = await startStub(pageUrl);
  log(`wire-stub at ${stubUrl}, page at ${pageUrl} (${elapsed()})`);

  await test('eventsource', (check, note, detail) =>
    eventsourceTest(check, note, detail, { ...opened, stubUrl }),
  );
  await test('curl -N', (check, note, detail) => curlTest(check, note, detail, { stubUrl }));
  await test('eventsource reset', async (check, note, detail) => {
    const opened = await openPage(context, pageUrl);
    await resetTest(check, note, detail, { ...opened, stubUrl });
  });
  await test('eventsource https (h2)', async (check, note, detail) => {
    const opened = await openPage(context, pageUrl);
    const tlsUrl = await startStub(pageUrl, ['--tls-cert', tls.cert, '--tls-key', tls.key]);
    note(`TLS wire-stub at ${tlsUrl}; Chromium trusts SPKI ${tls.spki}`);
    await httpsTest(check, note, detail, { ...opened, stubUrl: tlsUrl });
  });
  if (stubChild && stubChild.exitCode !== null) {
    results.push({ name: 'stub alive', ok: false });
    log(`FAIL wire-stub exited early (code ${stubChild.exitCode})`);
  }
  const failed = results.filter((r) => !r.ok).length;
  if (failed) console.error(`browser: wire-stub stderr:\n${stubStderr.join('').trimEnd()}`);
  await withTimeout(cleanup(), 10_000, 'cleanup').catch((e) => log(`cleanup: ${e.message}`));
  log(`done in ${elapsed()}`);
  console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => die(e.message));
