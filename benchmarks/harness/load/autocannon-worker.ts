/**
 * autocannon in its own process (pinned like wrk would be), so the load generator never shares
 * the harness's event loop. Usage: node --import tsx autocannon-worker.ts '<json>' (or
 * `@<file>` holding it, for plans too large for a command line) where json is
 * `{ origin, connections, durationS, plan }`; prints one JSON line with the LoadResult.
 */
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { sampler } from './pool.ts'
import type { LoadPlan, LoadResult, RequestSpec } from './types.ts'

interface Job {
  origin: string
  connections: number
  durationS: number
  plan: LoadPlan
}

const arg = process.argv[2] ?? '{}'
const job = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as Job

function toRequest (spec: RequestSpec): autocannon.Request {
  return { method: spec.method as autocannon.Request['method'], path: spec.path, headers: { ...spec.headers }, body: spec.body }
}

function cookieOf (headers: Record<string, unknown> | undefined): string | undefined {
  const raw = headers?.['set-cookie'] ?? headers?.['Set-Cookie']
  for (const line of Array.isArray(raw) ? raw as string[] : [raw as string | undefined]) {
    if (line === undefined) continue
    const pair = line.split(';', 1)[0]?.trim() ?? ''
    if (/=.+$/.test(pair) && !/max-age=0\b/i.test(line)) return pair
  }
  return undefined
}

function poolRequests (plan: Extract<LoadPlan, { kind: 'pool' }>): autocannon.Request[] {
  const next = sampler(plan)
  const base = toRequest(plan.request)
  return [{ ...base, setupRequest: (request) => ({ ...request, headers: { ...request.headers, cookie: next() } }) }]
}

const requests: autocannon.Request[] = job.plan.kind === 'fixed'
  ? [toRequest(job.plan.request)]
  : job.plan.kind === 'pool'
    ? poolRequests(job.plan)
    : [
        {
          ...toRequest(job.plan.first),
          onResponse: (_status, _body, context, headers) => { (context as { cookie?: string }).cookie = cookieOf(headers) },
        },
        {
          ...toRequest(job.plan.second),
          setupRequest: (request, context) => {
            const cookie = (context as { cookie?: string }).cookie
            return { ...request, headers: { ...request.headers, ...(cookie === undefined ? {} : { cookie }) } }
          },
        },
      ]

const result = await autocannon({
  url: job.origin,
  connections: job.connections,
  duration: job.durationS,
  requests,
})

const out: LoadResult = {
  requests: result.requests.total,
  durationS: result.duration,
  rps: result.requests.total / result.duration,
  latencyMs: { mean: result.latency.mean, p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
  badStatus: result.non2xx,
  socketErrors: result.errors,
}
process.stdout.write(JSON.stringify(out) + '\n')
