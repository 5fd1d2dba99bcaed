/**
 * Device-bound sessions: what the bound cookie adds to a cached read, and what a refresh costs.
 *
 *   npx tsx benchmarks/dbsc-micro.ts            # prints tables; writes benchmarks/results/dbsc-micro.{md,json}
 *   npx tsx benchmarks/dbsc-micro.ts --quick
 *
 * 1. Primitives (tinybench): the bound-cookie check a cached read of a bound session pays (a
 *    memo hit: map look-up and three comparisons), the first check of a new bound cookie (one
 *    HMAC), proof decoding and ES256 / RS256 verification, a challenge issued and taken on the
 *    memory store.
 * 2. Through the plugin (`app.inject`, memory store, so that the read path is the cached one with
 *    no network): a cached GET of an unbound session against the same GET of a bound one, run
 *    interleaved in rounds; and a refresh (the 403 that hands out the challenge, then the answer
 *    with a proof signed beforehand: the server's share only), timed per request.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { Bench, type Task } from 'tinybench'
import { createFieldCodec } from '../lib/field-codec.ts'
import { BoundCookies } from '../lib/dbsc/bound-cookie.ts'
import { encodeBinding, newBinding } from '../lib/dbsc/binding.ts'
import { Challenges } from '../lib/dbsc/challenge.ts'
import { decodeProof, keyOf, publicJwk, verifyProof } from '../lib/dbsc/proof.ts'
import { DeviceBinding } from '../lib/dbsc/service.ts'
import type { Core } from '../lib/services.ts'
import { generateId, storageHash } from '../lib/crypto/ids.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import { EpochKeeper } from '../lib/epoch.ts'
import { establishNamingKey } from '../lib/keyring.ts'
import { KeyNames } from '../lib/key-names.ts'
import { Resolver } from '../lib/resolve.ts'
import { assembleCore } from '../lib/services.ts'
import { Tally } from '../lib/telemetry.ts'
import type { ClientInfo } from '../lib/state.ts'
import { createMemoryStore } from '../lib/index.ts'
import { normaliseOptions } from '../lib/config.ts'
import type { SessionRecord } from '../lib/store/contract.ts'
import { buildApp, manualClock, SECRET as APP_SECRET } from '../test/helpers/app.ts'
import { Browser } from '../test/helpers/dbsc-browser.ts'
import { deviceKey, parseChallenge, refreshProof, registrationProof, sfString } from '../test/helpers/dbsc-client.ts'

const quick = process.argv.includes('--quick')
const time = quick ? 200 : 1000
const keep = { sink: undefined as unknown }
const SECRET = 'bench-secret-0123456789-abcdefghijklmnop'

// --- 1. primitives -----------------------------------------------------------------------------
const log = { debug () {}, info () {}, warn () {}, error () {}, fatal () {}, trace () {}, child () { return log }, level: 'silent', silent () {} } as unknown as FastifyBaseLogger
const config = normaliseOptions({ secrets: [SECRET], store: createMemoryStore(), deviceBound: {} })
const store = createMemoryStore()
const guard = new Guard(1000, log, new Events(undefined, log))
const codec = createFieldCodec(undefined, () => {})
const core = { config, store, guard, codec, events: new Events(undefined, log), log, keys: { prefix: 'sess:' } } as unknown as Core
const device = new DeviceBinding(core, config.deviceBound as NonNullable<typeof config.deviceBound>)
const es = await deviceKey('ES256')
const rs = await deviceKey('RS256')
const binding = newBinding('ES256', publicJwk(es.jwk, 'ES256')!)
const hash = storageHash(generateId())
const now = Date.now()
const record: SessionRecord = {
  createdAt: now,
  absoluteExpiry: now + 3600_000,
  idleExpiry: now + 1800_000,
  ref: 'rrrrrrrrrrrr',
  epoch: '0',
  user: 'p:u',
  userKey: 'k',
  authenticatedAt: now,
  userAgent: undefined,
  ip: undefined,
  bound: codec.sealMeta('bound', encodeBinding(binding), hash),
  sealed: [],
  seal: 's',
  fields: new Map(),
}
const cookies = new BoundCookies([Buffer.from(SECRET)], 10_000)
const boundValue = cookies.issue(hash, binding, now + 600_000)
const POOL = 50_000
const distinct = Array.from({ length: POOL }, (_, i) => cookies.issue(hash, binding, now + 600_000 + i))
let cursor = 0
// A memo of one entry walked cyclically through 50 000 cookies: every check is a miss.
const missing = new BoundCookies([Buffer.from(SECRET)], 1)
device.verified(boundValue, hash, record) // memoised from here on, as on every later request
const esJwt = await registrationProof(es, 'c'.repeat(43))
const rsJwt = await registrationProof(rs, 'c'.repeat(43))
const esProof = decodeProof(esJwt, true)
const rsProof = decodeProof(rsJwt, true)
if (!esProof.ok || !rsProof.ok) throw new Error('fixture proofs do not decode')
const esKey = keyOf(esProof.proof.jwk!)!
const rsKey = keyOf(rsProof.proof.jwk!)!
const challenges = new Challenges({ store, guard, prefix: 'sess:', secrets: [Buffer.from(SECRET)], clock: Date.now, ttlMs: 120_000 })

const bench = new Bench({ time, warmupTime: time / 5 })
bench
  .add('bound check, memoised (a cached read of a bound session)', () => { keep.sink = device.verified(boundValue, hash, record) })
  .add('bound cookie, first check (HMAC, memo miss)', () => { keep.sink = missing.check(distinct[cursor++ % POOL], hash, binding, now) })
  .add('bound cookie, issue', () => { keep.sink = cookies.issue(hash, binding, now + 600_000) })
  .add('proof: decode (ES256 registration JWT)', () => { keep.sink = decodeProof(esJwt, true) })
  .add('proof: verify ES256', () => { keep.sink = verifyProof(esProof.proof, esKey) })
  .add('proof: verify RS256 (2048)', () => { keep.sink = verifyProof(rsProof.proof, rsKey) })
  .add('challenge: issue + take (memory store)', async () => {
    const c = await challenges.issue(hash, 'register')
    keep.sink = await challenges.take(c, hash, 'register')
  })
await bench.run()

// --- 2. through the plugin ---------------------------------------------------------------------
const clock = manualClock()
const appStore = createMemoryStore({ clock: clock.now })
const app = await buildApp({ store: appStore, clock: clock.now, allowShortDurations: true, deviceBound: { cookieMaxAge: 60_000 } })
const plain = await Browser.open(app)
await plain.login('plain')
plain.registration = undefined
const bound = await Browser.open(app)
await bound.login('bound')
await bound.register()
const get = async (b: Browser): Promise<number> => {
  const t = performance.now()
  const res = await app.inject({ url: '/me', headers: { cookie: b.cookie } })
  const elapsed = performance.now() - t
  if (res.statusCode !== 200 || res.json().user === null) throw new Error('not a session')
  return elapsed
}
const ROUNDS = quick ? 20 : 60
const PER = 200
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
for (let i = 0; i < 500; i++) { await get(plain); await get(bound) } // warm-up

// --- 3. the resolver alone (cookie → checked session state), as the plugin's onRequest runs it ---
// Built like plugin.ts builds it, over the app's store (its naming key, epoch and records): a
// cached read is synchronous, so tinybench sees exactly the CPU the bound check adds.
const resolverConfig = normaliseOptions({ secrets: [APP_SECRET], store: appStore, clock: clock.now, allowShortDurations: true, deviceBound: { cookieMaxAge: 60_000 } })
const naming = await establishNamingKey({ store: appStore, guard, prefix: resolverConfig.keyPrefix, secrets: resolverConfig.secrets, mayCreate: false, waitMs: 0 })
const keyNames = new KeyNames(resolverConfig.keyPrefix, naming, false)
const epochs = new EpochKeeper(appStore, keyNames, guard)
await epochs.fresh(keyNames.epoch)
const resolverCore = assembleCore({ config: resolverConfig, store: appStore, keys: keyNames, epochs, guard, events: new Events(undefined, log), log, tally: new Tally(), unreadable () {} })
const withDevice = new Resolver(resolverCore, new DeviceBinding(resolverCore, resolverConfig.deviceBound as NonNullable<typeof resolverConfig.deviceBound>))
const withoutDevice = new Resolver(resolverCore)
const client = { headers: {}, ip: '127.0.0.1' } as unknown as ClientInfo
const jarOf = (b: Browser): Record<string, string> => Object.fromEntries(b.jar)
const plainJar = jarOf(plain)
const boundJar = jarOf(bound)
const resolved = (r: Resolver, b: Browser, jar: Record<string, string>): void => {
  const state = r.begin(b.cookie, jar, client)
  if (state instanceof Promise || state.userId === undefined) throw new Error('not a cached session')
  keep.sink = state
}
resolved(withDevice, bound, boundJar)
resolved(withoutDevice, plain, plainJar)
resolved(withDevice, plain, plainJar)
const resolverBench = new Bench({ time: time * 2, warmupTime: time / 2 })
resolverBench
  .add('resolve: cached read, unbound session, deviceBound off', () => { resolved(withoutDevice, plain, plainJar) })
  .add('resolve: cached read, unbound session, deviceBound on', () => { resolved(withDevice, plain, plainJar) })
  .add('resolve: cached read, bound session (bound cookie checked)', () => { resolved(withDevice, bound, boundJar) })
  // The browser sends one more cookie: @fastify/cookie parses it on every request.
  .add('cookie header parse (@fastify/cookie): the session cookie', () => { keep.sink = app.parseCookie(plain.cookie) })
  .add('cookie header parse (@fastify/cookie): session + bound cookie', () => { keep.sink = app.parseCookie(bound.cookie) })
await resolverBench.run()
const plainRounds: number[] = []
const boundRounds: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved rounds, alternating which goes first: drift and GC land on both alike.
  const order = r % 2 === 0 ? [plain, bound] : [bound, plain]
  for (const b of order) {
    let total = 0
    for (let i = 0; i < PER; i++) total += await get(b)
    ;(b === plain ? plainRounds : boundRounds).push(total / PER * 1000)
  }
}

const asks: number[] = []
const answers: number[] = []
const signs: number[] = []
const REFRESHES = quick ? 100 : 400
for (let i = 0; i < REFRESHES; i++) {
  clock.advance(60_000)
  let t = performance.now()
  const ask = await app.inject({ method: 'POST', url: '/.well-known/device-bound-sessions/refresh', headers: { cookie: bound.cookie, 'sec-secure-session-id': sfString(bound.dbscId as string) } })
  asks.push((performance.now() - t) * 1000)
  const challenge = parseChallenge(ask.headers['secure-session-challenge'])
  if (ask.statusCode !== 403 || challenge === undefined) throw new Error(`ask: ${ask.statusCode}`)
  t = performance.now()
  const jwt = await refreshProof(bound.key, challenge.challenge)
  signs.push((performance.now() - t) * 1000)
  t = performance.now()
  const res = bound.take(await app.inject({ method: 'POST', url: '/.well-known/device-bound-sessions/refresh', headers: { cookie: bound.cookie, 'sec-secure-session-id': sfString(bound.dbscId as string), 'secure-session-response': sfString(jwt) } }))
  answers.push((performance.now() - t) * 1000)
  if (res.statusCode !== 200) throw new Error(`answer: ${res.statusCode}`)
  await get(bound) // a read between refreshes slides the session's idle deadline, as browsing does
}
await app.close()

// --- report ------------------------------------------------------------------------------------
interface Row { task: string, opsPerSec: number, meanUs: number, p99Us: number, samples: number }
function row (task: Task): Row {
  const r = task.result
  if (r.state !== 'completed') return { task: `${task.name} (${r.state})`, opsPerSec: 0, meanUs: 0, p99Us: 0, samples: 0 }
  return { task: task.name, opsPerSec: r.throughput.mean, meanUs: r.latency.mean * 1000, p99Us: r.latency.p99 * 1000, samples: r.latency.samplesCount }
}
const fmt = (n: number, d: number): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const rows = [...bench.tasks, ...resolverBench.tasks].map(row)
const plainUs = median(plainRounds)
const boundUs = median(boundRounds)
// Per operation from throughput (1 / ops per s): less disturbed by outliers than the mean latency.
const perOp = (task: Task): number => { const r = row(task); return r.opsPerSec > 0 ? 1e6 / r.opsPerSec : Number.NaN }
const [offTask, onTask, boundTask, parseOne, parseTwo] = resolverBench.tasks as [Task, Task, Task, Task, Task]
const resolver = { unboundOffUs: perOp(offTask), unboundOnUs: perOp(onTask), boundUs: perOp(boundTask), parseOneUs: perOp(parseOne), parseTwoUs: perOp(parseTwo) }
const requests = {
  cachedReadUnboundUs: plainUs,
  cachedReadBoundUs: boundUs,
  boundOverheadUs: boundUs - plainUs,
  refreshAskUs: median(asks),
  refreshAnswerUs: median(answers),
  clientSignUs: median(signs),
}
const lines = [
  '| primitive | ops/s | mean µs | p99 µs | samples |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.task} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.meanUs, r.meanUs < 10 ? 3 : 1)} | ${fmt(r.p99Us, r.p99Us < 10 ? 2 : 1)} | ${r.samples} |`),
  '',
  '| the resolver alone, per cached read (from throughput) | µs |',
  '| --- | ---: |',
  `| unbound session, deviceBound off | ${fmt(resolver.unboundOffUs, 3)} |`,
  `| unbound session, deviceBound on | ${fmt(resolver.unboundOnUs, 3)} |`,
  `| bound session (bound cookie checked) | ${fmt(resolver.boundUs, 3)} |`,
  `| added by the bound check (bound − unbound, deviceBound off) | ${fmt(resolver.boundUs - resolver.unboundOffUs, 3)} |`,
  `| added by parsing the extra cookie (@fastify/cookie, every request) | ${fmt(resolver.parseTwoUs - resolver.parseOneUs, 3)} |`,
  '',
  `| through the plugin (app.inject, memory store; medians of ${ROUNDS} interleaved rounds of ${PER} reads, ${REFRESHES} refreshes) | µs |`,
  '| --- | ---: |',
  `| cached GET, unbound session | ${fmt(requests.cachedReadUnboundUs, 1)} |`,
  `| cached GET, bound session | ${fmt(requests.cachedReadBoundUs, 1)} |`,
  `| difference (bound − unbound) | ${fmt(requests.boundOverheadUs, 2)} |`,
  `| refresh, 1st request (403 + challenge stored) | ${fmt(requests.refreshAskUs, 1)} |`,
  `| refresh, 2nd request (proof verified, challenge taken, bound cookie set) | ${fmt(requests.refreshAnswerUs, 1)} |`,
  `| (client side, not the server's: WebCrypto ES256 signature) | ${fmt(requests.clientSignUs, 1)} |`,
]
console.log(`node ${process.version}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}${quick ? ' (--quick)' : ''}\n\n` + lines.join('\n'))
const outDir = new URL('./results/', import.meta.url)
mkdirSync(outDir, { recursive: true })
const header = `<!-- generated by \`npx tsx benchmarks/dbsc-micro.ts${quick ? ' --quick' : ''}\`; do not edit by hand -->\n\n${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · ${cpus()[0]?.model.trim() ?? ''}\n\n`
writeFileSync(new URL('dbsc-micro.md', outDir), header + lines.join('\n') + '\n')
writeFileSync(new URL('dbsc-micro.json', outDir), JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, rows, resolver, requests }, null, 2) + '\n')
