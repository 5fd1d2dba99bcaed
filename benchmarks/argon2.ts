/**
 * argon2id cost at the shipped password defaults on this machine.
 *
 *   npx tsx benchmarks/argon2.ts            # shipped defaults (plus OWASP's minimum for context)
 *   BENCH_HASHES=20 BENCH_BURST=60 BENCH_ROUNDS=5 npx tsx benchmarks/argon2.ts
 *
 * Prints, per configuration: median time of a single hash, of a failed verify and of the dummy
 * verify (unknown user); the resident memory one hash adds (sampled from /proc on Linux); and
 * hashes per second for bursts at `maxConcurrency = availableParallelism()` (and at 1, for
 * contrast). BENCH_HASHES (default 15), BENCH_BURST (40) and BENCH_ROUNDS (3) tune the run;
 * BENCH_ONLY_DEFAULTS=1 skips the OWASP-minimum comparison.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { createPasswords } from '../lib/password/index.ts'
import type { PasswordOptions } from '../lib/public-types.ts'

const SAMPLES = Number(process.env['BENCH_HASHES'] ?? 15)
const BURST = Number(process.env['BENCH_BURST'] ?? 40)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const PASSWORD = 'correct horse battery staple'

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Current resident set size in KiB, from /proc (Linux only). */
function rssKiB (): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

/** Largest resident-set growth seen while `fn` runs, sampling every millisecond. */
async function peakRssGrowthKiB (fn: () => Promise<unknown>): Promise<number | undefined> {
  const baseline = rssKiB()
  if (baseline === undefined) return undefined
  let peak = baseline
  const timer = setInterval(() => { peak = Math.max(peak, rssKiB() ?? 0) }, 1)
  try {
    await fn()
  } finally {
    clearInterval(timer)
  }
  return peak - baseline
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

async function burstRate (options: PasswordOptions, concurrency: number): Promise<number[]> {
  const passwords = createPasswords({ ...options, maxConcurrency: concurrency, maxQueue: BURST })
  const rates: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const ms = await timed(() => Promise.all(Array.from({ length: BURST }, (_, i) => passwords.hash(`${PASSWORD} ${i}`))))
    rates.push(BURST / (ms / 1000))
  }
  return rates
}

const mib = (kib: number): string => (kib / 1024).toFixed(1)
const rate = (rates: number[]): string =>
  `${median(rates).toFixed(1)} hashes/s (median of ${rates.length} bursts of ${BURST}; range ${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)})`

async function measure (label: string, options: PasswordOptions): Promise<void> {
  const single = createPasswords({ ...options, maxConcurrency: 1 })
  const stored = await single.hash(PASSWORD)
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
  const growth = await peakRssGrowthKiB(() => single.hash(PASSWORD))

  const cores = availableParallelism()
  const full = await burstRate(options, cores)
  const serial = cores > 1 ? await burstRate(options, 1) : undefined

  const { memoryCost, timeCost, parallelism } = single.options
  console.log(`\n${label}: m=${memoryCost} KiB (${mib(memoryCost)} MiB), t=${timeCost}, p=${parallelism}`)
  console.log(`  hash, median of ${SAMPLES}:            ${median(hashMs).toFixed(1)} ms (min ${Math.min(...hashMs).toFixed(1)}, max ${Math.max(...hashMs).toFixed(1)})`)
  console.log(`  failed verify, median:          ${median(failMs).toFixed(1)} ms`)
  console.log(`  dummy verify (no user), median: ${median(dummyMs).toFixed(1)} ms`)
  console.log(`  argon2 memory per hash (m):     ${mib(memoryCost)} MiB`)
  if (growth !== undefined) console.log(`  peak RSS growth during one hash: ${mib(growth)} MiB (VmRSS sampled every 1 ms)`)
  console.log(`  maxConcurrency=${cores} (cores):       ${rate(full)}`)
  if (serial !== undefined) console.log(`  maxConcurrency=1, for contrast: ${rate(serial)}`)
}

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, availableParallelism=${availableParallelism()}, UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '4 (default)'}`)
await measure('shipped defaults', {})
if (process.env['BENCH_ONLY_DEFAULTS'] === undefined) {
  await measure('OWASP minimum, for comparison', { memoryCost: 19456, timeCost: 2, parallelism: 1 })
}
