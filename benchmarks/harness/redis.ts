/**
 * The harness's own throw-away Redis (started with the tests' helpers, pinned to `--redis-cpu`):
 * one redis-server, or a Redis Cluster for the variants that need one. Command counts from
 * `INFO commandstats` (summed over every node of a cluster) and CPU time, for per-request costs.
 */
import { startCluster } from '../../test/helpers/redis-cluster.ts'
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.ts'
import { cpuTimeUs } from './cpu.ts'
import type { Pinning } from './pinning.ts'
import { track, untrack } from './processes.ts'

export interface BenchRedis {
  readonly url: string
  /** Every root node's URL, comma-separated (a cluster), or `url`. */
  readonly urls: string
  /** Raw RESP reply of one command (for correctness checks); on a cluster, sent to the key's master. */
  command (...args: string[]): Promise<string>
  /** Calls per command so far (`INFO commandstats`; commands run inside scripts included), without `info` and `ping`. */
  calls (): Promise<Map<string, number>>
  cpuUs (): number | undefined
  flush (): Promise<void>
  stop (): Promise<void>
}

/** Commands the harness and the servers' idle probes send, and (on a cluster) the nodes' own traffic. */
const NOT_COUNTED = ['info', 'ping', 'cluster', 'replconf']

function parseStats (text: string, into: Map<string, number>): void {
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1] as string
    if (!NOT_COUNTED.includes(name)) into.set(name, (into.get(name) ?? 0) + Number(m[2]))
  }
}

export async function startBenchRedis (pin: Pinning): Promise<BenchRedis> {
  const server: RedisServer = await startRedis()
  const pid = server.pid
  track(pid, 'redis-server')
  pin.pinRedisPid(pid)
  return {
    url: server.url,
    urls: server.url,
    command: (...args) => server.command(...args),
    async calls () {
      const stats = new Map<string, number>()
      parseStats(await server.command('INFO', 'commandstats'), stats)
      return stats
    },
    cpuUs: () => cpuTimeUs(pid),
    async flush () {
      await server.command('FLUSHALL')
    },
    async stop () {
      await server.stop()
      untrack(pid)
    },
  }
}

/** A 3-master Redis Cluster without replicas (the benchmark measures throughput, not failover). */
export async function startBenchCluster (pin: Pinning): Promise<BenchRedis> {
  const cluster = await startCluster({ replicasPerMaster: 0 })
  const pids = cluster.nodes.map((n) => n.pid)
  for (const pid of pids) {
    track(pid, 'redis-server (cluster)')
    pin.pinRedisPid(pid)
  }
  return {
    url: cluster.rootNodes[0]?.url ?? '',
    urls: cluster.rootNodes.map((r) => r.url).join(','),
    async command (...args) {
      const key = args[1]
      const node = key === undefined ? cluster.masters()[0] : await cluster.masterForKey(key)
      return await cluster.command(node?.port ?? 0, ...args)
    },
    async calls () {
      const stats = new Map<string, number>()
      for (const node of cluster.nodes) parseStats(await cluster.command(node.port, 'INFO', 'commandstats'), stats)
      return stats
    },
    cpuUs () {
      let total = 0
      for (const pid of pids) {
        const us = cpuTimeUs(pid)
        if (us === undefined) return undefined
        total += us
      }
      return total
    },
    async flush () {
      for (const node of cluster.masters()) await cluster.command(node.port, 'FLUSHALL')
    },
    async stop () {
      await cluster.stop()
      for (const pid of pids) untrack(pid)
    },
  }
}
