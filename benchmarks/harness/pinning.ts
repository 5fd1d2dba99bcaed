/**
 * CPU pinning with `taskset` (util-linux): the server under test on one CPU, the load generator
 * on another, so neither steals the other's cycles. The harness's redis-server goes on its own
 * CPU when asked, by default beside the load generator: in production Redis does not run on the
 * application's cores, so its CPU time must not count against the server's req/s (it is
 * reported separately as Redis CPU µs/request). Off when `taskset` is missing, when the machine
 * has a single CPU, or with `--no-pin`.
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

export interface Pinning {
  readonly enabled: boolean
  /** Command prefix for server processes, e.g. `['taskset', '-c', '1']`. */
  readonly server: string[]
  /** Command prefix for the load generator. */
  readonly load: string[]
  /** Moves the running redis-server (all its threads) to the Redis CPU. */
  pinRedisPid (pid: number): void
  readonly description: string
}

export function hasCommand (command: string): boolean {
  const probe = spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
  return probe.status === 0
}

export function pinning (wanted: boolean, serverCpu: number, loadCpu: number, redisCpu = loadCpu): Pinning {
  const cpus = availableParallelism()
  const reason = !wanted
    ? 'off (--no-pin)'
    : !hasCommand('taskset')
        ? 'off (taskset not found)'
        : cpus < 2
          ? 'off (single CPU)'
          : Math.max(serverCpu, loadCpu, redisCpu) >= cpus || serverCpu === loadCpu
            ? `off (CPUs ${serverCpu}/${loadCpu}/${redisCpu} not valid and distinct on a ${cpus}-CPU machine)`
            : undefined
  if (reason !== undefined) {
    return { enabled: false, server: [], load: [], pinRedisPid: () => {}, description: reason }
  }
  return {
    enabled: true,
    server: ['taskset', '-c', String(serverCpu)],
    load: ['taskset', '-c', String(loadCpu)],
    pinRedisPid (pid) {
      spawnSync('taskset', ['-a', '-p', '-c', String(redisCpu), String(pid)], { stdio: 'ignore' })
    },
    description: `server on CPU ${serverCpu}, load generator on CPU ${loadCpu}, redis-server on CPU ${redisCpu} (taskset)`,
  }
}
