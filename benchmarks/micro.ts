/**
 * Micro-benchmarks of the primitives on the request path (tinybench):
 *
 *   npx tsx benchmarks/micro.ts            # prints a table; writes benchmarks/results/micro.{md,json}
 *   npx tsx benchmarks/micro.ts --quick    # shorter time per task
 *
 * Cookie verification is measured three ways: distinct valid cookies (every one a memo miss:
 * HMAC + constant-time compare + SHA-256 storage hash + memo insert, what a session's first
 * request pays), the same cookie again (the memo hit every later request of that session pays),
 * and a forged cookie (never memoised: what an attacker's request costs).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { Bench, type Task } from 'tinybench'
import { generateId, storageHash } from '../lib/crypto/ids.ts'
import { createFieldCipher, generateEncryptionKey } from '../lib/crypto/field-cipher.ts'
import { Signer } from '../lib/crypto/signer.ts'
import { hashPassword, verifyPassword, DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST } from '../lib/password/index.ts'
import { decodeRecord, encodeRecord } from '../lib/store/record-encoding.ts'
import type { SessionRecord } from '../lib/store/contract.ts'

const quick = process.argv.includes('--quick')
const time = quick ? 200 : 1000

// Fixtures, built once.
const signer = new Signer(['s'.repeat(32)], 10_000)
const POOL = 50_000 // several times the verify memo (10 000): a cyclic walk never hits it
const distinct = Array.from({ length: POOL }, () => signer.sign(generateId()))
const same = signer.sign(generateId())
signer.verify(same)
const forged = same.slice(0, -2) + (same.endsWith('AA') ? 'BB' : 'AA')
let cursor = 0

const cipher = createFieldCipher({ keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: '*' })
const binding = storageHash(generateId())
const small = JSON.stringify('dark')
const large = JSON.stringify({ cart: Array.from({ length: 20 }, (_, i) => ({ sku: `SKU-${i}`, qty: i % 3 + 1, price: 19.99 })) })
const smallSealed = cipher.encrypt(small, binding, 'theme')
const largeSealed = cipher.encrypt(large, binding, 'cart')

const now = Date.now()
const record: SessionRecord = {
  createdAt: now,
  absoluteExpiry: now + 12 * 3600_000,
  idleExpiry: now + 1800_000,
  ref: 'rrrrrrrrrrrr',
  epoch: '0',
  user: 'p:user-1',
  userKey: 'k'.repeat(43),
  authenticatedAt: now,
  userAgent: undefined,
  ip: undefined,
  sealed: [],
  seal: 's'.repeat(43),
  fields: new Map([['theme', small], ['locale', '"en-GB"'], ['cart', large]]),
}
const flat = encodeRecord(record)
const hash: Record<string, string> = {}
for (let i = 0; i < flat.length; i += 2) hash[flat[i] as string] = flat[i + 1] as string

/** Results are stored here so the optimiser cannot drop the measured work. */
const keep: { sink: unknown } = { sink: undefined }
const bench = new Bench({ time, warmupTime: time / 5 })
bench
  .add('id: generateId (32 random bytes, base64url)', () => { keep.sink = generateId() })
  .add('id: storageHash (SHA-256 of the id)', () => { keep.sink = storageHash(same) })
  .add('cookie: sign', () => { keep.sink = signer.sign(same.slice(0, 43)) })
  .add('cookie: verify, distinct cookies (memo miss)', () => { keep.sink = signer.verify(distinct[cursor++ % POOL] as string) })
  .add('cookie: verify, same cookie (memoised)', () => { keep.sink = signer.verify(same) })
  .add('cookie: verify, forged signature (rejected)', () => { keep.sink = signer.verify(forged) })
  .add('field: encrypt small ("dark")', () => { keep.sink = cipher.encrypt(small, binding, 'theme') })
  .add('field: decrypt small', () => { keep.sink = cipher.decrypt(smallSealed, binding, 'theme') })
  .add(`field: encrypt ${large.length} B JSON`, () => { keep.sink = cipher.encrypt(large, binding, 'cart') })
  .add(`field: decrypt ${large.length} B JSON`, () => { keep.sink = cipher.decrypt(largeSealed, binding, 'cart') })
  .add('record: encode (3 fields)', () => { keep.sink = encodeRecord(record) })
  .add('record: decode (3 fields)', () => { keep.sink = decodeRecord(hash) })

// argon2id at the shipped defaults: a few iterations are plenty at tens of ms each.
const argon = new Bench({ time: 0, iterations: quick ? 3 : 8, warmupIterations: 1 })
const stored = await hashPassword('correct horse battery staple')
argon
  .add(`password: hashPassword (argon2id m=${DEFAULT_MEMORY_COST} KiB, t=${DEFAULT_TIME_COST}, p=${DEFAULT_PARALLELISM})`, async () => { keep.sink = await hashPassword('correct horse battery staple') })
  .add('password: verifyPassword (same parameters)', async () => { keep.sink = await verifyPassword(stored, 'correct horse battery staple') })

console.log(`node ${process.version}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}${quick ? ' (--quick)' : ''}`)
await bench.run()
await argon.run()

interface Row { task: string, opsPerSec: number, meanUs: number, p99Us: number, samples: number }

function row (task: Task): Row | undefined {
  const r = task.result
  if (r.state !== 'completed') return undefined
  return { task: task.name, opsPerSec: r.throughput.mean, meanUs: r.latency.mean * 1000, p99Us: r.latency.p99 * 1000, samples: r.latency.samplesCount }
}

const rows = [...bench.tasks, ...argon.tasks].map((t) => row(t) ?? { task: `${t.name} (${t.result.state})`, opsPerSec: 0, meanUs: 0, p99Us: 0, samples: 0 })
const fmt = (n: number, d: number): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const lines = [
  '| primitive | ops/s | mean µs | p99 µs | samples |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.task} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.meanUs, r.meanUs < 10 ? 2 : 1)} | ${fmt(r.p99Us, r.p99Us < 10 ? 2 : 1)} | ${r.samples} |`),
]
console.log('\n' + lines.join('\n'))

const outDir = new URL('./results/', import.meta.url)
mkdirSync(outDir, { recursive: true })
const header = `<!-- generated by \`npx tsx benchmarks/micro.ts${quick ? ' --quick' : ''}\`; do not edit by hand -->\n\n${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · ${cpus()[0]?.model.trim() ?? ''}\n\n`
writeFileSync(new URL('micro.md', outDir), header + lines.join('\n') + '\n')
writeFileSync(new URL('micro.json', outDir), JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, rows }, null, 2) + '\n')
