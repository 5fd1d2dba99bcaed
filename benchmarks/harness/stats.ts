/**
 * From runs to results: medians across rounds, and ratios to the baseline taken per round (the
 * baseline measured in the same round, minutes apart at most) before the median is taken.
 */
import type { Run } from './runner.ts'
import type { Variant } from './variant.ts'

export function median (values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

function range (values: readonly number[]): [number, number] | undefined {
  return values.length === 0 ? undefined : [Math.min(...values), Math.max(...values)]
}

function defined (values: ReadonlyArray<number | undefined>): number[] {
  return values.filter((v): v is number => v !== undefined && Number.isFinite(v))
}

export interface Summary {
  readonly name: string
  /** The Node.js that ran the server. */
  readonly node: string
  readonly label: string
  readonly group: string
  readonly baseline: string | undefined
  /** `--against` variants: the variant of this checkout they are compared with. */
  readonly counterpart: string | undefined
  readonly status: 'ok' | 'failed'
  readonly errors: readonly string[]
  readonly rounds: number
  readonly rps: number | undefined
  readonly ratioToBaseline: number | undefined
  /** Lowest and highest per-round ratio: the spread the median hides. */
  readonly ratioRange: readonly [number, number] | undefined
  readonly p50Ms: number | undefined
  readonly p99Ms: number | undefined
  readonly p99RatioToBaseline: number | undefined
  readonly p99RatioRange: readonly [number, number] | undefined
  readonly cpuUsPerRequest: number | undefined
  /** Server CPU µs per request over the baseline's, same round (median of per-round differences). */
  readonly cpuOverheadUs: number | undefined
  readonly redisCommandsPerRequest: number | undefined
  /** Requests per operation (2 for a login + logout cycle, else 1). */
  readonly requestsPerOperation: number
  /** Redis commands per operation (INFO commandstats: sent plus run inside scripts). */
  readonly redisCommandsPerOperation: number | undefined
  /** Of those, sent by the server (MONITOR, accounting load), and run inside scripts. */
  readonly redisSentPerOperation: number | undefined
  readonly redisInScriptsPerOperation: number | undefined
  /** Median calls per request of each command the server sent (MONITOR). */
  readonly redisSentMix: Readonly<Record<string, number>> | undefined
  /** Commands sent per session cache miss (accounting load), where there were misses. */
  readonly redisSentPerMiss: number | undefined
  readonly redisCpuUsPerRequest: number | undefined
  /** Median calls per request of each Redis command (script-internal commands included). */
  readonly redisCommandMix: Readonly<Record<string, number>> | undefined
  readonly cacheHitRate: number | undefined
  /** Session cache misses per request (median of rounds). */
  readonly missesPerRequest: number | undefined
  /**
   * With a `missBaseline`: server CPU of one miss, µs — (this variant's CPU per request minus the
   * all-hits variant's, same round) ÷ misses per request; median of rounds.
   */
  readonly cpuUsPerMiss: number | undefined
  /** Redis commands per miss: commands per request ÷ misses per request (median of rounds). */
  readonly redisCommandsPerMiss: number | undefined
  /** Highest CPU use of unrelated processes during this variant's timed runs, % of one CPU. */
  readonly foreignCpuPctMax: number | undefined
  /** Per-round req/s, for spread. */
  readonly rpsByRound: readonly number[]
}

function mixMedian (runs: readonly Run[]): Record<string, number> | undefined {
  const mixes = runs.map((r) => r.redisCommandMix).filter((m) => m !== undefined)
  if (mixes.length === 0) return undefined
  const names = new Set(mixes.flatMap((m) => Object.keys(m)))
  const out: Record<string, number> = {}
  for (const name of [...names].sort()) out[name] = median(mixes.map((m) => m[name] ?? 0)) ?? 0
  return out
}

function sentMixMedian (runs: readonly Run[]): Record<string, number> | undefined {
  const mixes = runs.map((r) => r.redisSentMix).filter((m) => m !== undefined)
  if (mixes.length === 0) return undefined
  const names = new Set(mixes.flatMap((m) => Object.keys(m)))
  const out: Record<string, number> = {}
  for (const name of [...names].sort()) out[name] = median(mixes.map((m) => m[name] ?? 0)) ?? 0
  return out
}

/** Median of the per-round ratios of `a`'s req/s to `b`'s (both ok in that round). */
export function roundRatio (runs: readonly Run[], a: string, b: string): { median: number | undefined, range: [number, number] | undefined } {
  const ratios: number[] = []
  for (const run of runs) {
    if (run.variant !== a || run.status !== 'ok' || run.load === undefined) continue
    const other = runs.find((r) => r.variant === b && r.round === run.round && r.status === 'ok')
    if (other?.load === undefined || other.load.rps === 0) continue
    ratios.push(run.load.rps / other.load.rps)
  }
  return { median: median(ratios), range: range(ratios) }
}

export function summarise (variants: readonly Variant[], runs: readonly Run[]): Summary[] {
  const ok = (name: string): Run[] => runs.filter((r) => r.variant === name && r.status === 'ok')
  return variants.map((v): Summary => {
    const mine = runs.filter((r) => r.variant === v.name)
    const good = ok(v.name)
    const errors = mine.filter((r) => r.status === 'failed').map((r) => `round ${r.round + 1}: ${r.error ?? 'failed'}`)
    const ratios: number[] = []
    const p99Ratios: number[] = []
    const overheads: number[] = []
    if (v.baseline !== undefined) {
      for (const run of good) {
        const base = ok(v.baseline).find((b) => b.round === run.round)
        if (base?.load === undefined || run.load === undefined) continue
        ratios.push(run.load.rps / base.load.rps)
        p99Ratios.push(run.load.latencyMs.p99 / base.load.latencyMs.p99)
        if (run.cpuUsPerRequest !== undefined && base.cpuUsPerRequest !== undefined) overheads.push(run.cpuUsPerRequest - base.cpuUsPerRequest)
      }
    }
    const rpo = v.requestsPerOperation ?? 1
    const times = (n: number | undefined): number | undefined => n === undefined ? undefined : n * rpo
    const commands = median(defined(good.map((r) => r.redisCommandsPerRequest)))
    const hits = good.reduce((n, r) => n + (r.cache?.hits ?? 0), 0)
    const misses = good.reduce((n, r) => n + (r.cache?.misses ?? 0), 0)
    const missRate = (r: Run): number | undefined => r.cache === undefined || r.load === undefined || r.load.requests === 0 ? undefined : r.cache.misses / r.load.requests
    const perMiss = good.map((run) => {
      const rate = missRate(run)
      if (rate === undefined || rate === 0) return { cpu: undefined, redis: undefined }
      const base = v.missBaseline === undefined ? undefined : ok(v.missBaseline).find((b) => b.round === run.round)
      const cpu = run.cpuUsPerRequest === undefined || base?.cpuUsPerRequest === undefined ? undefined : (run.cpuUsPerRequest - base.cpuUsPerRequest) / rate
      return { cpu, redis: run.redisCommandsPerRequest === undefined ? undefined : run.redisCommandsPerRequest / rate }
    })
    return {
      name: v.name,
      node: good[0]?.node ?? mine[0]?.node ?? process.version,
      label: v.label,
      group: v.group,
      baseline: v.baseline,
      counterpart: v.counterpart,
      status: errors.length === 0 && good.length > 0 ? 'ok' : 'failed',
      errors,
      rounds: good.length,
      rps: median(good.map((r) => r.load?.rps ?? 0)),
      ratioToBaseline: median(ratios),
      ratioRange: range(ratios),
      p50Ms: median(defined(good.map((r) => r.load?.latencyMs.p50))),
      p99Ms: median(defined(good.map((r) => r.load?.latencyMs.p99))),
      p99RatioToBaseline: median(p99Ratios),
      p99RatioRange: range(p99Ratios),
      cpuUsPerRequest: median(defined(good.map((r) => r.cpuUsPerRequest))),
      cpuOverheadUs: median(overheads),
      redisCommandsPerRequest: commands,
      requestsPerOperation: rpo,
      redisCommandsPerOperation: times(commands),
      redisSentPerOperation: times(median(defined(good.map((r) => r.redisSentPerRequest)))),
      redisInScriptsPerOperation: times(median(defined(good.map((r) => r.redisInScriptsPerRequest)))),
      redisSentMix: sentMixMedian(good),
      redisSentPerMiss: median(defined(good.map((r) => r.redisSentPerMiss))),
      redisCpuUsPerRequest: median(defined(good.map((r) => r.redisCpuUsPerRequest))),
      redisCommandMix: mixMedian(good),
      cacheHitRate: hits + misses === 0 ? undefined : hits / (hits + misses),
      missesPerRequest: median(defined(good.map(missRate))),
      cpuUsPerMiss: median(defined(perMiss.map((p) => p.cpu))),
      redisCommandsPerMiss: median(defined(perMiss.map((p) => p.redis))),
      foreignCpuPctMax: good.some((r) => r.foreignCpuPct !== undefined) ? Math.max(...defined(good.map((r) => r.foreignCpuPct))) : undefined,
      rpsByRound: good.map((r) => r.load?.rps ?? 0),
    }
  })
}

/** Round r runs the variants rotated by r·⌊n/rounds⌋, so each one meets the machine in a different state. */
export function roundOrder<T> (items: readonly T[], round: number, rounds: number): T[] {
  const n = items.length
  if (n === 0) return []
  const shift = (round * Math.max(1, Math.floor(n / Math.max(1, rounds)))) % n
  return [...items.slice(shift), ...items.slice(0, shift)]
}
