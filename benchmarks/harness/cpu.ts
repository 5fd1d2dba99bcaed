/**
 * CPU time of a process from /proc/<pid>/stat (Linux): utime + stime of all its threads, in
 * microseconds. `undefined` where /proc is not available, so the column reads "n/a".
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    const n = Number(out.stdout?.trim())
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100
  }
  return ticksPerSecond
}

export function cpuTimeUs (pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Field 2 (comm) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11]) // field 14
  const stime = Number(fields[12]) // field 15
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
  return ((utime + stime) / clockTicks()) * 1e6
}

/** Busy time of all CPUs together (from the `cpu` line of /proc/stat), in microseconds. */
export function systemBusyUs (): number | undefined {
  let line: string | undefined
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  } catch {
    return undefined
  }
  const f = (line ?? '').trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal …: everything but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
  return (busy / clockTicks()) * 1e6
}

/** CPU time of this process plus that of its children that have exited (the load generator). */
export function selfAndReapedChildrenUs (): number | undefined {
  let stat: string
  try {
    stat = readFileSync('/proc/self/stat', 'utf8')
  } catch {
    return undefined
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
  // fields 14-17: utime stime cutime cstime
  return (((f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)) / clockTicks()) * 1e6
}
