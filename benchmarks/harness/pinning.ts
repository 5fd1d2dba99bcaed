/**
 * CPU pinning with `taskset` (util-linux): the server under test (and its Redis) on one CPU,
 * the load generator on another, so neither steals the other's cycles. Off when `taskset` is
 * missing, when the machine has a single CPU, or with `--no-pin`.
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

export interface Pinning {
  readonly enabled: boolean
  /** Command prefix for server processes, e.g. `['taskset', '-c', '1']`. */
  readonly server: string[]
  /** Command prefix for the load generator. */
  readonly load: string[]
  /** Moves a running process (all its threads) to the server CPU. */
  pinServerPid (pid: number): void
  readonly description: string
}

export function hasCommand (command: string): boolean {
  const probe = spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
  return probe.status === 0
}

export function pinning (wanted: boolean, serverCpu: number, loadCpu: number): Pinning {
  const cpus = availableParallelism()
  const reason = !wanted
    ? 'off (--no-pin)'
    : !hasCommand('taskset')
        ? 'off (taskset not found)'
        : cpus < 2
          ? 'off (single CPU)'
          : Math.max(serverCpu, loadCpu) >= cpus || serverCpu === loadCpu
            ? `off (CPUs ${serverCpu}/${loadCpu} not distinct on a ${cpus}-CPU machine)`
            : undefined
  if (reason !== undefined) {
    return { enabled: false, server: [], load: [], pinServerPid: () => {}, description: reason }
  }
  return {
    enabled: true,
    server: ['taskset', '-c', String(serverCpu)],
    load: ['taskset', '-c', String(loadCpu)],
    pinServerPid (pid) {
      spawnSync('taskset', ['-a', '-p', '-c', String(serverCpu), String(pid)], { stdio: 'ignore' })
    },
    description: `server + redis on CPU ${serverCpu}, load generator on CPU ${loadCpu} (taskset)`,
  }
}
