/**
 * Budgets (benchmarks/budgets.json): each names a variant, a metric of its summary, a
 * comparator and a value. A budget whose variant failed or was not run fails too.
 */
import { readFileSync } from 'node:fs'
import type { Summary } from './stats.ts'

const METRICS = ['rps', 'ratioToBaseline', 'p50Ms', 'p99Ms', 'p99RatioToBaseline', 'cpuUsPerRequest', 'redisCommandsPerRequest', 'redisCpuUsPerRequest'] as const
type Metric = typeof METRICS[number]
const COMPARATORS = ['>=', '<=', '>', '<', '=='] as const
type Comparator = typeof COMPARATORS[number]

export interface Budget {
  readonly id: string
  readonly variant: string
  readonly metric: Metric
  readonly comparator: Comparator
  readonly value: number
  readonly description: string
}

export interface BudgetResult extends Budget {
  readonly actual: number | undefined
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
    const id = raw.id ?? `${raw.variant}.${raw.metric}`
    return { id, variant: raw.variant, metric: raw.metric as Metric, comparator: raw.comparator as Comparator, value: raw.value, description: raw.description ?? id }
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

export function evaluateBudgets (budgets: readonly Budget[], summaries: readonly Summary[]): BudgetResult[] {
  return budgets.map((b): BudgetResult => {
    const s = summaries.find((x) => x.name === b.variant)
    if (s === undefined) return { ...b, actual: undefined, passed: false, reason: 'variant not run' }
    if (s.status !== 'ok') return { ...b, actual: undefined, passed: false, reason: 'variant FAILED' }
    const actual = s[b.metric]
    if (actual === undefined) return { ...b, actual, passed: false, reason: 'not measured' }
    return { ...b, actual, passed: compare(actual, b.comparator, b.value) }
  })
}
