/**
 * argon2id cost at the shipped password defaults on this machine.
 *
 *   npx tsx benchmarks/argon2.ts            # shipped defaults (plus OWASP's minimum for context)
 *   BENCH_HASHES=20 BENCH_BURST=40 npx tsx benchmarks/argon2.ts
 *
 * Prints, per configuration: median time of a single hash, of a failed verify and of the dummy
 * verify (unknown user); the peak resident memory one hash adds (from VmHWM on Linux); and
 * hashes per second for a burst at `maxConcurrency = availableParallelism()`.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { createPasswords } from '../lib/password/index.ts'
import type { PasswordOptions } from '../lib/types.ts'

const SAMPLES = Number(process.env['BENCH_HASHES'] ?? 15)
const BURST = Number(process.env['BENCH_BURST'] ?? 40)
const PASSWORD = 'correct horse battery staple'

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Peak resident set size of this process so far, in KiB (Linux only). */
function peakRssKiB (): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

async function measure (label: string, options: PasswordOptions): Promise<void> {
  const single = createPasswords({ ...options, maxConcurrency: 1 })
  // Peak memory first, while this configuration has not yet raised the high-water mark.
  const before = peakRssKiB()
  const stored = await single.hash(PASSWORD)
  const after = peakRssKiB()
  await single.verify(null, PASSWORD) // makes the dummy hash
  await single.verify(stored, 'wrong') // warm-up

  const hashMs: number[] = []
  const failMs: number[] = []
  const dummyMs: number[] = []
  for (let i = 0; i < SAMPLES; i++) {
    hashMs.push(await timed(() => single.hash(PASSWORD)))
    failMs.push(await timed(() => single.verify(stored, 'wrong password')))
    dummyMs.push(await timed(() => single.verify(null, 'wrong password')))
  }

  const cores = availableParallelism()
  const burst = createPasswords({ ...options, maxConcurrency: cores })
  const burstBefore = peakRssKiB()
  const start = performance.now()
  await Promise.all(Array.from({ length: BURST }, () => burst.hash(PASSWORD)))
  const seconds = (performance.now() - start) / 1000
  const burstAfter = peakRssKiB()

  const { memoryCost, timeCost, parallelism } = single.options
  console.log(`\n${label}: m=${memoryCost} KiB (${(memoryCost / 1024).toFixed(0)} MiB), t=${timeCost}, p=${parallelism}`)
  console.log(`  hash, median of ${SAMPLES}:          ${median(hashMs).toFixed(1)} ms (min ${Math.min(...hashMs).toFixed(1)}, max ${Math.max(...hashMs).toFixed(1)})`)
  console.log(`  failed verify, median:        ${median(failMs).toFixed(1)} ms`)
  console.log(`  dummy verify (no user), med.: ${median(dummyMs).toFixed(1)} ms`)
  console.log(`  argon2 memory per hash (m):   ${(memoryCost / 1024).toFixed(1)} MiB`)
  if (before !== undefined && after !== undefined) {
    console.log(`  peak RSS added by one hash:   ${((after - before) / 1024).toFixed(1)} MiB (VmHWM)`)
  }
  console.log(`  burst of ${BURST} at maxConcurrency=${cores}: ${(BURST / seconds).toFixed(1)} hashes/s (${(seconds * 1000).toFixed(0)} ms)`)
  if (burstBefore !== undefined && burstAfter !== undefined) {
    console.log(`  peak RSS added by the burst:  ${((burstAfter - burstBefore) / 1024).toFixed(1)} MiB (VmHWM, on top of the above)`)
  }
}

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, availableParallelism=${availableParallelism()}, UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '4 (default)'}`)
await measure('shipped defaults', {})
if (process.env['BENCH_ONLY_DEFAULTS'] === undefined) {
  await measure('OWASP minimum, for comparison', { memoryCost: 19456, timeCost: 2, parallelism: 1 })
}
