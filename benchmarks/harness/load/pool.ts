/**
 * Drawing cookies for a `pool` plan: uniform, or Zipf-distributed over the cookies' order. The
 * same cumulative table drives both load generators (wrk gets it as a Lua table).
 */
import type { PoolPlan } from './types.ts'

/** Cumulative weights in (0, 1]: entry k is P(rank ≤ k + 1). */
export function cumulative (n: number, zipf: number): Float64Array {
  const out = new Float64Array(n)
  let total = 0
  for (let k = 0; k < n; k++) {
    total += zipf === 0 ? 1 : 1 / Math.pow(k + 1, zipf)
    out[k] = total
  }
  for (let k = 0; k < n; k++) out[k] = (out[k] as number) / total
  return out
}

/** The first index whose cumulative weight is ≥ r (binary search). */
export function pick (cum: Float64Array, r: number): number {
  let lo = 0
  let hi = cum.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((cum[mid] as number) < r) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A function returning one cookie per call, drawn as the plan says. */
export function sampler (plan: PoolPlan, random: () => number = Math.random): () => string {
  const cum = cumulative(plan.cookies.length, plan.zipf)
  return () => plan.cookies[pick(cum, random())] as string
}
