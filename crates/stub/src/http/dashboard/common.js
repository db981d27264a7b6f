// tickwire dashboards, the shared part (inlined into both pages; no library,
// nothing fetched). Every number shown names the value it shows with a JSON
// pointer (RFC 6901) into the document it came from: data-metric="/engine/cash".
// Shown as: null as "—", a number with data-digits as toFixed(digits), any
// other value as String(value). The browser test checks exactly this rule.
'use strict';
const dash = (() => {
  const unesc = (k) => k.replace(/~1/g, '/').replace(/~0/g, '~');
  const esc = (k) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');
  const ptr = (doc, p) =>
    p.split('/').slice(1).reduce((o, k) => (o == null ? undefined : o[unesc(k)]), doc);
  const show = (v, digits) =>
    v == null ? '—' : typeof v === 'number' && digits != null ? v.toFixed(digits) : String(v);
  // Every [data-metric] under root that shows doc: its nearest [data-doc]
  // is root's (a page shows several documents, each in its own part).
  function render(root, doc) {
    const name = root.closest('[data-doc]').dataset.doc;
    for (const el of root.querySelectorAll('[data-metric]')) {
      if (el.closest('[data-doc]').dataset.doc !== name) continue;
      const d = el.dataset.digits;
      el.textContent = show(ptr(doc, el.dataset.metric), d == null ? null : Number(d));
    }
  }
  const $ = (id) => document.getElementById(id);
  function cell(tr, text, metric, digits) {
    const td = tr.insertCell();
    if (metric != null) td.dataset.metric = metric;
    if (digits != null) td.dataset.digits = digits;
    td.textContent = text ?? '';
    return td;
  }
  // A table body with one row per key of obj (at pointer base), a cell per
  // [field, digits] of cols; filled by render().
  function keyed(tbody, base, obj, cols) {
    tbody.replaceChildren();
    for (const k of Object.keys(obj || {})) {
      const tr = tbody.insertRow();
      cell(tr, k);
      for (const [f, d] of cols) cell(tr, '', `${base}/${esc(k)}${f ? '/' + esc(f) : ''}`, d);
    }
  }
  // The last n samples of each named series, and marks at sample indexes.
  class History {
    constructor(n) { this.n = n; this.t = 0; this.s = {}; this.marks = []; }
    push(values) {
      this.t++;
      for (const [k, v] of Object.entries(values)) (this.s[k] ??= []).push(v);
      for (const a of Object.values(this.s)) while (a.length > this.n) a.shift();
      this.marks = this.marks.filter((m) => m.t > this.t - this.n);
    }
    mark(label, color) { this.marks.push({ t: this.t, label, color }); }
    x(t) { return this.n - 1 - (this.t - t); } // a sample's slot, 0 .. n-1
  }
  function canvas(c) {
    const r = window.devicePixelRatio || 1;
    c.width = c.clientWidth * r; c.height = c.clientHeight * r;
    const g = c.getContext('2d');
    g.scale(r, r); g.font = '11px system-ui, sans-serif';
    return [g, c.clientWidth, c.clientHeight];
  }
  function marks(g, h, w, ht) {
    for (const m of h.marks) {
      const x = (h.x(m.t) / (h.n - 1)) * w;
      g.strokeStyle = g.fillStyle = m.color; g.beginPath(); g.moveTo(x, 0); g.lineTo(x, ht); g.stroke();
      g.fillText(m.label, Math.min(x + 2, w - 60), 11);
    }
  }
  // Lines: [[series, color]] of h, on one scale; marks as vertical lines.
  function lines(c, h, series) {
    const [g, w, ht] = canvas(c);
    const all = series.flatMap(([k]) => h.s[k] || []).filter(Number.isFinite);
    let lo = Math.min(0, ...all), hi = Math.max(0, ...all);
    if (hi === lo) hi = lo + 1;
    const y = (v) => ht - 14 - ((v - lo) / (hi - lo)) * (ht - 28);
    g.strokeStyle = '#ccc'; g.beginPath(); g.moveTo(0, y(0)); g.lineTo(w, y(0)); g.stroke();
    series.forEach(([k, color], i) => {
      const a = h.s[k] || [];
      g.strokeStyle = g.fillStyle = color; g.lineWidth = 1.5; g.beginPath();
      a.forEach((v, j) => {
        const x = ((h.n - a.length + j) / (h.n - 1)) * w;
        j ? g.lineTo(x, y(v)) : g.moveTo(x, y(v));
      });
      g.stroke(); g.lineWidth = 1;
      g.fillText(k, 4 + i * 110, ht - 2);
    });
    g.fillStyle = '#666';
    g.fillText(show(hi, 2), w - 70, 24); g.fillText(show(lo, 2), w - 70, ht - 16);
    marks(g, h, w, ht);
  }
  // A band: one slot per sample, coloured by colors[value] (faint when faint(i)).
  function band(c, h, key, colors, faint) {
    const [g, w, ht] = canvas(c);
    const a = h.s[key] || [], sw = w / h.n;
    a.forEach((v, j) => {
      g.globalAlpha = faint(j, a.length) ? 0.35 : 1;
      g.fillStyle = colors[v] || '#999';
      g.fillRect((h.n - a.length + j) * sw, 16, Math.ceil(sw), ht - 32);
    });
    g.globalAlpha = 1;
    Object.entries(colors).forEach(([k, col], i) => { g.fillStyle = col; g.fillText(k, 4 + i * 60, ht - 2); });
    marks(g, h, w, ht);
  }
  // The stream: handlers by event type, each given the parsed data and the raw text.
  function connect(url, handlers) {
    const es = new EventSource(url);
    const st = $('stream');
    es.onopen = () => { st.textContent = 'live'; st.className = 'ok'; };
    es.onerror = () => { st.textContent = 'reconnecting'; st.className = 'bad'; };
    for (const [type, fn] of Object.entries(handlers)) {
      es.addEventListener(type, (e) => fn(JSON.parse(e.data), e.data, e));
    }
    return es;
  }
  return { ptr, esc, show, render, cell, keyed, History, lines, band, connect, $ };
})();
