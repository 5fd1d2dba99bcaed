/**
 * Picks the load generator: wrk when it is on PATH (a native generator keeps up with bare
 * Fastify on one CPU), otherwise autocannon in a separate process, saying so.
 */
import { hasCommand } from '../pinning.ts'
import { autocannonGenerator } from './autocannon.ts'
import type { LoadGenerator } from './types.ts'
import { wrk } from './wrk.ts'

export type { LoadGenerator, LoadPlan, LoadResult, LoadSettings } from './types.ts'

export function pickLoadGenerator (wanted: 'auto' | 'wrk' | 'autocannon'): { generator: LoadGenerator, note: string } {
  if (wanted === 'autocannon') return { generator: autocannonGenerator, note: 'autocannon (--load autocannon)' }
  if (hasCommand('wrk')) return { generator: wrk, note: 'wrk (1 thread)' }
  if (wanted === 'wrk') throw new Error('--load wrk: wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)')
  return {
    generator: autocannonGenerator,
    note: 'autocannon in a separate process: wrk is not on PATH (apt-get install wrk); ' +
      'autocannon may saturate before bare Fastify does, which compresses the ratios',
  }
}
