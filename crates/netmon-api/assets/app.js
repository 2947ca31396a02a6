// netmon radar: the live dashboard. Plain JavaScript, no build step, no dependencies.
//
// Data: one fetch of the current flows, alerts, interfaces and uptime when the stream
// connects, then the live stream /api/v1/events (read with fetch() so that the bearer token
// goes in a header, never in a URL). Every string from the network is put in the page with
// textContent or drawn on a canvas: never parsed as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'netmon-token';
  const SERIES_MAX = 300; // points kept for the chart (one per second)
  const ENDED_MAX = 400; // ended flows kept for the table
  const ENDED_SHOW_MS = 120000;
  const FADE_MS = 4000; // an endpoint gone from the reports fades over this
  const FLASH_MS = 1200;
  const QUEUE_MAX = 4000; // unprocessed events kept; beyond, the oldest ended flows are skipped
  const ROWS_MAX = 120;
  const APP_COLOURS = {
    tls: '#4ea1ff', http: '#ffb84e', dns: '#7ee787', quic: '#c792ea', ssh: '#ff7b72',
    stun: '#f2cc60', dtls: '#e3b341', ntp: '#56d4dd', dhcp: '#a5d6ff', smtp: '#db61a2',
  };
  const OTHER_COLOUR = '#8b949e';

  const st = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    blips: new Map(), // addr -> endpoint blip
    flows: new Map(), // id -> active flow brief
    flowsByAddr: new Map(), // addr -> [brief]
    ended: [], // newest last: {..brief, endedAt}
    seenFlows: new Set(),
    domainBytes: new Map(), // ended flows' bytes per domain
    hostBytes: new Map(), // ended flows' bytes per remote host
    alerts: new Map(), // id -> alert event, latest state
    series: [], // {t, ifaces: {key: {in, out, total: [w1,w10,w60], pps: [...], active}}}
    pendingRates: null,
    snapshot: null,
    win: 1,
    iface: 'all',
    sort: { k: 'rate', asc: false },
    filter: '',
    connected: false,
    everConnected: false,
    interfaces: [],
    uptimeBase: null, // [daemon uptime s, Date.now()]
    lastEvent: 0,
    queue: [],
    skipped: 0,
    dirty: { table: true, side: true, chart: true, alerts: true },
    pinned: null,
    hover: null,
    sweep: 0,
  };
  // Measurements the browser test reads (frame deltas, event handling times, long tasks).
  const perf = { frames: [], updates: [], endpointUpdates: [], longTasks: 0, longTaskMs: 0, events: 0,
    render: { radar: [], chart: [], table: [], side: [] } };
  function timed(k, f) {
    const t0 = performance.now(); f();
    const a = perf.render[k]; a.push(performance.now() - t0); if (a.length > 20000) a.shift();
  }
  window.__netmonPerf = perf;
  // Read-only views for tests and the console: blip positions (canvas pixels) and counts.
  window.__netmonRadar = () => Array.from(st.blips.values()).filter((b) => !b.gone && b.x !== undefined)
    .map((b) => ({ addr: b.addr, x: b.x, y: b.y, name: b.name || null, app: b.app || null }));
  window.__netmonState = () => ({ activeFlows: st.activeFlows || 0, blips: st.blips.size, flows: st.flows.size });
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) { perf.longTasks++; perf.longTaskMs += e.duration; }
    }).observe({ entryTypes: ['longtask'] });
  } catch (_) { /* not supported */ }

  // ---------------------------------------------------------------- helpers
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function hash32(s) { // FNV-1a
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
    return h >>> 0;
  }
  function fmtBits(bps) {
    const u = ['b/s', 'kb/s', 'Mb/s', 'Gb/s', 'Tb/s'];
    let i = 0; let v = bps;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return (v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
  }
  function fmtBytes(b) {
    const u = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0; let v = b;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return (v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
  }
  function fmtDur(ns) {
    const s = ns / 1e9;
    if (s < 1) return (s * 1000).toFixed(0) + ' ms';
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.floor(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  }
  function hostPort(ip, port) {
    if (port === null || port === undefined) return ip;
    return ip.includes(':') ? '[' + ip + ']:' + port : ip + ':' + port;
  }
  function colour(app) { return (app && APP_COLOURS[app]) || OTHER_COLOUR; }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---------------------------------------------------------------- token and requests
  function headers() {
    const h = { Accept: 'application/json' };
    if (st.token) h.Authorization = 'Bearer ' + st.token;
    return h;
  }
  class AuthError extends Error {}
  async function api(path) {
    const r = await fetch(path, { headers: headers(), cache: 'no-store', credentials: 'omit' });
    if (r.status === 401) throw new AuthError('unauthorized');
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r;
  }
  let loginWaiter = null;
  function askToken(message) {
    $('login').classList.remove('hidden');
    $('login-error').textContent = message || '';
    $('token').focus();
    return new Promise((resolve) => { loginWaiter = resolve; });
  }
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    st.token = $('token').value.trim();
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, st.token);
    $('login').classList.add('hidden');
    if (loginWaiter) { const w = loginWaiter; loginWaiter = null; w(); }
  });

  // ---------------------------------------------------------------- initial state
  async function loadInitial() {
    const [flows, alerts] = await Promise.all([
      api('/api/v1/flows?limit=1000').then((r) => r.json()),
      api('/api/v1/alerts?limit=200').then((r) => r.json()),
    ]);
    // Until the first endpoints event (within a second) replaces them.
    for (const rec of flows) {
      if (st.flows.has(rec.id)) continue;
      st.seenFlows.add(rec.id);
      const b = recordToBrief(rec);
      st.flows.set(rec.id, b);
    }
    st.dirty.table = st.dirty.side = true;
    for (const a of alerts.reverse()) applyAlert(a);
    loadStatus();
  }
  async function loadStatus() {
    try {
      st.interfaces = await (await api('/api/v1/interfaces')).json();
      updateIfaceSelect();
      const m = await (await api('/metrics')).text();
      const line = m.split('\n').find((l) => l.startsWith('netmon_uptime_seconds '));
      if (line) st.uptimeBase = [parseFloat(line.split(' ')[1]) || 0, Date.now()];
    } catch (_) { /* the status line shows what it has */ }
  }

  // ---------------------------------------------------------------- the live stream
  async function stream() {
    let backoff = 500;
    for (;;) {
      let reader = null;
      try {
        const r = await fetch('/api/v1/events?types=flow_ended,alert,stats,endpoints', {
          headers: headers(), cache: 'no-store', credentials: 'omit',
        });
        if (r.status === 401) {
          setConnected(false, true);
          await askToken(st.token ? 'That token was refused.' : '');
          continue;
        }
        if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
        setConnected(true);
        backoff = 500;
        loadInitial().catch(() => {});
        reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            parseBlock(block);
          }
          if (buf.length > 64 * 1024 * 1024) buf = ''; // never grow without bound
        }
      } catch (e) {
        if (e instanceof AuthError) { await askToken('That token was refused.'); continue; }
      }
      setConnected(false);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
  function parseBlock(block) {
    let type = 'message'; let data = '';
    for (const raw of block.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'event') type = v;
      else if (field === 'data') data = data ? data + '\n' + v : v;
    }
    if (!data) return;
    st.lastEvent = Date.now();
    if (type === 'flow_ended' && st.queue.length >= QUEUE_MAX) { st.skipped++; return; }
    st.queue.push([type, data]);
  }
  // Events are applied in slices of at most ~6 ms per frame, so a burst never freezes the page.
  function drain() {
    const t0 = performance.now();
    while (st.queue.length && performance.now() - t0 < 6) {
      const [type, data] = st.queue.shift();
      const u0 = performance.now();
      try { applyEvent(type, JSON.parse(data)); } catch (_) { /* a bad event is skipped */ }
      const dt = performance.now() - u0;
      perf.events++;
      if (perf.updates.length < 100000) perf.updates.push(dt);
      if (type === 'endpoints') perf.endpointUpdates.push(dt);
    }
  }
  function applyEvent(type, d) {
    if (type === 'endpoints') applyEndpoints(d);
    else if (type === 'stats') applyStats(d);
    else if (type === 'alert') applyAlert(d);
    else if (type === 'flow_ended') applyEnded(d);
  }

  function setConnected(ok, auth) {
    st.connected = ok;
    if (ok) st.everConnected = true;
    const b = $('banner');
    if (ok || auth) b.classList.add('hidden');
    else {
      b.textContent = st.everConnected
        ? 'Live stream disconnected: reconnecting…'
        : 'Cannot reach the daemon\'s live stream: retrying…';
      b.classList.remove('hidden');
    }
    renderStatus();
  }

  // ---------------------------------------------------------------- applying events
  function applyEndpoints(rep) {
    const now = performance.now();
    const present = new Set();
    for (const ep of rep.endpoints || []) {
      const addr = String(ep.addr);
      present.add(addr);
      let b = st.blips.get(addr);
      if (!b) {
        const h = hash32(addr);
        b = { addr, angle: (h / 4294967296) * Math.PI * 2, jitter: ((h >>> 7) % 1000) / 1000,
          born: now, flash: now };
        st.blips.set(addr, b);
      }
      b.gone = 0;
      b.scope = ep.scope; b.app = ep.app; b.name = ep.name;
      b.rateIn = ep.rate_in; b.rateOut = ep.rate_out;
      b.bytesIn = ep.bytes_in; b.bytesOut = ep.bytes_out; b.nflows = ep.flows;
    }
    for (const b of st.blips.values()) {
      if (!present.has(b.addr) && !b.gone) b.gone = now;
    }
    const flows = new Map();
    const byAddr = new Map();
    for (const f of rep.flows || []) {
      f.remote_ip = String(f.remote_ip); f.local_ip = String(f.local_ip);
      if (!st.seenFlows.has(f.id)) {
        f.isNew = now;
        st.seenFlows.add(f.id);
        const b = st.blips.get(f.remote_ip);
        if (b && now - b.born > 500) b.flash = now;
      } else {
        const old = st.flows.get(f.id);
        if (old && old.isNew && now - old.isNew < 3000) f.isNew = old.isNew;
      }
      flows.set(f.id, f);
      let l = byAddr.get(f.remote_ip);
      if (!l) { l = []; byAddr.set(f.remote_ip, l); }
      l.push(f);
    }
    if (st.seenFlows.size > 200000) st.seenFlows = new Set(flows.keys());
    st.flows = flows;
    st.flowsByAddr = byAddr;
    st.activeFlows = rep.active_flows;
    st.endpointsTotal = rep.endpoints_total;
    st.pendingRates = rep;
    pushSeries();
    st.dirty.table = st.dirty.side = true;
  }
  function applyStats(s) {
    st.snapshot = s;
    pushSeries();
    st.dirty.side = true;
  }
  // One chart point per second: the latest endpoint rates (in/out) and the latest snapshot.
  function pushSeries() {
    const t = Date.now();
    const last = st.series[st.series.length - 1];
    if (last && t - last.t < 800) { fillPoint(last); return; }
    const p = { t, ifaces: {} };
    fillPoint(p);
    st.series.push(p);
    if (st.series.length > SERIES_MAX) st.series.shift();
    st.dirty.chart = true;
  }
  function fillPoint(p) {
    const rep = st.pendingRates;
    if (rep) {
      const all = p.ifaces.all || (p.ifaces.all = {});
      all.in = rep.rate_in * 8; all.out = rep.rate_out * 8;
      for (const i of rep.ifaces || []) {
        const x = p.ifaces[i.iface] || (p.ifaces[i.iface] = {});
        x.in = i.rate_in * 8; x.out = i.rate_out * 8;
      }
    }
    const s = st.snapshot;
    if (s) {
      const sum = { total: [], pps: [], active: 0 };
      for (const ifc of s.ifaces || []) {
        const row = (ifc.protos || []).find((r) => r.layer === 'all');
        if (!row) continue;
        const x = p.ifaces[ifc.iface] || (p.ifaces[ifc.iface] = {});
        x.total = row.windows.map((w) => w.bps);
        x.pps = row.windows.map((w) => w.pps);
        x.active = row.active_flows;
        row.windows.forEach((w, k) => {
          sum.total[k] = (sum.total[k] || 0) + w.bps;
          sum.pps[k] = (sum.pps[k] || 0) + w.pps;
        });
        sum.active += row.active_flows;
      }
      const all = p.ifaces.all || (p.ifaces.all = {});
      all.total = sum.total; all.pps = sum.pps; all.active = sum.active;
      p.windows = s.windows;
    }
    st.dirty.chart = true;
  }
  function applyAlert(ev) {
    if (!ev || !ev.alert) return;
    st.alerts.set(ev.alert.id, ev);
    if (st.alerts.size > 500) st.alerts.delete(st.alerts.keys().next().value);
    st.dirty.alerts = true;
  }
  function recordName(r) {
    if (r.sni) return r.sni;
    for (const h of r.http || []) if (h.host) return h.host;
    for (const d of r.dns || []) if (d.query) return d.query;
    return r.domain || null;
  }
  function recordToBrief(r) {
    const src = String(r.src_ip); const dst = String(r.dst_ip);
    // Orientation: the side the radar knows as a remote endpoint, else the responder.
    const outbound = !(st.blips.has(src) && !st.blips.has(dst));
    return {
      id: r.id, proto: r.proto, outbound, app: r.app, name: recordName(r), state: r.state,
      local_ip: outbound ? src : dst, local_port: outbound ? r.src_port : r.dst_port,
      remote_ip: outbound ? dst : src, remote_port: outbound ? r.dst_port : r.src_port,
      bytes_in: outbound ? r.bytes_s2c : r.bytes_c2s, bytes_out: outbound ? r.bytes_c2s : r.bytes_s2c,
      rate_in: 0, rate_out: 0, duration_ns: r.duration_ns, first_seen: r.first_seen,
    };
  }
  function addEnded(b, countBytes) {
    b.endedAt = Date.now();
    st.ended.push(b);
    if (st.ended.length > ENDED_MAX) st.ended.splice(0, st.ended.length - ENDED_MAX);
    if (countBytes) {
      const bytes = (b.bytes_in || 0) + (b.bytes_out || 0);
      st.hostBytes.set(b.remote_ip, (st.hostBytes.get(b.remote_ip) || 0) + bytes);
      if (b.name) st.domainBytes.set(b.name, (st.domainBytes.get(b.name) || 0) + bytes);
      for (const m of [st.hostBytes, st.domainBytes]) {
        if (m.size > 5000) m.delete(m.keys().next().value);
      }
    }
    st.dirty.table = st.dirty.side = true;
  }
  function applyEnded(r) {
    st.flows.delete(r.id);
    addEnded(recordToBrief(r), true);
  }

  // ---------------------------------------------------------------- radar
  const radar = $('radar');
  const rctx = radar.getContext('2d');
  let rsize = 0; let bg = null;
  function resizeRadar() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, Math.floor(radar.clientWidth * dpr));
    if (w === rsize) return;
    rsize = w; radar.width = w; radar.height = w;
    bg = document.createElement('canvas'); bg.width = w; bg.height = w;
    const g = bg.getContext('2d');
    const c = w / 2; const R = w / 2 - 6 * dpr;
    g.fillStyle = '#0b1410'; g.beginPath(); g.arc(c, c, R, 0, Math.PI * 2); g.fill();
    g.strokeStyle = '#1f3d2a'; g.lineWidth = dpr;
    for (const f of [RING.local[1], RING.internal[1], 1]) {
      g.beginPath(); g.arc(c, c, R * f, 0, Math.PI * 2); g.stroke();
    }
    for (let a = 0; a < 12; a++) {
      const t = (a / 12) * Math.PI * 2;
      g.beginPath(); g.moveTo(c, c); g.lineTo(c + Math.cos(t) * R, c + Math.sin(t) * R); g.stroke();
    }
    g.fillStyle = '#3fb950'; g.beginPath(); g.arc(c, c, 4 * dpr, 0, Math.PI * 2); g.fill();
    g.font = (10 * dpr) + 'px sans-serif'; g.fillStyle = '#2f6f45';
    g.fillText('own', c + 4 * dpr, c - R * RING.local[1] + 12 * dpr);
    g.fillText('internal', c + 4 * dpr, c - R * RING.internal[1] + 12 * dpr);
    g.fillText('external', c + 4 * dpr, c - R + 12 * dpr);
  }
  // Ring bands as fractions of the radius: [inner, outer].
  const RING = { local: [0.07, 0.24], internal: [0.28, 0.6], external: [0.64, 0.96] };
  function blipGeom(b) {
    const dpr = window.devicePixelRatio || 1;
    const c = rsize / 2; const R = rsize / 2 - 6 * dpr;
    const band = RING[b.scope] || RING.external;
    const rr = R * (band[0] + (band[1] - band[0]) * (0.15 + 0.7 * b.jitter));
    const rate = (b.rateIn || 0) + (b.rateOut || 0);
    const size = (2.5 + Math.min(14, Math.log2(1 + rate * 8 / 2000) * 1.4)) * dpr;
    return [c + Math.cos(b.angle) * rr, c + Math.sin(b.angle) * rr, size];
  }
  function drawRadar(now) {
    resizeRadar();
    const w = rsize; const c = w / 2; const dpr = window.devicePixelRatio || 1;
    rctx.clearRect(0, 0, w, w);
    rctx.drawImage(bg, 0, 0);
    // The sweep.
    st.sweep = (now / 4000) * Math.PI * 2;
    const R = w / 2 - 6 * dpr;
    const grad = rctx.createConicGradient ? rctx.createConicGradient(st.sweep - 0.6, c, c) : null;
    if (grad) {
      grad.addColorStop(0, 'rgba(63,185,80,0)');
      grad.addColorStop(0.095, 'rgba(63,185,80,0.16)');
      grad.addColorStop(0.096, 'rgba(63,185,80,0)');
      rctx.fillStyle = grad;
      rctx.beginPath(); rctx.arc(c, c, R, 0, Math.PI * 2); rctx.fill();
    }
    let shown = 0;
    for (const b of st.blips.values()) {
      let alpha = 1;
      if (b.gone) {
        alpha = 1 - (now - b.gone) / FADE_MS;
        if (alpha <= 0) { st.blips.delete(b.addr); continue; }
      }
      const [x, y, s] = blipGeom(b);
      b.x = x; b.y = y; b.s = s;
      rctx.globalAlpha = Math.max(0.08, alpha * 0.9);
      rctx.fillStyle = colour(b.app);
      rctx.beginPath(); rctx.arc(x, y, s, 0, Math.PI * 2); rctx.fill();
      const fl = now - b.flash;
      if (fl < FLASH_MS) {
        rctx.globalAlpha = 1 - fl / FLASH_MS;
        rctx.strokeStyle = '#ffffff'; rctx.lineWidth = 1.5 * dpr;
        rctx.beginPath(); rctx.arc(x, y, s + (fl / FLASH_MS) * 12 * dpr, 0, Math.PI * 2); rctx.stroke();
      }
      if (b === st.hover || b === st.pinned) {
        rctx.globalAlpha = 1; rctx.strokeStyle = '#ffffff'; rctx.lineWidth = 2 * dpr;
        rctx.beginPath(); rctx.arc(x, y, s + 3 * dpr, 0, Math.PI * 2); rctx.stroke();
      }
      if (!b.gone) shown++;
    }
    rctx.globalAlpha = 1;
    radar.dataset.blips = String(shown);
  }
  function blipAt(ev) {
    const r = radar.getBoundingClientRect();
    const k = rsize / r.width;
    const x = (ev.clientX - r.left) * k; const y = (ev.clientY - r.top) * k;
    let best = null; let bd = Infinity;
    for (const b of st.blips.values()) {
      if (b.x === undefined) continue;
      const d = Math.hypot(b.x - x, b.y - y);
      if (d < b.s + 5 * k && d < bd) { best = b; bd = d; }
    }
    return best;
  }
  function showTooltip(b, ev) {
    const tip = $('tooltip');
    tip.replaceChildren();
    tip.appendChild(el('div', 'h', b.addr + (b.name ? '  ' + b.name : '')));
    tip.appendChild(el('div', 'd', b.scope + ' · ' + (b.app || 'unknown app') + ' · ' + b.nflows
      + ' flow(s) · in ' + fmtBits((b.rateIn || 0) * 8) + ' · out ' + fmtBits((b.rateOut || 0) * 8)));
    const flows = st.flowsByAddr.get(b.addr) || [];
    const geo = flows.map((f) => f.geo).find((g) => g);
    if (geo) tip.appendChild(el('div', 'd', geo));
    if (flows.length) {
      const t = el('table');
      const hr = el('tr');
      for (const h of ['local', 'remote', 'app', 'domain / SNI', 'process', 'tracker', 'in', 'out', 'duration']) hr.appendChild(el('th', null, h));
      t.appendChild(hr);
      for (const f of flows) {
        const tr = el('tr');
        tr.appendChild(el('td', null, hostPort(f.local_ip, f.local_port)));
        tr.appendChild(el('td', null, f.proto + ' ' + hostPort(f.remote_ip, f.remote_port)));
        tr.appendChild(el('td', null, f.app || ''));
        tr.appendChild(el('td', null, f.name || ''));
        tr.appendChild(el('td', null, f.process || '–'));
        tr.appendChild(el('td', null, f.tracker || ''));
        tr.appendChild(el('td', 'num', fmtBytes(f.bytes_in)));
        tr.appendChild(el('td', 'num', fmtBytes(f.bytes_out)));
        tr.appendChild(el('td', 'num', fmtDur(f.duration_ns)));
        t.appendChild(tr);
      }
      tip.appendChild(t);
      if (b.nflows > flows.length) tip.appendChild(el('div', 'd', '(its ' + flows.length + ' busiest of ' + b.nflows + ' flows)'));
    }
    tip.classList.remove('hidden');
    const wrap = $('radar-wrap').getBoundingClientRect();
    let x = ev.clientX - wrap.left + 14; let y = ev.clientY - wrap.top + 14;
    if (x + tip.offsetWidth > wrap.width) x = Math.max(0, ev.clientX - wrap.left - tip.offsetWidth - 14);
    if (y + tip.offsetHeight > wrap.height) y = Math.max(0, ev.clientY - wrap.top - tip.offsetHeight - 14);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  radar.addEventListener('mousemove', (ev) => {
    if (st.pinned) return;
    const b = blipAt(ev);
    st.hover = b;
    if (b) showTooltip(b, ev); else $('tooltip').classList.add('hidden');
  });
  radar.addEventListener('mouseleave', () => { if (!st.pinned) { st.hover = null; $('tooltip').classList.add('hidden'); } });
  radar.addEventListener('click', (ev) => {
    const b = blipAt(ev);
    st.pinned = b && b !== st.pinned ? b : null;
    $('tooltip').classList.toggle('pinned', !!st.pinned);
    if (st.pinned) { showTooltip(b, ev); $('filter').value = b.addr; st.filter = b.addr; st.dirty.table = true; }
    else $('tooltip').classList.add('hidden');
  });
  function legend() {
    const l = $('legend');
    for (const [app, c] of Object.entries(APP_COLOURS).concat([['other', OTHER_COLOUR]])) {
      const s = el('span');
      const sw = el('span', 'sw'); sw.style.background = c;
      s.appendChild(sw); s.appendChild(document.createTextNode(app));
      l.appendChild(s);
    }
    l.appendChild(el('span', null, 'size: current bandwidth · white ring: new flow · fading: ended'));
  }

  // ---------------------------------------------------------------- bandwidth chart
  const chart = $('chart');
  const cctx = chart.getContext('2d');
  function seriesValue(p, key) {
    const x = p.ifaces[st.iface];
    if (!x) return undefined;
    const k = winIndex(p);
    if (key === 'total') return x.total ? x.total[k] : undefined;
    return x[key];
  }
  function winIndex(p) {
    const ws = p.windows || (st.snapshot && st.snapshot.windows) || [1, 10, 60];
    const k = ws.indexOf(st.win);
    return k < 0 ? 0 : k;
  }
  // In/out come once a second; over a 10 s or 60 s window the chart shows their moving mean.
  function smoothed(key) {
    const out = new Array(st.series.length);
    let sum = 0; let n = 0; const q = [];
    for (let i = 0; i < st.series.length; i++) {
      const v = seriesValue(st.series[i], key);
      q.push(v); if (v !== undefined) { sum += v; n++; }
      if (q.length > st.win) { const o = q.shift(); if (o !== undefined) { sum -= o; n--; } }
      out[i] = n ? sum / n : undefined;
    }
    return out;
  }
  function drawChart() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.floor(chart.clientWidth * dpr); const h = Math.floor(chart.clientHeight * dpr);
    if (chart.width !== w || chart.height !== h) { chart.width = w; chart.height = h; }
    cctx.clearRect(0, 0, w, h);
    const lines = [['in', '#4ea1ff', smoothed('in')], ['out', '#ffb84e', smoothed('out')],
      ['total', '#8b949e', st.series.map((p) => seriesValue(p, 'total'))]];
    let max = 1000; let points = 0;
    for (const [, , v] of lines) for (const x of v) if (x !== undefined) { max = Math.max(max, x); points++; }
    max *= 1.15;
    const padL = 64 * dpr; const padB = 4 * dpr; const ph = h - padB - 4 * dpr; const pw = w - padL - 4 * dpr;
    cctx.font = (10 * dpr) + 'px sans-serif'; cctx.fillStyle = '#8b949e'; cctx.strokeStyle = '#21262d'; cctx.lineWidth = dpr;
    for (let g = 0; g <= 4; g++) {
      const y = 4 * dpr + ph - (ph * g) / 4;
      cctx.beginPath(); cctx.moveTo(padL, y); cctx.lineTo(w, y); cctx.stroke();
      cctx.fillText(fmtBits((max * g) / 4), 2 * dpr, y + 3 * dpr);
    }
    // The x axis spans at least a minute, growing to SERIES_MAX seconds.
    const n = Math.max(60, st.series.length);
    const x0 = padL + pw * (1 - st.series.length / n);
    for (const [, col, v] of lines) {
      cctx.strokeStyle = col; cctx.lineWidth = 1.6 * dpr; cctx.beginPath();
      let started = false;
      v.forEach((val, i) => {
        if (val === undefined) { started = false; return; }
        const x = x0 + (pw * i) / n; const y = 4 * dpr + ph - (ph * val) / max;
        if (started) cctx.lineTo(x, y); else { cctx.moveTo(x, y); started = true; }
      });
      cctx.stroke();
    }
    chart.dataset.points = String(points);
    // The numbers under the chart.
    const p = st.series[st.series.length - 1];
    const r = $('rates'); r.replaceChildren();
    const item = (cls, label, v) => { const s = el('span', cls); s.appendChild(document.createTextNode(label + ' ')); s.appendChild(el('b', null, v)); r.appendChild(s); };
    const last = (arr) => { for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== undefined) return arr[i]; return 0; };
    item('in', 'in', fmtBits(last(lines[0][2])));
    item('out', 'out', fmtBits(last(lines[1][2])));
    item('total', 'total (' + st.win + ' s)', fmtBits(last(lines[2][2])));
    const x = p && p.ifaces[st.iface];
    const pps = x && x.pps ? x.pps[winIndex(p)] : 0;
    item('', 'packets/s', (pps || 0).toFixed(pps < 10 ? 1 : 0));
    item('', 'active flows', String(x && x.active !== undefined ? x.active : (st.activeFlows || 0)));
  }
  for (const b of document.querySelectorAll('button.win')) {
    b.addEventListener('click', () => {
      st.win = parseInt(b.dataset.win, 10) || 1;
      for (const o of document.querySelectorAll('button.win')) o.classList.toggle('active', o === b);
      st.dirty.chart = st.dirty.side = true;
    });
  }
  $('iface').addEventListener('change', (ev) => { st.iface = ev.target.value; st.dirty.chart = st.dirty.side = true; });
  function updateIfaceSelect() {
    const sel = $('iface');
    const want = ['all'].concat(st.interfaces.map((i) => String(i.index)));
    const have = Array.from(sel.options).map((o) => o.value);
    if (want.join() === have.join()) return;
    sel.replaceChildren(el('option', null, 'all interfaces'));
    sel.options[0].value = 'all';
    for (const i of st.interfaces) { const o = el('option', null, i.name); o.value = String(i.index); sel.appendChild(o); }
    sel.value = want.includes(st.iface) ? st.iface : 'all';
  }

  // ---------------------------------------------------------------- side panels
  function bars(target, rows) {
    const box = $(target); box.replaceChildren();
    const max = Math.max(1, ...rows.map((r) => r[1]));
    for (const [k, v] of rows.slice(0, 10)) {
      const row = el('div', 'row');
      row.appendChild(el('span', 'k', k));
      const tr = el('div', 'track'); const f = el('div', 'fill');
      f.style.width = ((100 * v) / max).toFixed(1) + '%'; f.style.background = colour(k);
      tr.appendChild(f); row.appendChild(tr);
      row.appendChild(el('span', 'v', fmtBits(v)));
      box.appendChild(row);
    }
    if (!rows.length) box.appendChild(el('div', 'hint', 'no traffic in the last ' + st.win + ' s'));
  }
  function renderSide() {
    const s = st.snapshot;
    if (s) {
      const k = Math.max(0, (s.windows || []).indexOf(st.win));
      const acc = { l4: new Map(), app: new Map() };
      for (const ifc of s.ifaces || []) {
        if (st.iface !== 'all' && String(ifc.iface) !== st.iface) continue;
        for (const p of ifc.protos || []) {
          const m = acc[p.layer]; if (!m) continue;
          const w = p.windows[k]; if (!w || !w.bps) continue;
          m.set(p.proto, (m.get(p.proto) || 0) + w.bps);
        }
      }
      bars('proto-l4', Array.from(acc.l4).sort((a, b) => b[1] - a[1]));
      bars('proto-app', Array.from(acc.app).sort((a, b) => b[1] - a[1]));
    }
    const hosts = new Map(st.hostBytes); const domains = new Map(st.domainBytes);
    for (const f of st.flows.values()) {
      const by = f.bytes_in + f.bytes_out;
      hosts.set(f.remote_ip, (hosts.get(f.remote_ip) || 0) + by);
      if (f.name) domains.set(f.name, (domains.get(f.name) || 0) + by);
    }
    for (const [id, m] of [['top-hosts', hosts], ['top-domains', domains]]) {
      const ol = $(id); ol.replaceChildren();
      const top = Array.from(m).sort((a, b) => b[1] - a[1]).slice(0, 10);
      for (const [k, v] of top) {
        const li = el('li'); li.appendChild(el('span', 'v', fmtBytes(v)));
        li.appendChild(document.createTextNode(k)); li.title = k; ol.appendChild(li);
      }
      if (!top.length) ol.appendChild(el('li', 'hint', 'nothing yet'));
    }
  }
  function renderAlerts() {
    const ol = $('alerts'); ol.replaceChildren();
    const list = Array.from(st.alerts.values()).sort((a, b) =>
      String(b.alert.last_seen || b.alert.ts).localeCompare(String(a.alert.last_seen || a.alert.ts)));
    for (const ev of list.slice(0, 100)) {
      const a = ev.alert;
      const li = el('li', ev.event === 'closed' ? 'closed' : null);
      li.appendChild(el('span', 't', String(a.ts || '').replace('T', ' ').slice(0, 19)));
      li.appendChild(el('span', 'sev sev-' + String(a.severity || '').toLowerCase(), a.severity || ''));
      li.appendChild(el('b', null, a.kind + ' '));
      li.appendChild(document.createTextNode('from ' + a.source + (a.target ? ' → ' + a.target : '')
        + (ev.event === 'closed' ? ' (over)' : '')));
      const evid = a.evidence ? Object.entries(a.evidence).map(([k, v]) => k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v)).join(' ') : '';
      if (evid) li.title = evid;
      ol.appendChild(li);
    }
    if (!list.length) ol.appendChild(el('li', 'hint', 'no alerts'));
    $('alert-count').textContent = list.length ? list.length + ' (newest first)' : '';
  }

  // ---------------------------------------------------------------- connections table
  function matches(f, terms) {
    for (const t of terms) {
      const port = /^\d+$/.test(t) ? Number(t) : null;
      const hit = (port !== null && (f.remote_port === port || f.local_port === port))
        || f.remote_ip.startsWith(t) || f.local_ip.startsWith(t)
        || (f.app && f.app.toLowerCase() === t) || String(f.proto).toLowerCase() === t
        || (f.name && f.name.toLowerCase().includes(t));
      if (!hit) return false;
    }
    return true;
  }
  const SORTS = {
    remote: (f) => f.remote_ip, local: (f) => f.local_ip, proto: (f) => String(f.proto),
    app: (f) => f.app || '', name: (f) => f.name || '', rate: (f) => f.rate_in + f.rate_out,
    bytes_in: (f) => f.bytes_in, bytes_out: (f) => f.bytes_out, duration: (f) => f.duration_ns,
    state: (f) => f.state || '',
  };
  function renderTable() {
    const now = Date.now();
    const terms = st.filter.toLowerCase().split(/[\s,]+/).filter(Boolean);
    let rows = Array.from(st.flows.values());
    const active = new Set(st.flows.keys());
    for (const e of st.ended) if (now - e.endedAt < ENDED_SHOW_MS && !active.has(e.id)) rows.push(e);
    const total = rows.length;
    if (terms.length) rows = rows.filter((f) => matches(f, terms));
    const key = SORTS[st.sort.k] || SORTS.rate;
    const dir = st.sort.asc ? 1 : -1;
    rows.sort((a, b) => {
      const x = key(a); const y = key(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return c * dir || (b.endedAt ? -1 : 0) - (a.endedAt ? -1 : 0) || b.id - a.id;
    });
    const shown = rows.slice(0, ROWS_MAX);
    const body = $('conn-body');
    const frag = document.createDocumentFragment();
    const perfNow = performance.now();
    for (const f of shown) {
      const tr = el('tr', f.endedAt ? 'ended' : (f.isNew && perfNow - f.isNew < 3000 ? 'new' : null));
      tr.dataset.id = String(f.id);
      tr.appendChild(el('td', null, hostPort(f.remote_ip, f.remote_port)));
      tr.appendChild(el('td', null, hostPort(f.local_ip, f.local_port)));
      tr.appendChild(el('td', null, f.proto));
      tr.appendChild(el('td', null, f.app || ''));
      const n = el('td', 'name', f.name || ''); if (f.name) n.title = f.name; tr.appendChild(n);
      tr.appendChild(el('td', 'num', f.endedAt ? '' : fmtBits((f.rate_in + f.rate_out) * 8)));
      tr.appendChild(el('td', 'num', fmtBytes(f.bytes_in)));
      tr.appendChild(el('td', 'num', fmtBytes(f.bytes_out)));
      tr.appendChild(el('td', 'num', fmtDur(f.duration_ns)));
      tr.appendChild(el('td', null, f.endedAt ? 'ended' : f.state));
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    $('conn-count').textContent = rows.length + ' shown of ' + total
      + (rows.length > ROWS_MAX ? ' (first ' + ROWS_MAX + ')' : '')
      + (st.activeFlows !== undefined ? ' · ' + st.activeFlows + ' active flows exported' : '');
  }
  for (const th of document.querySelectorAll('#conns th')) {
    th.addEventListener('click', () => {
      const k = th.dataset.k;
      if (st.sort.k === k) st.sort.asc = !st.sort.asc; else st.sort = { k, asc: false };
      for (const o of document.querySelectorAll('#conns th')) {
        o.classList.toggle('sorted', o === th); o.classList.toggle('asc', o === th && st.sort.asc);
      }
      st.dirty.table = true;
    });
  }
  $('filter').addEventListener('input', (ev) => { st.filter = ev.target.value; st.dirty.table = true; });

  // ---------------------------------------------------------------- status line
  function renderStatus() {
    const s = $('status'); s.replaceChildren();
    s.appendChild(el('span', st.connected ? 'ok' : 'bad', st.connected ? '● live' : '● offline'));
    const parts = [];
    if (st.interfaces.length) {
      parts.push('sources: ' + st.interfaces.map((i) => i.name).join(', '));
      let drops = 0; let known = false;
      for (const i of st.interfaces) {
        for (const d of [i.kernel_dropped, i.iface_dropped]) if (typeof d === 'number') { drops += d; known = true; }
      }
      parts.push('capture drops: ' + (known ? drops : 'n/a'));
    }
    if (st.uptimeBase) {
      const up = st.uptimeBase[0] + (Date.now() - st.uptimeBase[1]) / 1000;
      parts.push('uptime: ' + fmtDur(up * 1e9).replace(/\.\d s$/, ' s'));
    }
    if (st.skipped) parts.push('events skipped while busy: ' + st.skipped);
    if (st.lastEvent) parts.push('last event ' + Math.max(0, Math.round((Date.now() - st.lastEvent) / 1000)) + ' s ago');
    s.appendChild(document.createTextNode('  ' + parts.join(' · ')));
  }

  // ---------------------------------------------------------------- the frame loop
  let lastFrame = 0; let lastTable = 0; let lastSide = 0; let lastStatus = 0; let lastIfaces = 0;
  function frame(now) {
    if (lastFrame) { perf.frames.push(now - lastFrame); if (perf.frames.length > 100000) perf.frames.shift(); }
    lastFrame = now;
    drain();
    timed('radar', () => drawRadar(now));
    if (st.dirty.chart) { st.dirty.chart = false; timed('chart', drawChart); }
    if (st.dirty.table && now - lastTable > 1000) { st.dirty.table = false; lastTable = now; timed('table', renderTable); }
    if (st.dirty.side && now - lastSide > 1000) { st.dirty.side = false; lastSide = now; timed('side', renderSide); }
    if (st.dirty.alerts) { st.dirty.alerts = false; renderAlerts(); }
    if (now - lastStatus > 1000) { lastStatus = now; renderStatus(); }
    // Interface counters (capture drops) are small: refreshed every 10 s.
    if (st.connected && now - lastIfaces > 10000) { lastIfaces = now; loadStatus(); }
    requestAnimationFrame(frame);
  }

  legend();
  renderAlerts();
  renderTable();
  requestAnimationFrame(frame);
  // A hidden tab gets no animation frames: keep applying events (the queue stays bounded).
  setInterval(() => { if (document.hidden) drain(); }, 1000);
  stream();
})();
