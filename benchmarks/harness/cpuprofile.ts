/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) into self time per function and per
 * place (this plugin's modules, each npm package, node internals, GC), idle time excluded.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
}

interface CpuProfile {
  endTime: number
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  readonly name: string
  readonly where: string
  readonly ms: number
  readonly pct: number
}

/** Where a frame's code lives: `lib/session.ts`, `npm:fastify`, `node:internal`, or a V8 pseudo-frame. */
export function placeOf (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return `npm:${pkg[1] as string}`
  if (url.startsWith('node:')) return 'node:internal'
  const local = /\/((?:lib|benchmarks|test)\/.*)$/.exec(url)
  return local === null ? url : (local[1] as string)
}

/** With `lastMs`, only samples from the last `lastMs` ms before the profile ended (e.g. the load, not start-up). */
export function summariseProfile (path: string, lastMs = Infinity): { total: number, functions: SelfTime[], places: SelfTime[] } {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  // Sample i happened at endTime - (sum of the deltas after it); walk backwards to find the cut.
  let from = 0
  let t = profile.endTime
  for (let i = profile.samples.length - 1; i >= 0; i--) {
    if (profile.endTime - t > lastMs * 1000) {
      from = i + 1
      break
    }
    t -= profile.timeDeltas[i] ?? 0
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const fn = new Map<string, { name: string, where: string, us: number }>()
  const place = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    if (i < from) return
    const node = byId.get(id)
    const dt = profile.timeDeltas[i] ?? 0
    if (node === undefined || node.callFrame.functionName === '(idle)') return
    const { functionName, url, lineNumber } = node.callFrame
    const where = placeOf(url, functionName)
    const name = functionName === '' ? '(anonymous)' : functionName
    const key = `${name}@${url}:${lineNumber}`
    const entry = fn.get(key) ?? { name, where: url === '' ? where : `${where}:${lineNumber + 1}`, us: 0 }
    entry.us += dt
    fn.set(key, entry)
    place.set(where, (place.get(where) ?? 0) + dt)
    total += dt
  })
  const pct = (us: number): number => (total === 0 ? 0 : (us / total) * 100)
  return {
    total: total / 1000,
    functions: [...fn.values()].sort((a, b) => b.us - a.us).map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, pct: pct(e.us) })),
    places: [...place.entries()].sort((a, b) => b[1] - a[1]).map(([where, us]) => ({ name: where, where, ms: us / 1000, pct: pct(us) })),
  }
}
