/**
 * The harness's own throw-away redis-server (started with the tests' helper, pinned to
 * `--redis-cpu`): command counts from `INFO commandstats` and its CPU time, for per-request costs.
 */
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.ts'
import { cpuTimeUs } from './cpu.ts'
import type { Pinning } from './pinning.ts'
import { track, untrack } from './processes.ts'

export interface BenchRedis {
  readonly url: string
  /** Raw RESP reply of one command (for correctness checks). */
  command (...args: string[]): Promise<string>
  /** Calls per command so far (`INFO commandstats`; commands run inside scripts included), without `info` and `ping`. */
  calls (): Promise<Map<string, number>>
  cpuUs (): number | undefined
  flush (): Promise<void>
  stop (): Promise<void>
}

export async function startBenchRedis (pin: Pinning): Promise<BenchRedis> {
  const server: RedisServer = await startRedis()
  const pid = server.pid
  track(pid, 'redis-server')
  pin.pinRedisPid(pid)
  return {
    url: server.url,
    command: (...args) => server.command(...args),
    async calls () {
      const stats = await server.commandStats()
      stats.delete('info')
      stats.delete('ping')
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
