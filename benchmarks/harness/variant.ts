/**
 * A benchmark variant: which server to start, what its baseline is, how to check it answers
 * correctly, and what load to send. The variants live in variants.ts.
 */
import type { LoadPlan } from './load/types.ts'
import type { BenchRedis } from './redis.ts'
import type { ServerSpec } from './server-process.ts'

export interface PrepareContext {
  /** `http://127.0.0.1:<port>` of the server just started. */
  readonly origin: string
  /** The harness's Redis, when the variant uses it. */
  readonly redis: BenchRedis | undefined
}

export type VariantGroup = 'baseline' | 'plugin' | 'alternative' | 'against'

export interface Variant {
  /** Stable id used in budgets.json, --variants and the JSON output. */
  readonly name: string
  readonly label: string
  readonly group: VariantGroup
  /** Name of the variant whose same-round req/s and p99 are this one's denominators. */
  readonly baseline?: string
  readonly server: ServerSpec
  /** Started with the harness's Redis (`{redisUrl}` in its command). */
  readonly usesRedis: boolean
  /**
   * With `usesRedis`: the harness's Redis is a 3-master Redis Cluster (`{redisUrls}`: every root
   * node, comma-separated); commands and CPU are summed over its nodes.
   */
  readonly usesCluster?: boolean
  /**
   * A variant measured in the same round whose requests are all cache hits (e.g. `hardened-read`):
   * its server CPU per request is subtracted to report the cost of one cache miss.
   */
  readonly missBaseline?: string
  /**
   * Sets up state (e.g. logs in), checks that the server answers correctly, and returns the
   * load to send. Throws when the check fails: the variant is then reported FAILED, not timed.
   */
  prepare (ctx: PrepareContext): Promise<LoadPlan>
  /** Count harness-Redis commands even though the server is not given it (a measured 0). */
  readonly measureRedis?: boolean
  /** GET path answering `{ cacheHits, cacheMisses }` (read before and after the load). */
  readonly statsPath?: string
  /** Requests one operation takes (2 for a login + logout cycle); per-operation costs multiply by it. */
  readonly requestsPerOperation?: number
  /** For an `--against` variant: the variant of this checkout it is compared with. */
  readonly counterpart?: string
}
