/**
 * The dashboard (`GET /`): one self-contained page — inline CSS and JS, no build step, no CDN,
 * no fonts to fetch — that shows the pools from `/status` and the event timeline from `/events`,
 * kept live by `/events/stream` and a status poll every second.
 *
 * Token: the page accepts `?token=`, keeps it in sessionStorage and removes it from the address
 * bar; it sends `Authorization: Bearer` on fetches and offers the `hotwarm.token.<base64url>`
 * WebSocket subprotocol (see auth.ts). Everything shown is inserted as text, never as HTML: event
 * details carry backend error strings.
 *
 * The page is served with a Content-Security-Policy that allows exactly its own script and style
 * (by hash, computed here) and connections to its own origin.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: dark; --bg: #0f172a; --card: #1e293b; --line: #334155; --text: #e2e8f0; --dim: #94a3b8;
  --green: #22c55e; --amber: #f59e0b; --red: #ef4444; --purple: #a78bfa; --grey: #64748b; --blue: #38bdf8; --orange: #fb923c; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 12px 20px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 18px; letter-spacing: .5px; }
.meta { color: var(--dim); font-size: 13px; }
.conn { display: inline-flex; align-items: center; gap: 6px; font-size: 13px; color: var(--dim); margin-left: auto; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--grey); }
.conn.live .dot { background: var(--green); box-shadow: 0 0 6px var(--green); }
.conn.down .dot { background: var(--red); }
#banner { display: none; margin: 12px 20px 0; padding: 10px 14px; border-radius: 6px; background: #7f1d1d; }
#banner.show { display: block; }
main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(280px, 1fr); gap: 20px; padding: 16px 20px; }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr); } }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: 1px; color: var(--dim); margin: 0 0 10px; }
.pool { margin-bottom: 22px; }
.pool-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 14px; margin-bottom: 10px; }
.pool-head .name { font-size: 17px; font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 11px; font-weight: 700; letter-spacing: .6px; text-transform: uppercase; }
.degraded { background: var(--red); color: #fff; }
.ok-badge { background: #14532d; color: #bbf7d0; }
.capacity { background: #1e293b; color: #cbd5e1; } .capacity.partial { background: #78350f; color: #fde68a; }
.backends { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }
.backend { background: var(--card); border: 1px solid var(--line); border-left: 5px solid var(--grey); border-radius: 8px; padding: 10px 12px; display: flex; flex-direction: column; gap: 6px; }
.backend.s-serving { border-left-color: var(--green); }
.backend.s-warming { border-left-color: var(--amber); }
.backend.s-down { border-left-color: var(--red); }
.backend.s-draining, .backend.s-disabled { border-left-color: var(--purple); }
.backend.s-standby { opacity: .85; }
.row { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.bname { font-weight: 600; font-size: 15px; }
.role-hot { background: var(--orange); color: #1c1917; }
.role-warm { background: var(--blue); color: #082f49; }
.state { margin-left: auto; font-weight: 700; font-size: 12px; letter-spacing: .6px; text-transform: uppercase; }
.st-serving { color: var(--green); } .st-warming { color: var(--amber); } .st-down { color: var(--red); }
.st-draining, .st-disabled { color: var(--purple); } .st-standby, .st-unknown { color: var(--dim); }
.cover { font-size: 13px; color: var(--amber); }
.cover.by { color: var(--dim); }
.bar { height: 8px; background: #0b1220; border-radius: 4px; overflow: hidden; flex: 1; min-width: 80px; }
.bar > span { display: block; height: 100%; width: 0; background: var(--green); transition: width .3s; }
.num { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--dim); }
.check.bad { color: var(--red); }
.small { font-size: 12px; color: var(--dim); }
#timeline { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 4px; max-height: calc(100vh - 140px); overflow-y: auto; }
#timeline li { display: grid; grid-template-columns: auto auto minmax(0, 1fr); gap: 8px; align-items: baseline; padding: 5px 8px; border-radius: 6px; background: var(--card); font-size: 13px; }
#timeline li .what { overflow-wrap: anywhere; }
.ev { font-size: 10px; }
.ev-promoted, .ev-spill { background: var(--amber); color: #1c1917; }
.ev-backend_down, .ev-degraded { background: var(--red); color: #fff; }
.ev-backend_up, .ev-restored { background: var(--green); color: #052e16; }
.ev-released { background: var(--blue); color: #082f49; }
.ev-admin, .ev-reload { background: var(--purple); color: #1e1b4b; }
.ev-listening, .ev-shutdown { background: var(--grey); color: #fff; }
.listeners { margin-top: 6px; display: flex; flex-wrap: wrap; gap: 8px 18px; }
.chart { display: block; width: 100%; height: 44px; background: #0b1220; border-radius: 4px; }
.chart .rate { fill: none; stroke: var(--green); stroke-width: 1.5; }
.chart .errors { fill: none; stroke: var(--red); stroke-width: 1.5; }
.chart .latency { fill: none; stroke: var(--amber); stroke-width: 1; stroke-dasharray: 3 2; }
.legend .r { color: var(--green); } .legend .e { color: var(--red); } .legend .l { color: var(--amber); }
.down-for { color: var(--red); font-weight: 600; font-size: 13px; }
.hold { color: var(--amber); font-size: 13px; }
#reload.bad { color: #fff; background: var(--red); padding: 1px 8px; border-radius: 4px; font-weight: 600; }
#timeline li.failed { background: #7f1d1d; }
.ev-reload.failed { background: var(--red); color: #fff; }
.actions { display: flex; gap: 6px; flex-wrap: wrap; }
.actions button, #login button { background: #0b1220; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 2px 10px; font: inherit; font-size: 12px; cursor: pointer; }
.actions button:hover, #login button:hover { border-color: var(--blue); }
#login { display: none; margin: 12px 20px 0; padding: 12px 14px; border-radius: 6px; background: var(--card); gap: 8px; align-items: center; flex-wrap: wrap; }
#login.show { display: flex; }
#login input { background: #0b1220; color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; font: inherit; min-width: 0; flex: 1; max-width: 360px; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var KEY = 'hotwarm.token';
  var params = new URLSearchParams(location.search);
  var token = params.get('token') || sessionStorage.getItem(KEY) || '';
  if (params.has('token')) {
    sessionStorage.setItem(KEY, token);
    params.delete('token');
    var rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
  }
  var headers = token ? { Authorization: 'Bearer ' + token } : {};
  var events = [];
  var lastSeq = 0;
  var MAX_EVENTS = 200;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function banner(text) {
    var b = $('banner');
    b.textContent = text || '';
    b.className = text ? 'show' : '';
  }
  /** The proxy's clock, from its last /status: a browser whose clock is off still shows true ages. */
  var skewMs = 0;
  function now() { return Date.now() + skewMs; }
  function ago(iso) {
    var s = Math.max(0, (now() - Date.parse(iso)) / 1000);
    return s < 60 ? s.toFixed(1) + 's ago' : Math.round(s / 60) + 'm ago';
  }
  function clock(iso) {
    var d = new Date(iso);
    function p(n, w) { return String(n).padStart(w || 2, '0'); }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function duration(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    return Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
  }
  function fixed(n) { return n >= 100 ? String(Math.round(n)) : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\\.?0+$/, '') || '0'; }
  /** Request rate (green) and errors (red) on one scale, latency (amber, dashed) on its own. */
  function chart(tr) {
    var W = 200, H = 40, N = Math.max(tr.requests_per_s.length, 2);
    var box = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' });
    var top = 0, slow = 0;
    tr.requests_per_s.forEach(function (v) { top = Math.max(top, v); });
    tr.latency_ms.forEach(function (v) { if (v !== null) slow = Math.max(slow, v); });
    function line(values, scale, cls) {
      var pts = [];
      values.forEach(function (v, i) {
        if (v === null) return;
        var x = (W * (i + N - values.length)) / (N - 1);
        pts.push(x.toFixed(1) + ',' + (H - 2 - ((H - 4) * v) / (scale || 1)).toFixed(1));
      });
      if (pts.length) box.appendChild(svg('polyline', { class: cls, points: pts.join(' ') }));
    }
    line(tr.latency_ms, slow, 'latency');
    line(tr.requests_per_s, top, 'rate');
    line(tr.errors_per_s, top, 'errors');
    var minutes = Math.round((tr.interval_ms * N) / 60000);
    box.appendChild(svg('title', {})).textContent = 'last ' + (minutes || 1) + ' min: requests/s, errors/s, latency';
    return box;
  }
  function trafficRow(tr) {
    var wrap = el('div');
    wrap.className = 'traffic';
    wrap.appendChild(chart(tr));
    var n = tr.requests_per_s.length;
    var legend = el('div', 'num legend');
    if (n === 0) legend.textContent = 'no traffic yet';
    else {
      var lat = tr.latency_ms[n - 1];
      legend.appendChild(el('span', 'r', fixed(tr.requests_per_s[n - 1]) + ' req/s'));
      legend.appendChild(document.createTextNode(' \u00b7 '));
      legend.appendChild(el('span', 'e', fixed(tr.errors_per_s[n - 1]) + ' err/s'));
      legend.appendChild(document.createTextNode(' \u00b7 '));
      legend.appendChild(el('span', 'l', lat === null ? '- ms' : fixed(lat) + ' ms'));
    }
    wrap.appendChild(legend);
    return wrap;
  }
  /**
   * The operator actions that apply to a backend now: a covering warm is offered demote only
   * once the hot it covers serves again (before that the proxy refuses it: it would uncover it).
   */
  function actionsFor(b, backends) {
    var out = [];
    if (b.admin === 'enabled') out.push('drain'); else out.push('enable');
    if (b.role === 'warm' && !b.promotion && b.health === 'up' && b.admin === 'enabled') out.push('promote');
    var covered = b.covers ? backends.filter(function (o) { return o.name === b.covers; })[0] : null;
    if (b.role === 'warm' && b.promotion && (!covered || covered.serving)) out.push('demote');
    return out;
  }

  function backendCard(b, scale, pool, backends) {
    var card = el('div', 'backend s-' + b.state);
    card.dataset.backend = b.name;
    card.dataset.state = b.state;
    var top = el('div', 'row');
    top.appendChild(el('span', 'bname', b.name));
    top.appendChild(el('span', 'badge role-' + b.role, b.role));
    top.appendChild(el('span', 'state st-' + b.state, b.state));
    card.appendChild(top);
    if (b.covers) card.appendChild(el('div', 'cover', '\\u21c4 covers ' + b.covers));
    else if (b.promotion === 'operator') card.appendChild(el('div', 'cover', '\\u2191 promoted by operator'));
    if (b.covered_by) card.appendChild(el('div', 'cover by', 'covered by ' + b.covered_by));
    if (b.down_since) card.appendChild(el('div', 'down-for', 'down for ' + duration(now() - Date.parse(b.down_since))));
    if (b.failback_hold_remaining_ms !== null && b.failback_hold_remaining_ms !== undefined) {
      card.appendChild(el('div', 'hold', 'failback in ' + duration(b.failback_hold_remaining_ms) + ' (hold)'));
    }
    if (b.traffic) card.appendChild(trafficRow(b.traffic));
    var load = el('div', 'row');
    load.appendChild(el('span', 'num', 'in flight ' + b.in_flight + (b.max_conns ? '/' + b.max_conns : '')));
    var bar = el('div', 'bar');
    var fill = el('span');
    fill.style.width = Math.min(100, Math.round((100 * b.in_flight) / scale)) + '%';
    bar.appendChild(fill);
    load.appendChild(bar);
    card.appendChild(load);
    var ramping = b.serving && b.effective_weight < b.weight ? ' (slow start)' : '';
    card.appendChild(el('div', 'num', 'weight ' + b.weight + ' \\u00b7 effective ' + b.effective_weight + ramping));
    var c = b.last_check;
    card.appendChild(el('div', 'num check' + (c && !c.ok ? ' bad' : ''),
      c ? (c.ok ? '\\u2713 ' : '\\u2717 ') + c.detail + ' \\u00b7 ' + ago(c.at) : 'not checked yet'));
    card.appendChild(el('div', 'small', b.address));
    var actions = el('div', 'actions');
    actionsFor(b, backends).forEach(function (a) {
      var button = el('button', '', a);
      button.type = 'button';
      button.dataset.action = a;
      button.addEventListener('click', function () { act(pool, b.name, a); });
      actions.appendChild(button);
    });
    card.appendChild(actions);
    return card;
  }

  function renderStatus(s) {
    if (s.time) skewMs = Date.parse(s.time) - Date.now();
    $('version').textContent = 'config v' + s.version;
    var r = s.last_reload;
    $('reload').textContent = r ? 'last reload ' + (r.ok ? 'ok' : 'FAILED') + ' ' + ago(r.at) : 'no reload yet';
    $('reload').className = 'meta' + (r && !r.ok ? ' bad' : '');
    $('reload').title = r && !r.ok ? (r.errors || []).join('\\n') : '';
    var pools = $('pools');
    pools.replaceChildren();
    s.pools.forEach(function (p) {
      var section = el('section', 'pool');
      section.dataset.pool = p.name;
      var head = el('div', 'pool-head');
      head.appendChild(el('span', 'name', p.name));
      var serving = p.backends.filter(function (b) { return b.serving; }).length;
      var hot = p.backends.filter(function (b) { return b.role === 'hot'; }).length;
      head.appendChild(el('span', 'meta', serving + ' serving \\u00b7 ' + hot + ' hot \\u00b7 ' + (p.backends.length - hot) + ' warm'));
      var capacity = el('span', 'badge capacity' + (p.capacity_percent < 100 ? ' partial' : ''), 'capacity ' + p.capacity_percent + '%');
      capacity.dataset.capacity = String(p.capacity_percent);
      if (p.uncovered.length) head.appendChild(el('span', 'badge degraded', 'degraded: ' + p.uncovered.join(', ')));
      else if (p.capacity_percent >= 100) head.appendChild(el('span', 'badge ok-badge', 'full capacity'));
      head.appendChild(capacity);
      section.appendChild(head);
      var scale = 1;
      p.backends.forEach(function (b) { scale = Math.max(scale, b.max_conns || b.in_flight); });
      var grid = el('div', 'backends');
      p.backends.forEach(function (b) { grid.appendChild(backendCard(b, scale, p.name, p.backends)); });
      section.appendChild(grid);
      pools.appendChild(section);
    });
    var ls = $('listeners');
    ls.replaceChildren();
    s.listeners.forEach(function (l) {
      ls.appendChild(el('span', 'num', l.name + ' ' + (l.address || '-') + ' \\u00b7 ' + l.open_connections + ' conn'));
    });
  }

  function summary(e) {
    var ev = e.evidence && e.evidence.length ? e.evidence[e.evidence.length - 1].detail : '';
    switch (e.type) {
      case 'backend_up': return e.backend + ' is up';
      case 'backend_down': return e.backend + ' is down (' + e.source + (ev ? ': ' + ev : '') + ')';
      case 'promoted': return e.covers ? e.backend + ' promoted, covers ' + e.covers : e.backend + ' promoted by operator';
      case 'released': return e.backend + ' released (' + e.reason + (e.covered ? ', ' + e.covered + ' serves' : '') + ')';
      case 'degraded': return 'pool ' + e.pool + ' degraded: ' + (e.uncovered || []).join(', ') + ' uncovered';
      case 'restored': return 'pool ' + e.pool + ' back to full capacity';
      case 'spill': return e.backend + ' takes overflow (spill)';
      case 'admin': return e.action + ' ' + e.pool + '/' + e.backend + ' by ' + e.client;
      case 'reload': return e.ok === false ? 'reload failed' + (e.errors && e.errors.length ? ': ' + e.errors[0] : '') : 'reload applied' + (e.version ? ', config v' + e.version : '');
      case 'listening': return (e.admin ? 'admin' : e.listener) + ' listening on ' + e.address;
      case 'shutdown': return 'shutdown: ' + (e.phase || '');
      default: return JSON.stringify(e);
    }
  }

  function renderEvents() {
    var list = $('timeline');
    list.replaceChildren();
    for (var i = events.length - 1; i >= 0; i--) {
      var e = events[i];
      var failed = e.type === 'reload' && e.ok === false;
      var li = el('li', failed ? 'failed' : '');
      li.dataset.type = e.type;
      if (failed) li.dataset.failed = 'true';
      li.appendChild(el('span', 'num', clock(e.time)));
      li.appendChild(el('span', 'badge ev ev-' + e.type + (failed ? ' failed' : ''), failed ? 'reload failed' : e.type.replace('_', ' ')));
      li.appendChild(el('span', 'what', summary(e)));
      list.appendChild(li);
    }
  }

  function addEvents(list) {
    list.forEach(function (e) {
      if (e.seq <= lastSeq) return;
      lastSeq = e.seq;
      events.push(e);
    });
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    renderEvents();
  }

  /** A token is set on the server and the page has none (or a wrong one): ask for it. */
  var needToken = false;
  function askToken() {
    needToken = true;
    $('login').className = 'show';
    $('token-input').focus();
  }
  function useToken() {
    token = $('token-input').value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    headers = { Authorization: 'Bearer ' + token };
    needToken = false;
    $('login').className = '';
    $('token-input').value = '';
    banner('');
    if (socket) socket.close(); else connect();
    refresh();
  }
  $('token-go').addEventListener('click', useToken);
  $('token-input').addEventListener('keydown', function (e) { if (e.key === 'Enter') useToken(); });

  function get(path) {
    return fetch(path, { headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askToken(); throw new Error(''); }
      if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
      return res.json();
    });
  }

  /** Backend names may hold "/" (discovered ones): every path segment is percent-encoded. */
  function act(pool, backend, action) {
    var path = '/pools/' + encodeURIComponent(pool) + '/backends/' + encodeURIComponent(backend) + '/' + action;
    fetch(path, { method: 'POST', headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { askToken(); throw new Error('this proxy has an admin token: enter it above, then try again'); }
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(action + ' ' + backend + ': ' + (body.error || 'HTTP ' + res.status));
        banner('');
      });
    }).catch(function (err) { banner(err.message); }).then(refresh);
  }

  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    get('/status').then(function (s) { banner(''); renderStatus(s); }, function (err) { banner(err.message); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  function b64url(text) {
    var bytes = new TextEncoder().encode(text);
    var bin = '';
    bytes.forEach(function (b) { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }

  var retryMs = 500;
  var socket = null;
  function connect() {
    var conn = $('conn');
    var protocols = ['hotwarm.v1'];
    if (token) protocols.push('hotwarm.token.' + b64url(token));
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/events/stream', protocols);
    socket = ws;
    ws.onopen = function () {
      retryMs = 500;
      conn.className = 'conn live';
      $('conn-text').textContent = 'live';
      get('/events').then(function (r) { addEvents(r.events); }, function () {});
      refresh();
    };
    ws.onmessage = function (m) {
      try { addEvents([JSON.parse(m.data)]); } catch (err) { return; }
      refresh();
    };
    ws.onclose = function () {
      conn.className = 'conn down';
      // Refused for want of the token: no point retrying until one is entered (useToken connects).
      if (needToken) {
        socket = null;
        $('conn-text').textContent = 'waiting for the token';
        return;
      }
      $('conn-text').textContent = 'reconnecting\\u2026';
      setTimeout(connect, retryMs);
      retryMs = Math.min(5000, retryMs * 2);
    };
  }

  refresh();
  setInterval(refresh, 1000);
  connect();
})();
`;

const BODY = `<header>
<h1>hotwarm</h1>
<span class="meta" id="version">config</span>
<span class="meta" id="reload"></span>
<span class="conn" id="conn"><span class="dot"></span><span id="conn-text">connecting\u2026</span></span>
</header>
<div id="banner" role="alert"></div>
<div id="login"><label for="token-input">This proxy has an admin token. Token:</label>
<input id="token-input" type="password" autocomplete="current-password">
<button id="token-go" type="button">Use token</button></div>
<main>
<div><h2>Pools</h2><div id="pools"></div><h2>Listeners</h2><div class="listeners" id="listeners"></div></div>
<div><h2>Events</h2><ol id="timeline"></ol></div>
</main>`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page and the Content-Security-Policy it is served with. */
export const DASHBOARD = {
  html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hotwarm dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`,
  csp: [
    "default-src 'none'",
    `script-src ${hash(SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
} as const;
