/**
 * What a load generator is asked to do and what it reports, independent of the tool.
 */
import type { RequestSpec } from '../http.ts'

export type { RequestSpec }

/**
 * `fixed`: every request is the same (headers include the session cookie, if any).
 * `cycle`: `first` (e.g. POST /login) sets a cookie; a later request sends `second`
 * (e.g. POST /logout) with that cookie, so each cookie is used exactly once.
 * `pool`: see PoolPlan.
 */
export type LoadPlan =
  | { readonly kind: 'fixed', readonly request: RequestSpec }
  | { readonly kind: 'cycle', readonly first: RequestSpec, readonly second: RequestSpec }
  | PoolPlan

/**
 * `pool`: every request is `request` with one cookie of `cookies` (as a `cookie` header), drawn
 * at random: uniformly when `zipf` is 0, else the k-th cookie with weight 1/k^zipf (a few hot
 * sessions and a long tail, like real traffic).
 */
export interface PoolPlan {
  readonly kind: 'pool'
  readonly request: RequestSpec
  readonly cookies: readonly string[]
  readonly zipf: number
}

export interface LoadSettings {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  readonly durationS: number
  readonly connections: number
  /** taskset prefix for the load generator process (empty when not pinned). */
  readonly pinPrefix: readonly string[]
  /** Scratch directory for generated scripts. */
  readonly tmpDir: string
}

export interface LoadResult {
  readonly requests: number
  readonly durationS: number
  readonly rps: number
  readonly latencyMs: { readonly mean: number, readonly p50: number, readonly p90: number, readonly p99: number, readonly max: number }
  /** Responses with a status ≥ 400 (wrk) or outside 2xx (autocannon). */
  readonly badStatus: number
  /** Connect, read, write errors and timeouts. */
  readonly socketErrors: number
}

export interface LoadGenerator {
  readonly name: string
  run (plan: LoadPlan, settings: LoadSettings): Promise<LoadResult>
}
