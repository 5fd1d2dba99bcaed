/**
 * wrk driver: one thread, N connections, a generated Lua script for the cookie / POST / cycle,
 * and a `done` hook that prints the summary and exact latency percentiles as one JSON line.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runToEnd } from '../processes.ts'
import { cumulative } from './pool.ts'
import type { LoadGenerator, LoadPlan, LoadResult, LoadSettings, RequestSpec } from './types.ts'

const MARKER = 'WRK_JSON '

/** A Lua 5.1 string literal (decimal escapes for anything outside printable ASCII). */
export function luaString (text: string): string {
  let out = '"'
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x22 || byte === 0x5c) out += '\\' + String.fromCharCode(byte)
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte)
    else out += '\\' + String(byte)
  }
  return out + '"'
}

function luaHeaders (headers: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(headers ?? {}).map(([k, v]) => `[${luaString(k)}] = ${luaString(v)}`)
  return `{ ${entries.join(', ')} }`
}

function luaRequest (spec: RequestSpec): string {
  return `wrk.format(${luaString(spec.method)}, ${luaString(spec.path)}, ${luaHeaders(spec.headers)}, ${spec.body === undefined ? 'nil' : luaString(spec.body)})`
}

const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARKER}{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mean":%.3f,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`

/** The Lua script for a plan. */
export function wrkScript (plan: LoadPlan): string {
  if (plan.kind === 'fixed') {
    // No `request` function: wrk sends one pre-built request (its fastest, static mode).
    const r = plan.request
    const headers = Object.entries(r.headers ?? {}).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}\n`).join('')
    return `wrk.method = ${luaString(r.method)}
wrk.path = ${luaString(r.path)}
${headers}${r.body === undefined ? '' : `wrk.body = ${luaString(r.body)}\n`}${DONE}`
  }
  if (plan.kind === 'pool') {
    // A cookie per request, drawn from the cumulative weights by binary search.
    const cum = cumulative(plan.cookies.length, plan.zipf)
    return `local cookies = { ${plan.cookies.map(luaString).join(', ')} }
local cum = { ${Array.from(cum, (c) => c.toPrecision(17)).join(', ')} }
local headers = ${luaHeaders(plan.request.headers)}
request = function()
  local r = math.random()
  local lo, hi = 1, #cum
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cum[mid] < r then lo = mid + 1 else hi = mid end
  end
  headers["Cookie"] = cookies[lo]
  return wrk.format(${luaString(plan.request.method)}, ${luaString(plan.request.path)}, headers, ${plan.request.body === undefined ? 'nil' : luaString(plan.request.body)})
end
${DONE}`
  }
  // One wrk thread shares this state across its connections: each cookie a login response set
  // is queued and spent by exactly one logout.
  return `local first = nil
local queue = {}
init = function(args) first = ${luaRequest(plan.first)} end
request = function()
  local cookie = table.remove(queue)
  if cookie == nil then return first end
  local headers = ${luaHeaders(plan.second.headers)}
  headers["Cookie"] = cookie
  return wrk.format(${luaString(plan.second.method)}, ${luaString(plan.second.path)}, headers, ${plan.second.body === undefined ? 'nil' : luaString(plan.second.body)})
end
response = function(status, headers, body)
  for name, value in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      local pair = string.match(value, "^%s*([^;]*)")
      if pair ~= nil and string.match(pair, "=.+$") ~= nil and not string.find(string.lower(value), "max%-age=0") then
        table.insert(queue, pair)
      end
    end
  end
end
${DONE}`
}

interface WrkJson {
  requests: number
  duration_us: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

let scripts = 0

export const wrk: LoadGenerator = {
  name: 'wrk',
  async run (plan: LoadPlan, settings: LoadSettings): Promise<LoadResult> {
    const script = join(settings.tmpDir, `plan-${process.pid}-${scripts++}.lua`)
    writeFileSync(script, wrkScript(plan))
    const args = ['-t1', `-c${settings.connections}`, `-d${Math.max(1, Math.round(settings.durationS))}s`, '--timeout', '5s', '-s', script, settings.origin + '/']
    const [command, ...rest] = [...settings.pinPrefix, 'wrk', ...args]
    const { code, stdout, stderr } = await runToEnd('wrk', command as string, rest)
    const line = stdout.split('\n').find((l) => l.startsWith(MARKER))
    if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${code}): ${stderr.trim() || stdout.trim()}`)
    const r = JSON.parse(line.slice(MARKER.length)) as WrkJson
    const durationS = r.duration_us / 1e6
    return {
      requests: r.requests,
      durationS,
      rps: r.requests / durationS,
      latencyMs: { mean: r.mean / 1000, p50: r.p50 / 1000, p90: r.p90 / 1000, p99: r.p99 / 1000, max: r.max / 1000 },
      badStatus: r.status,
      socketErrors: r.connect + r.read + r.write + r.timeout,
    }
  },
}
