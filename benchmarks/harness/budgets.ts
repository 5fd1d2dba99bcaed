/**
 * Budgets (benchmarks/budgets.json): each names a variant, a metric of its summary, a
 * comparator and a value. With `versus` (another variant) the metric is `rps` and the value
 * compared is the median of the per-round ratios of the two variants' req/s. A budget whose
 * variant (or `versus`) failed or was not run fails too.
 */
import { readFileSync } from 'node:fs'
import type { Run } from './runner.ts'
import { roundRatio, type Summary } from './stats.ts'

const METRICS = [
  'rps', 'ratioToBaseline', 'p50Ms', 'p99Ms', 'p99RatioToBaseline', 'cpuUsPerRequest', 'cpuOverheadUs',
  'redisCommandsPerRequest', 'redisCommandsPerOperation', 'redisSentPerOperation', 'redisSentPerMiss', 'redisCpuUsPerRequest',
] as const
type Metric = typeof METRICS[number]
/** Metrics that count Redis commands. */
const COUNTS: readonly Metric[] = ['redisCommandsPerRequest', 'redisCommandsPerOperation', 'redisSentPerOperation', 'redisSentPerMiss']
const COMPARATORS = ['>=', '<=', '>', '<', '=='] as const
type Comparator = typeof COMPARATORS[number]

export interface Budget {
  readonly id: string
  readonly variant: string
  readonly metric: Metric
  readonly comparator: Comparator
  readonly value: number
  readonly description: string
  /** Compare req/s with this variant's, same round. */
  readonly versus?: string | undefined
}

export interface BudgetResult extends Budget {
  readonly actual: number | undefined
  /** With `versus`: the lowest and highest per-round ratio. */
  readonly range?: readonly [number, number] | undefined
  readonly passed: boolean
  readonly reason?: string
}

export function loadBudgets (path: string): Budget[] {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { budgets?: unknown }
  if (!Array.isArray(parsed.budgets)) throw new TypeError(`${path}: expected { "budgets": [...] }`)
  return parsed.budgets.map((raw: Partial<Budget>, i): Budget => {
    const where = `${path}: budgets[${i}]`
    if (typeof raw.variant !== 'string') throw new TypeError(`${where}.variant must be a variant name`)
    if (!METRICS.includes(raw.metric as Metric)) throw new TypeError(`${where}.metric must be one of ${METRICS.join(', ')}`)
    if (!COMPARATORS.includes(raw.comparator as Comparator)) throw new TypeError(`${where}.comparator must be one of ${COMPARATORS.join(' ')}`)
    if (typeof raw.value !== 'number') throw new TypeError(`${where}.value must be a number`)
    if (raw.versus !== undefined && (typeof raw.versus !== 'string' || raw.metric !== 'rps')) throw new TypeError(`${where}.versus must be a variant name, with metric rps`)
    const id = raw.id ?? `${raw.variant}.${raw.metric}`
    return { id, variant: raw.variant, metric: raw.metric as Metric, comparator: raw.comparator as Comparator, value: raw.value, description: raw.description ?? id, versus: raw.versus }
  })
}

function compare (actual: number, comparator: Comparator, value: number): boolean {
  switch (comparator) {
    case '>=': return actual >= value
    case '<=': return actual <= value
    case '>': return actual > value
    case '<': return actual < value
    case '==': return actual === value
  }
}

export function evaluateBudgets (budgets: readonly Budget[], summaries: readonly Summary[], runs: readonly Run[]): BudgetResult[] {
  return budgets.map((b): BudgetResult => {
    const s = summaries.find((x) => x.name === b.variant)
    if (s === undefined) return { ...b, actual: undefined, passed: false, reason: 'variant not run' }
    if (s.status !== 'ok') return { ...b, actual: undefined, passed: false, reason: 'variant FAILED' }
    if (b.versus !== undefined) {
      const other = summaries.find((x) => x.name === b.versus)
      if (other === undefined) return { ...b, actual: undefined, passed: false, reason: `${b.versus} not run` }
      if (other.status !== 'ok') return { ...b, actual: undefined, passed: false, reason: `${b.versus} FAILED` }
      const { median, range } = roundRatio(runs, b.variant, b.versus)
      if (median === undefined) return { ...b, actual: undefined, passed: false, reason: 'no round with both' }
      return { ...b, actual: median, range, passed: compare(median, b.comparator, b.value) }
    }
    const raw = s[b.metric]
    if (raw === undefined) return { ...b, actual: raw, passed: false, reason: 'not measured' }
    // Command counts are compared at the tables' resolution (0.01 per request or operation):
    // the link's probe (PING or ROLE, at most twice a second) is no per-request cost.
    const actual = COUNTS.includes(b.metric) ? Math.round(raw * 100) / 100 : raw
    return { ...b, actual, passed: compare(actual, b.comparator, b.value) }
  })
}
