/**
 * The harness's own throw-away redis-server (started with the tests' helper, pinned to the
 * server CPU): command counts from `INFO commandstats` and its CPU time, for per-request costs.
 */
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.ts'
import { cpuTimeUs } from './cpu.ts'
import type { Pinning } from './pinning.ts'
import { track, untrack } from './processes.ts'

export interface BenchRedis {
  readonly url: string
  /** Raw RESP reply of one command (for correctness checks). */
  command (...args: string[]): Promise<string>
  /** Calls of every command so far except `info` and `ping`. */
  calls (): Promise<number>
  cpuUs (): number | undefined
  flush (): Promise<void>
  stop (): Promise<void>
}

export async function startBenchRedis (pin: Pinning): Promise<BenchRedis> {
  const server: RedisServer = await startRedis()
  const pid = server.pid
  track(pid, 'redis-server')
  pin.pinServerPid(pid)
  return {
    url: server.url,
    command: (...args) => server.command(...args),
    calls: () => server.totalCalls(['info', 'ping']),
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
