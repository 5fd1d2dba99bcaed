/**
 * Figures for docs/scaling.md, measured on a throw-away redis-server:
 *
 *   node --expose-gc --import tsx benchmarks/scaling.ts [--sessions N]   # writes benchmarks/results/scaling.{md,json}
 *
 *   1. Redis memory per session (record + its user's index entry), and what per-key tracking
 *      adds per reader compared with broadcast tracking (which the plugin uses);
 *   2. heap per entry of the store's local cache;
 *   3. hit ratio of session look-ups against `cacheSize`, uniform and Zipf access (the store's
 *      own BoundedCache, two entries per session: record and user index);
 *   4. what broadcast tracking costs: application CPU per invalidation received for a key it
 *      does not hold, and Redis CPU per write with 0, 1 and 8 subscribed instances.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createClient } from 'redis'
import { BoundedCache } from '../lib/lru.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import { buildApp } from '../test/helpers/app.ts'
import { startRedis, type RedisServer } from '../test/helpers/redis-server.ts'
import { cumulative, pick } from './harness/load/pool.ts'

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}
const SESSIONS = Number(arg('sessions') ?? 20_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc --import tsx benchmarks/scaling.ts')

function info (text: string, field: string): number {
  return Number(new RegExp(`^${field}:([\\d.]+)\r?$`, 'm').exec(text)?.[1])
}

async function usedMemory (redis: RedisServer): Promise<number> {
  return info(await redis.command('INFO', 'memory'), 'used_memory')
}

async function redisCpuS (redis: RedisServer): Promise<number> {
  const text = await redis.command('INFO', 'cpu')
  return info(text, 'used_cpu_user') + info(text, 'used_cpu_sys')
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

function heap (): number {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

const out: string[] = []
const data: Record<string, unknown> = {}
const say = (line = ''): void => { out.push(line); console.log(line) }

// -------------------------------------------------------------------------------------------
// 1. Redis memory per session, per-key tracking versus broadcast

const redis = await startRedis()
const app = await buildApp({ redis: { url: redis.url }, keyPrefix: 'm:' })
const before = await usedMemory(redis)
const cookies: string[] = []
for (let i = 0; i < SESSIONS; i += 200) {
  const batch = await Promise.all(Array.from({ length: Math.min(200, SESSIONS - i) }, (_, j) =>
    app.inject({ method: 'POST', url: '/login', payload: { user: `user-${i + j}@example.com`, data: { theme: 'dark', cart: ['sku-1', 'sku-2'] } } })))
  for (const res of batch) cookies.push(String(res.headers['set-cookie']).split(';')[0] as string)
}
const perSession = (await usedMemory(redis) - before) / SESSIONS
const keys = (await redis.command('KEYS', 'm:*')).split('\r\n').filter((l) => l.startsWith('m:'))

async function tracked (): Promise<number> {
  return info(await redis.command('INFO', 'stats'), 'tracking_total_keys')
}

/** A new connection with `tracking` reads every key once: Redis memory it adds per session, keys it adds to the tracking table. */
async function readAll (tracking: string[]): Promise<{ perSession: number, trackedKeys: number }> {
  const client = createClient({ url: redis.url, RESP: 3 })
  await client.connect()
  await client.sendCommand(tracking)
  const m0 = await usedMemory(redis)
  const t0 = await tracked()
  for (let i = 0; i < keys.length; i += 500) {
    await Promise.all(keys.slice(i, i + 500).map((k) => client.sendCommand(k.startsWith('m:u:') ? ['HLEN', k] : ['HGETALL', k])))
  }
  const m1 = await usedMemory(redis)
  const result = { perSession: (m1 - m0) / SESSIONS, trackedKeys: await tracked() - t0 }
  await client.close()
  return result
}

// Broadcast first: later, the per-key readers' table entries stay after they disconnect.
const bcast = await readAll(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'm:', 'NOLOOP'])
const perKey1 = await readAll(['CLIENT', 'TRACKING', 'ON'])
const perKey2 = await readAll(['CLIENT', 'TRACKING', 'ON'])
const leftover = await tracked()
await app.close()
data['redisMemory'] = { sessions: SESSIONS, bytesPerSession: perSession, perKeyTrackingFirstReader: perKey1.perSession, perKeyTrackingSecondReader: perKey2.perSession, broadcast: bcast.perSession, trackedKeysPerKey: perKey1.trackedKeys, trackedKeysBroadcast: bcast.trackedKeys, trackedKeysAfterDisconnect: leftover }

say(`## Redis memory (${SESSIONS.toLocaleString('en-US')} sessions, one user each, \`{ theme, cart }\` data)`)
say()
say('| what | bytes per session |')
say('| --- | ---: |')
say(`| the session record and its user's index (\`used_memory\`) | ${perSession.toFixed(0)} |`)
say(`| + per-key tracking, first instance that read them (\`CLIENT TRACKING ON\`) | +${perKey1.perSession.toFixed(0)} |`)
say(`| + per-key tracking, each further instance | +${perKey2.perSession.toFixed(0)} |`)
say(`| + broadcast tracking (\`BCAST PREFIX\`, the plugin's), any number of instances | +${bcast.perSession.toFixed(0)} |`)
say()
say(`Keys added to Redis's tracking table by one reader: per-key ${perKey1.trackedKeys.toLocaleString('en-US')} (two per session), broadcast ${bcast.trackedKeys}. ` +
  `After both per-key readers disconnected the table still held ${leftover.toLocaleString('en-US')} keys: an entry goes only when its key changes or the table overflows.`)
say()

// -------------------------------------------------------------------------------------------
// 2. Heap per entry of the local cache

{
  const client = createClient({ url: redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('m:') })
  await client.connect()
  const store = new RedisStore(client as never, { cacheSize: SESSIONS * 4, cacheBytes: 1 << 30, storeTimeout: 5000, probeInterval: 5000 })
  const records = keys.filter((k) => !k.startsWith('m:u:'))
  for (let i = 0; i < records.length; i += 500) await Promise.all(records.slice(i, i + 500).map((k) => store.getWithEpoch(k, 'm:epoch', '1.' + 'a'.repeat(22))))
  const held = records.filter((k) => store.peek(k) !== undefined).length
  const h1 = heap()
  await store.close() // drops every entry
  const h0 = heap()
  await client.close()
  data['heap'] = { entries: held, bytesPerRecord: (h1 - h0) / held }
  say('## Heap of the local cache')
  say()
  say(`${held.toLocaleString('en-US')} decoded session records held: ${((h1 - h0) / held).toFixed(0)} bytes of heap each ` +
    '(the record, its data map, the cache slot and flight bookkeeping; the estimate `cacheBytes` counts is ' +
    'computed per record from its string lengths).')
  say()
}

// -------------------------------------------------------------------------------------------
// 3. Hit ratio against cacheSize (simulation on the store's own BoundedCache)

{
  const POPULATION = 100_000
  const ACCESSES = 2_000_000
  const sizes = [5_000, 10_000, 25_000, 50_000, 100_000, 200_000]
  const shapes: Array<[string, number]> = [['uniform', 0], ['Zipf s = 0.8', 0.8], ['Zipf s = 1', 1]]
  let seed = 42 // mulberry32: reproducible, and uniform enough for this
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const rows: Record<string, Record<number, number>> = {}
  for (const [name, s] of shapes) {
    const cum = cumulative(POPULATION, s)
    rows[name] = {}
    for (const size of sizes) {
      const cache = new BoundedCache<number, true>(size)
      let hits = 0
      for (let i = 0; i < ACCESSES; i++) {
        const session = pick(cum, random())
        // Each look-up reads the record, then its user's index entry (one user per session).
        const hit = cache.get(session) === true
        if (!hit) cache.set(session, true)
        if (cache.get(-1 - session) === undefined) cache.set(-1 - session, true)
        if (i >= ACCESSES / 2 && hit) hits++ // second half: warm
      }
      (rows[name] as Record<number, number>)[size] = hits / (ACCESSES / 2)
    }
  }
  data['hitRatio'] = { population: POPULATION, rows }
  say(`## Hit ratio of session look-ups against \`cacheSize\` (${POPULATION.toLocaleString('en-US')} active sessions, one user each)`)
  say()
  say(`| access | ${sizes.map((s) => `cacheSize ${s.toLocaleString('en-US')}`).join(' | ')} |`)
  say(`| --- | ${sizes.map(() => '---:').join(' | ')} |`)
  for (const [name] of shapes) say(`| ${name} | ${sizes.map((s) => `${((rows[name]?.[s] ?? 0) * 100).toFixed(1)} %`).join(' | ')} |`)
  say()
}

// -------------------------------------------------------------------------------------------
// 4. Broadcast: application CPU per invalidation received, Redis CPU per write

async function hsets (n: number): Promise<void> {
  const r = spawnSync('redis-benchmark', ['-p', String(redis.port), '-n', String(n), '-r', '1000000', '-c', '20', '-P', '16', '-q',
    'HSET', 'b:__rand_int__', 'd:x', '1'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}`)
}

{
  const WRITES = 200_000
  const subscribers: Array<{ client: { ping (): Promise<unknown>, close (): Promise<unknown>, sendCommand (args: string[]): Promise<unknown> }, received: () => number }> = []
  const subscribe = async (): Promise<void> => {
    const cache = new TrackingOnlyCache('b:')
    let received = 0
    cache.on('invalidate', () => { received++ })
    const client = createClient({ url: redis.url, RESP: 3, clientSideCache: cache })
    await client.connect()
    subscribers.push({ client, received: () => received })
  }
  for (let i = 0; i < 8; i++) await subscribe()
  const tracking = subscribers.map(() => true) // the handshake turned it on
  const samples: Record<number, number[]> = { 0: [], 1: [], 8: [] }
  const appSamples: number[] = []
  // Interleaved rounds, medians: the machine's noise moves single runs by tens of %.
  for (let round = 0; round < 3; round++) {
    for (const count of [0, 1, 8]) {
      const active = subscribers.slice(0, count)
      for (const [i, s] of subscribers.entries()) {
        if (i >= count && tracking[i] === true) await s.client.sendCommand(['CLIENT', 'TRACKING', 'OFF'])
        if (i < count && tracking[i] !== true) await s.client.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'b:', 'NOLOOP'])
        tracking[i] = i < count
      }
      const r0 = await redisCpuS(redis)
      const a0 = process.cpuUsage()
      const got0 = active.reduce((n, s) => n + s.received(), 0)
      await hsets(WRITES)
      await Promise.all(subscribers.map((s) => s.client.ping()))
      const a1 = process.cpuUsage(a0)
      const got = active.reduce((n, s) => n + s.received(), 0) - got0
      samples[count]?.push((await redisCpuS(redis) - r0) * 1e6 / WRITES)
      if (count === 1) appSamples.push((a1.user + a1.system) / got)
    }
  }
  const redisPerWrite: Record<number, number> = {}
  for (const count of [0, 1, 8]) redisPerWrite[count] = median(samples[count] ?? [])
  const appPerPush = median(appSamples)
  for (const s of subscribers) await s.client.close()
  data['broadcast'] = { writes: WRITES, redisCpuUsPerWrite: redisPerWrite, appCpuUsPerInvalidation: appPerPush }
  say('## Broadcast tracking: what every write under the prefix costs')
  say()
  say(`${WRITES.toLocaleString('en-US')} single-field HSETs to random keys under the prefix (redis-benchmark, 16-deep pipelines; medians of 3 interleaved rounds):`)
  say()
  say('| subscribed instances | Redis CPU µs per write |')
  say('| ---: | ---: |')
  for (const count of [0, 1, 8]) say(`| ${count} | ${(redisPerWrite[count] ?? 0).toFixed(2)} |`)
  say()
  say(`An instance spends ${appPerPush.toFixed(2)} µs of CPU per invalidation it receives for a key it does not hold ` +
    '(node-redis parsing the push, the store dropping nothing).')
  say()
}

await redis.stop()
const meta = `${new Date().toISOString().slice(0, 10)} · node ${process.version} · ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} CPUs) · \`node --expose-gc --import tsx benchmarks/scaling.ts --sessions ${SESSIONS}\``
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/scaling.md', import.meta.url), `<!-- generated by benchmarks/scaling.ts -->\n\n${meta}\n\n${out.join('\n')}\n`)
writeFileSync(new URL('./results/scaling.json', import.meta.url), JSON.stringify({ meta, ...data }, null, 2) + '\n')
