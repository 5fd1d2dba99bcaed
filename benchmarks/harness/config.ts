/**
 * Your own application's routes: a JSON config file (`--config`) naming your server commands
 * and routes, or a single already-running target (`--target-url`). Both become variants that
 * run through the same rounds, checks, CPU and latency accounting as the built-in suite.
 * See docs/benchmarks.md and benchmarks/example.config.json.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { expect, expectOk } from './checks.ts'
import { mergeCookies, send, type RequestSpec } from './http.ts'
import type { LoadPlan } from './load/types.ts'
import { assertLoopback, type ServerSpec } from './server-process.ts'
import type { Variant } from './variant.ts'

export interface VariantConfig {
  name: string
  label?: string
  /** Key in `servers`. */
  server: string
  /** Name of the variant to compare with (its req/s and p99 in the same round). */
  baseline?: string
  /** Sent once before the load; the cookies it sets are sent with every loaded request. */
  login?: RequestSpec
  /** A fixed Cookie header (instead of, or on top of, `login`). */
  cookie?: string
  /** The loaded request. */
  request: RequestSpec
  /** If set, the load alternates: `request` sets a cookie, then this request spends it. */
  then?: RequestSpec
  /** Checked once before the load. Default: a 2xx status. */
  expect?: { status?: number, bodyIncludes?: string }
  /** GET path answering `{ cacheHits, cacheMisses }`, if your app exposes one. */
  statsPath?: string
}

export interface BenchConfig {
  servers: Record<string, { command: string[], env?: Record<string, string>, cwd?: string } | { url: string, pid?: number }>
  variants: VariantConfig[]
}

function checkRequest (spec: unknown, where: string): RequestSpec {
  const r = spec as Partial<RequestSpec> | undefined
  if (typeof r?.method !== 'string' || typeof r.path !== 'string' || !r.path.startsWith('/')) {
    throw new TypeError(`${where}: needs { method, path } with a path starting with '/'`)
  }
  return { method: r.method.toUpperCase(), path: r.path, headers: r.headers, body: r.body }
}

export function variantsFromConfig (config: BenchConfig, baseDir: string): Variant[] {
  if (typeof config !== 'object' || config === null || !Array.isArray(config.variants) || typeof config.servers !== 'object') {
    throw new TypeError('bench config: needs { servers: {...}, variants: [...] }')
  }
  const names = new Set(config.variants.map((v) => v.name))
  return config.variants.map((v, i): Variant => {
    const where = `variants[${i}] (${v.name})`
    const raw = config.servers[v.server]
    if (raw === undefined) throw new TypeError(`${where}: unknown server "${v.server}"`)
    if (v.baseline !== undefined && !names.has(v.baseline)) throw new TypeError(`${where}: unknown baseline "${v.baseline}"`)
    let server: ServerSpec
    if ('url' in raw) {
      assertLoopback(raw.url)
      server = { url: raw.url, pid: raw.pid }
    } else {
      if (!Array.isArray(raw.command) || raw.command.length === 0) throw new TypeError(`servers.${v.server}: command must be a non-empty array`)
      server = { command: raw.command, env: raw.env, cwd: resolve(baseDir, raw.cwd ?? '.') }
    }
    const text = JSON.stringify(raw)
    const request = checkRequest(v.request, `${where}.request`)
    const then = v.then === undefined ? undefined : checkRequest(v.then, `${where}.then`)
    const loginSpec = v.login === undefined ? undefined : checkRequest(v.login, `${where}.login`)
    return {
      name: v.name,
      label: v.label ?? `${v.name}: ${request.method} ${request.path}`,
      group: v.baseline === undefined ? 'baseline' : 'app',
      baseline: v.baseline,
      server,
      usesRedis: text.includes('{redisUrl}'),
      statsPath: v.statsPath,
      async prepare (ctx): Promise<LoadPlan> {
        let cookie = v.cookie
        if (loginSpec !== undefined) {
          const response = await send(ctx.origin, loginSpec, cookie)
          expectOk(response, `login ${loginSpec.method} ${loginSpec.path}`)
          cookie = mergeCookies(cookie, response.cookies)
        }
        const response = await send(ctx.origin, request, cookie)
        const status = v.expect?.status
        if (status === undefined) expectOk(response, `${request.method} ${request.path}`)
        else expect(response.status === status, `${request.method} ${request.path} answered ${response.status}, expected ${status}`)
        const includes = v.expect?.bodyIncludes
        if (includes !== undefined) expect(response.body.includes(includes), `${request.method} ${request.path} body lacks ${JSON.stringify(includes)}: ${response.body.slice(0, 200)}`)
        const headers = { ...request.headers, ...(cookie === undefined ? {} : { cookie }) }
        if (then !== undefined) return { kind: 'cycle', first: { ...request, headers }, second: then }
        return { kind: 'fixed', request: { ...request, headers } }
      },
    }
  })
}

export function loadConfigFile (path: string): Variant[] {
  const full = resolve(path)
  return variantsFromConfig(JSON.parse(readFileSync(full, 'utf8')) as BenchConfig, dirname(full))
}

export interface TargetOptions {
  targetUrl: string
  baselineUrl?: string | undefined
  cookie?: string | undefined
  method: string
  body?: string | undefined
  headers: readonly string[]
  serverPid?: number | undefined
}

/** `--target-url` (and `--baseline-url`): already-running servers, one route each. */
export function variantsFromTarget (t: TargetOptions): Variant[] {
  const target = assertLoopback(t.targetUrl)
  const headers: Record<string, string> = {}
  for (const h of t.headers) {
    const colon = h.indexOf(':')
    if (colon <= 0) throw new TypeError(`--header "${h}": expected "name: value"`)
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim()
  }
  const request: RequestSpec = { method: t.method.toUpperCase(), path: target.pathname + target.search, headers, body: t.body }
  const config: BenchConfig = {
    servers: { target: { url: target.origin, pid: t.serverPid } },
    variants: [{ name: 'target', server: 'target', request, cookie: t.cookie }],
  }
  if (t.baselineUrl !== undefined) {
    const base = assertLoopback(t.baselineUrl)
    config.servers['baseline'] = { url: base.origin }
    config.variants.unshift({ name: 'baseline', server: 'baseline', request: { ...request, path: base.pathname + base.search } })
    ;(config.variants[1] as VariantConfig).baseline = 'baseline'
  }
  return variantsFromConfig(config, process.cwd())
}
