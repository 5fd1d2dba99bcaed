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
