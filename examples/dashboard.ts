/**
 * A one-page dashboard of the plugin's metrics, read from Prometheus endpoints (the demo's
 * METRICS_PORT, served by @opentelemetry/exporter-prometheus). A stand-in for Grafana that needs
 * nothing installed: the same signals as the alerts in docs/operations.md, over the last minutes.
 *
 *   METRICS_URLS=http://127.0.0.1:9464/metrics,http://127.0.0.1:9465/metrics PORT=3100 npx tsx examples/dashboard.ts
 *
 * The page polls `/metrics/<n>` (this server fetches the n-th URL: the browser needs no CORS)
 * once a second and draws: cache hit ratio, reads per second, invalidations per second per
 * instance, store errors per second, store p99 latency by operation, logins per second by
 * outcome, revocations by kind, local cache entries per instance.
 */
import { createServer } from 'node:http'

const urls = (process.env.METRICS_URLS ?? 'http://127.0.0.1:9464/metrics').split(',').map((u) => u.trim()).filter((u) => u !== '')
for (const url of urls) {
  const { hostname } = new URL(url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) throw new Error(`METRICS_URLS: only loopback endpoints, got ${url}`)
}
const port = Number(process.env.PORT ?? 3100)

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sessions — fastify-hardened-session</title>
<link rel="stylesheet" href="/dashboard.css"></head>
<body>
<header><h1>Sessions</h1><span id="sub">fastify-hardened-session · ${urls.length} instance${urls.length === 1 ? '' : 's'} · Prometheus endpoints polled every second</span></header>
<main id="grid"></main>
<script src="/dashboard.js"></script>
</body></html>`

const CSS = `
:root { color-scheme: dark; --bg: #111217; --panel: #181b1f; --line: #2c3035; --text: #ccccdc; --muted: #8e8e99; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px 6px; }
h1 { margin: 0; font-size: 18px; font-weight: 600; }
#sub { color: var(--muted); }
main { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; padding: 10px 20px 20px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px; min-height: 190px; }
.panel.wide { grid-column: span 2; }
.panel h2 { margin: 0 0 2px; font-size: 13px; font-weight: 600; }
.panel .q { color: var(--muted); font: 11px ui-monospace, monospace; margin-bottom: 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.stat { font-size: 30px; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 10px; color: var(--muted); font-size: 11px; margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
svg { display: block; width: 100%; }
.bars div { display: flex; align-items: center; gap: 8px; margin: 3px 0; font-size: 12px; }
.bars span.name { width: 96px; color: var(--muted); font-family: ui-monospace, monospace; font-size: 11px; }
.bars span.bar { height: 12px; background: #5794f2; border-radius: 2px; }
`

const SCRIPT = `
const N = ${urls.length}
const WINDOW = 5 // seconds over which rates are taken
const KEEP = 180 // samples drawn
const COLORS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff7383', '#b877d9', '#ff9830']
const history = [] // { t, instances: [Map(series -> value)] }

function parse (text) {
  const out = new Map()
  for (const line of text.split('\\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\\w:]*)(\\{[^}]*\\})? ([^ ]+)/.exec(line)
    if (m === null) continue
    const labels = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\\w+)="([^"]*)"/g)) if (k !== 'otel_scope_name') labels[k] = v
    const key = m[1] + JSON.stringify(labels)
    out.set(key, Number(m[3]))
  }
  return out
}
const key = (name, labels = {}) => name + JSON.stringify(labels)
const sum = (sample, name, labels) => sample.instances.reduce((a, m) => a + (m.get(key(name, labels)) ?? 0), 0)
function series (sample, name) {
  const out = []
  for (const m of sample.instances) for (const [k, v] of m) if (k.startsWith(name + '{')) out.push([JSON.parse(k.slice(name.length)), v])
  return out
}
function ago (seconds) {
  const t = history[history.length - 1].t - seconds * 1000
  for (let i = history.length - 1; i >= 0; i--) if (history[i].t <= t) return history[i]
  return history[0]
}
function rate (now, then, f) {
  const dt = (now.t - then.t) / 1000
  return dt <= 0 ? 0 : Math.max(0, f(now) - f(then)) / dt
}

const panels = {}
function panel (id, title, query, wide) {
  const el = document.createElement('section')
  el.className = 'panel' + (wide ? ' wide' : '')
  el.innerHTML = '<h2></h2><div class="q"></div><div class="body"></div>'
  el.querySelector('h2').textContent = title
  el.querySelector('.q').textContent = query
  document.getElementById('grid').append(el)
  panels[id] = el.querySelector('.body')
}
panel('ratio', 'Cache hit ratio', 'hits / (hits + misses), 5 s rate', false)
panel('reads', 'Session reads / s', 'rate(session_cache_hits_total + session_cache_misses_total)', false)
panel('inval', 'Invalidations / s, per instance', 'rate(session_invalidations_total) by instance', true)
panel('errors', 'Store errors / s', 'rate(session_store_errors_total)', false)
panel('entries', 'Local cache entries', 'session_cache_entries by instance', false)
panel('latency', 'Store latency p99 (ms), by operation', 'histogram_quantile(0.99, session_store_duration_bucket) since start', true)
panel('logins', 'Logins / s, by outcome', 'rate(session_logins_total) by outcome', true)
panel('revocations', 'Revocations, by kind', 'session_revocations_total by kind', true)

function lines (el, data, opts = {}) {
  // data: [{ name, points: [[t, v]] }]
  const W = Math.max(240, Math.round(el.clientWidth)); const H = opts.height ?? 130; const pad = 34
  const all = data.flatMap((d) => d.points.map((p) => p[1]))
  const max = opts.max ?? Math.max(1e-9, ...all) * 1.15
  const min = opts.min ?? 0
  const t0 = history[0].t; const t1 = history[history.length - 1].t
  const x = (t) => pad + (W - pad - 4) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0))
  const y = (v) => H - 14 - (H - 22) * ((v - min) / (max - min || 1))
  let svg = '<svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '">'
  for (let i = 0; i <= 3; i++) {
    const v = min + (max - min) * i / 3
    svg += '<line x1="' + pad + '" x2="' + W + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#2c3035"/>'
    svg += '<text x="' + (pad - 4) + '" y="' + (y(v) + 3) + '" fill="#8e8e99" font-size="10" text-anchor="end">' + (opts.format ?? ((n) => n < 10 ? n.toFixed(1) : Math.round(n)))(v) + '</text>'
  }
  data.forEach((d, i) => {
    const path = d.points.map((p, j) => (j === 0 ? 'M' : 'L') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ')
    svg += '<path d="' + path + '" fill="none" stroke="' + COLORS[i % COLORS.length] + '" stroke-width="1.6"/>'
  })
  svg += '</svg>'
  let legend = '<div class="legend">'
  data.forEach((d, i) => { legend += '<span><i style="background:' + COLORS[i % COLORS.length] + '"></i>' + d.name + ' ' + (opts.format ?? ((n) => n.toFixed(n < 10 ? 2 : 0)))(d.points.at(-1)?.[1] ?? 0) + '</span>' })
  el.innerHTML = svg + legend + '</div>'
}

function rates (f) {
  const out = []
  for (let i = 1; i < history.length; i++) {
    const now = history[i]
    let j = i
    while (j > 0 && now.t - history[j - 1].t <= WINDOW * 1000) j--
    if (j === i) j = i - 1
    out.push([now.t, rate(now, history[j], f)])
  }
  return out
}

function quantile (buckets, q) {
  // buckets: [[le, cumulative count]] sorted
  const total = buckets.at(-1)?.[1] ?? 0
  if (total === 0) return 0
  const rank = q * total
  let prevLe = 0; let prevCount = 0
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1, count - prevCount))
    }
    prevLe = le; prevCount = count
  }
  return prevLe
}

function draw () {
  const now = history[history.length - 1]
  const hits = (s) => sum(s, 'session_cache_hits_total')
  const misses = (s) => sum(s, 'session_cache_misses_total')
  const ratio = []
  for (let i = 1; i < history.length; i++) {
    let j = i
    while (j > 0 && history[i].t - history[j - 1].t <= WINDOW * 1000) j--
    if (j === i) j = i - 1
    const h = hits(history[i]) - hits(history[j]); const m = misses(history[i]) - misses(history[j])
    if (h + m > 0) ratio.push([history[i].t, h / (h + m)])
  }
  lines(panels.ratio, [{ name: 'hit ratio', points: ratio }], { min: 0, max: 1, format: (n) => n.toFixed(2) })
  lines(panels.reads, [{ name: 'hits', points: rates(hits) }, { name: 'misses', points: rates(misses) }])
  lines(panels.inval, Array.from({ length: N }, (_, i) => ({ name: 'instance ' + (i + 1), points: rates((s) => s.instances[i]?.get(key('session_invalidations_total')) ?? 0) })))
  lines(panels.errors, [{ name: 'errors', points: rates((s) => sum(s, 'session_store_errors_total')) }])
  lines(panels.entries, Array.from({ length: N }, (_, i) => ({ name: 'instance ' + (i + 1), points: history.map((s) => [s.t, s.instances[i]?.get(key('session_cache_entries')) ?? 0]) })))
  lines(panels.logins, ['ok', 'failed', 'throttled'].map((outcome) => ({ name: outcome, points: rates((s) => sum(s, 'session_logins_total', { outcome })) })))
  // p99 per operation, from the buckets summed over instances
  const ops = new Map()
  for (const [labels, v] of series(now, 'session_store_duration_bucket')) {
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le)
    const op = labels.operation
    if (!ops.has(op)) ops.set(op, new Map())
    ops.get(op).set(le, (ops.get(op).get(le) ?? 0) + v)
  }
  const rows = [...ops].map(([op, m]) => [op, quantile([...m].sort((a, b) => a[0] - b[0]), 0.99)]).sort((a, b) => b[1] - a[1]).slice(0, 8)
  const maxMs = Math.max(1, ...rows.map((r) => r[1]))
  panels.latency.innerHTML = '<div class="bars">' + rows.map(([op, ms]) => '<div><span class="name">' + op + '</span><span class="bar" style="width:' + Math.max(2, 300 * ms / maxMs) + 'px"></span><span>' + ms.toFixed(ms < 10 ? 2 : 0) + ' ms</span></div>').join('') + '</div>'
  const kinds = ['logout', 'destroy', 'session', 'others', 'user', 'all', 'limit'].map((kind) => [kind, sum(now, 'session_revocations_total', { kind })])
  const maxK = Math.max(1, ...kinds.map((k) => k[1]))
  panels.revocations.innerHTML = '<div class="bars">' + kinds.map(([kind, n]) => '<div><span class="name">' + kind + '</span><span class="bar" style="width:' + Math.max(2, 300 * n / maxK) + 'px;background:#b877d9"></span><span>' + n + '</span></div>').join('') + '</div>'
}

async function poll () {
  const instances = await Promise.all(Array.from({ length: N }, async (_, i) => {
    try { return parse(await (await fetch('/metrics/' + i)).text()) } catch { return new Map() }
  }))
  history.push({ t: Date.now(), instances })
  if (history.length > KEEP) history.shift()
  if (history.length > 1) draw()
  document.body.dataset.samples = String(history.length)
}
poll()
setInterval(poll, 1000)
`

const server = createServer((req, res) => {
  const path = req.url ?? '/'
  const m = /^\/metrics\/(\d+)$/.exec(path)
  if (m !== null) {
    const url = urls[Number(m[1])]
    if (url === undefined) {
      res.writeHead(404).end()
      return
    }
    fetch(url).then(async (r) => {
      res.writeHead(r.status, { 'content-type': 'text/plain; charset=utf-8' }).end(await r.text())
    }, () => { res.writeHead(502).end() })
    return
  }
  if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
  else if (path === '/dashboard.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(SCRIPT)
  else if (path === '/dashboard.css') res.writeHead(200, { 'content-type': 'text/css; charset=utf-8' }).end(CSS)
  else res.writeHead(404).end()
})
server.listen(port, '127.0.0.1', () => {
  const address = server.address()
  console.log(`dashboard on http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : port}/ reading ${urls.join(', ')}`)
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.close(() => process.exit(0)) })
