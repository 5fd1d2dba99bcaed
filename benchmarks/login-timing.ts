/**
 * What a failed password login costs, by the kind of account, at the shipped password defaults:
 * an unknown account (dummy verify), a wrong password for a hash at the current cost, and a
 * wrong password for a hash made at a lower cost (an account not logged into since the costs
 * were raised), which is verified beside a dummy verify at the current cost so that it costs no
 * less than the others. Then the right password for that old hash (verify + the rehash).
 *
 *   npx tsx benchmarks/login-timing.ts
 *   BENCH_SAMPLES=31 npx tsx benchmarks/login-timing.ts
 *
 * Interleaved samples (load on the machine shifts every kind alike); prints the median and the
 * interquartile range of each, and each median's ratio to the unknown account's.
 */
import { availableParallelism, cpus } from 'node:os'
import { createPasswords } from '../lib/password/index.ts'

const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 15)
const PASSWORD = 'correct horse battery staple'
/** The costs of an account hashed before the defaults were raised: OWASP's minimum. */
const OLD = { memoryCost: 19456, timeCost: 2, parallelism: 1 }

function quantile (values: number[], q: number): number {
  const sorted = values.toSorted((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

const passwords = createPasswords() // the shipped defaults
const current = await passwords.hash(PASSWORD)
const old = await createPasswords(OLD).hash(PASSWORD)
await passwords.verify(null, PASSWORD) // makes the dummy hash

const kinds: Array<[string, () => Promise<unknown>]> = [
  ['unknown account (dummy verify)', () => passwords.verify(null, 'wrong password')],
  ['wrong password, hash at the current cost', () => passwords.verify(current, 'wrong password')],
  [`wrong password, hash at m=${OLD.memoryCost} t=${OLD.timeCost}`, () => passwords.verify(old, 'wrong password')],
  [`right password, hash at m=${OLD.memoryCost} t=${OLD.timeCost} (+ rehash)`, () => passwords.verifyAndUpgrade(old, PASSWORD)],
]
const samples = kinds.map((): number[] => [])
for (let i = 0; i < SAMPLES; i++) {
  for (const [k, [, run]] of kinds.entries()) samples[k]?.push(await timed(run))
}

const { memoryCost, timeCost, parallelism } = passwords.options
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, availableParallelism=${availableParallelism()}`)
console.log(`current cost m=${memoryCost} t=${timeCost} p=${parallelism}; ${SAMPLES} interleaved samples each\n`)
const base = quantile(samples[0] as number[], 0.5)
console.log('| kind | median ms | IQR ms | median / unknown |')
console.log('| --- | --- | --- | --- |')
for (const [k, [label]] of kinds.entries()) {
  const v = samples[k] as number[]
  const med = quantile(v, 0.5)
  console.log(`| ${label} | ${med.toFixed(1)} | ${quantile(v, 0.25).toFixed(1)}–${quantile(v, 0.75).toFixed(1)} | ${(med / base).toFixed(2)} |`)
}
