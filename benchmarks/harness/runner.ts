/**
 * One measurement of one variant: fresh server (pinned), correctness check, warm-up, then the
 * timed load with the server's CPU time, Redis command count and Redis CPU time read before
 * and after; then, for a variant that uses Redis, a short untimed accounting load under
 * MONITOR that tells the commands the server sent from those its scripts ran. The server is
 * always stopped, whatever happens.
 */
import { cpuTimeUs, selfAndReapedChildrenUs, systemBusyUs } from './cpu.ts'
import { json, send } from './http.ts'
import type { LoadGenerator, LoadPlan, LoadResult } from './load/types.ts'
import type { Pinning } from './pinning.ts'
import type { BenchRedis } from './redis.ts'
import { startServer } from './server-process.ts'
import type { Variant } from './variant.ts'

export interface RunSettings {
  readonly durationS: number
  readonly warmupS: number
  readonly connections: number
  readonly generator: LoadGenerator
  readonly pin: Pinning
  readonly redis: BenchRedis | undefined
  /** The harness's Redis Cluster, for variants with `usesCluster`. */
  readonly cluster?: BenchRedis | undefined
  readonly tmpDir: string
  /** Seconds of the accounting load under MONITOR (0 = none). */
  readonly accountS: number
}

export interface Run {
  readonly variant: string
  /** The Node.js that ran the server (`process.version`). */
  readonly node: string
  readonly round: number
  readonly status: 'ok' | 'failed'
  readonly error?: string
  readonly load?: LoadResult
  /** Server process CPU time per request, µs (user + system, all threads). */
  readonly cpuUsPerRequest?: number | undefined
  /** Redis commands per request (INFO commandstats delta, without info/ping). */
  readonly redisCommandsPerRequest?: number | undefined
  /** The same, per command name (commands run inside Lua scripts are counted by Redis too). */
  readonly redisCommandMix?: Readonly<Record<string, number>> | undefined
  /** redis-server CPU time per request, µs. */
  readonly redisCpuUsPerRequest?: number | undefined
  /**
   * From the accounting load (MONITOR): commands the server sent per request, and commands run
   * inside scripts per request; together they match `redisCommandsPerRequest`.
   */
  readonly redisSentPerRequest?: number | undefined
  readonly redisInScriptsPerRequest?: number | undefined
  readonly redisSentMix?: Readonly<Record<string, number>> | undefined
  /** Session cache misses per request and commands sent per miss, in the accounting load. */
  readonly accountMissesPerRequest?: number | undefined
  readonly redisSentPerMiss?: number | undefined
  readonly cache?: { readonly hits: number, readonly misses: number } | undefined
  /**
   * CPU used during the timed load by processes that are not part of the measurement (not the
   * server, its Redis, the load generator or the harness), plus hypervisor steal time, in % of
   * one CPU: other work on the machine. Above a few % the numbers are disturbed.
   */
  readonly foreignCpuPct?: number | undefined
}

/** Failing responses or socket errors under load make a run FAILED (more than 0.1 %). */
const ERROR_TOLERANCE = 0.001

async function readStats (origin: string, path: string | undefined): Promise<{ hits: number, misses: number } | undefined> {
  if (path === undefined) return undefined
  const body = json(await send(origin, { method: 'GET', path }))
  return { hits: Number(body['cacheHits']), misses: Number(body['cacheMisses']) }
}

function commandMix (before: Map<string, number> | undefined, after: Map<string, number> | undefined, requests: number): Record<string, number> | undefined {
  if (before === undefined || after === undefined || requests === 0) return undefined
  const mix: Record<string, number> = {}
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0)
    if (delta > 0) mix[name] = Math.round((delta / requests) * 1000) / 1000
  }
  return mix
}

function sum (stats: Map<string, number> | undefined): number | undefined {
  if (stats === undefined) return undefined
  let total = 0
  for (const calls of stats.values()) total += calls
  return total
}

function perRequest (before: number | undefined, after: number | undefined, requests: number): number | undefined {
  return before === undefined || after === undefined || requests === 0 ? undefined : (after - before) / requests
}

function foreign (busy0: number | undefined, busy1: number | undefined, ours: Array<[number | undefined, number | undefined]>, elapsedUs: number): number | undefined {
  if (busy0 === undefined || busy1 === undefined) return undefined
  let rest = busy1 - busy0
  for (const [a, b] of ours) if (a !== undefined && b !== undefined) rest -= b - a
  return Math.max(0, (rest / elapsedUs) * 100)
}

function perMix (counts: Map<string, number>, requests: number): Record<string, number> {
  const mix: Record<string, number> = {}
  for (const [name, n] of [...counts].sort()) mix[name] = Math.round((n / requests) * 1000) / 1000
  return mix
}

export async function runVariant (variant: Variant, round: number, s: RunSettings): Promise<Run> {
  const node = process.version
  const store = variant.usesCluster === true ? s.cluster : s.redis
  const redis = variant.usesRedis ? store : undefined
  // Commands are counted on the harness Redis for every variant that says so, including
  // built-in servers without Redis (a measured 0, not an assumed one).
  const counted = variant.usesRedis || variant.measureRedis === true ? store : undefined
  if (variant.usesRedis && redis === undefined) return { variant: variant.name, node, round, status: 'failed', error: 'needs the harness Redis' }
  await redis?.flush()
  let server
  try {
    server = await startServer(variant.name, variant.server, s.pin.server, { redisUrl: redis?.url ?? '', redisUrls: redis?.urls ?? '' })
  } catch (err) {
    return { variant: variant.name, node, round, status: 'failed', error: (err as Error).message }
  }
  try {
    let plan: LoadPlan
    try {
      plan = await variant.prepare({ origin: server.origin, redis })
    } catch (err) {
      return { variant: variant.name, node, round, status: 'failed', error: `check failed: ${(err as Error).message}` }
    }
    const settings = { origin: server.origin, connections: s.connections, pinPrefix: s.pin.load, tmpDir: s.tmpDir }
    if (s.warmupS > 0) await s.generator.run(plan, { ...settings, durationS: s.warmupS })

    const stats0 = await readStats(server.origin, variant.statsPath)
    const busy0 = systemBusyUs()
    const own0 = selfAndReapedChildrenUs()
    const started = performance.now()
    const cpu0 = cpuTimeUs(server.pid)
    const redisCpu0 = counted?.cpuUs()
    const calls0 = await counted?.calls()
    const load = await s.generator.run(plan, { ...settings, durationS: s.durationS })
    const cpu1 = cpuTimeUs(server.pid)
    const redisCpu1 = counted?.cpuUs()
    const calls1 = await counted?.calls()
    const elapsedUs = (performance.now() - started) * 1000
    const own1 = selfAndReapedChildrenUs()
    const busy1 = systemBusyUs()
    const stats1 = await readStats(server.origin, variant.statsPath)

    const failures = load.badStatus + load.socketErrors
    let accounted: Partial<Run> = {}
    if (redis !== undefined && s.accountS > 0) {
      const before = await readStats(server.origin, variant.statsPath)
      const monitor = await redis.monitor()
      const acc = await s.generator.run(plan, { ...settings, durationS: s.accountS })
      const { sent, inScripts } = await monitor.stop()
      const after = await readStats(server.origin, variant.statsPath)
      const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
      const misses = before === undefined || after === undefined ? undefined : after.misses - before.misses
      if (acc.requests > 0) {
        accounted = {
          redisSentPerRequest: total(sent) / acc.requests,
          redisInScriptsPerRequest: total(inScripts) / acc.requests,
          redisSentMix: perMix(sent, acc.requests),
          accountMissesPerRequest: misses === undefined ? undefined : misses / acc.requests,
          // Per miss only where misses are the load (a few stray ones would divide everything).
          redisSentPerMiss: misses === undefined || misses < acc.requests / 100 ? undefined : total(sent) / misses,
        }
      }
    }
    const run: Run = {
      variant: variant.name,
      node,
      round,
      status: 'ok',
      load,
      cpuUsPerRequest: perRequest(cpu0, cpu1, load.requests),
      redisCommandsPerRequest: perRequest(sum(calls0), sum(calls1), load.requests),
      redisCommandMix: commandMix(calls0, calls1, load.requests),
      redisCpuUsPerRequest: redis === undefined ? undefined : perRequest(redisCpu0, redisCpu1, load.requests),
      foreignCpuPct: foreign(busy0, busy1, [[own0, own1], [cpu0, cpu1], [redisCpu0, redisCpu1]], elapsedUs),
      cache: stats0 === undefined || stats1 === undefined ? undefined : { hits: stats1.hits - stats0.hits, misses: stats1.misses - stats0.misses },
      ...accounted,
    }
    if (load.requests === 0 || failures > load.requests * ERROR_TOLERANCE) {
      return { ...run, status: 'failed', error: `${load.badStatus} bad statuses and ${load.socketErrors} socket errors in ${load.requests} requests under load` }
    }
    return run
  } catch (err) {
    return { variant: variant.name, node, round, status: 'failed', error: (err as Error).message }
  } finally {
    await server.stop()
  }
}
