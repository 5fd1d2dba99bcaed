/**
 * Growth of user indexes: a login scans its user's index only when the index doubled since the
 * last scan (amortised O(1) per login, not O(index)), and entries of sessions that idled out
 * are pruned at later logins, after a grace that protects sessions being created; live
 * sessions are never pruned. Real redis-server, started here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { storageHash } from '../lib/crypto/ids.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import { KeyNames } from '../lib/key-names.ts'
import { IndexPruner } from '../lib/prune.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import type { IndexEntry } from '../lib/store/contract.ts'
import { buildApp, eventually, login, sessionCookie } from './helpers/app.ts'
import { record } from './helpers/store-contract.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('idx')
const closers = fx.closers

async function store (): Promise<RedisStore> {
  const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
  await client.connect()
  const s = new RedisStore(client as never, { cacheSize: 100, cacheBytes: 1 << 20, storeTimeout: 1000, probeInterval: 1000 })
  closers.push(async () => { await s.close(); await client.close() })
  return s
}

async function calls (name: string): Promise<number> {
  return (await fx.redis.commandStats()).get(name) ?? 0
}

async function hlen (key: string): Promise<number> {
  return Number((await fx.redis.command('HLEN', key)).slice(1))
}

const entry = (i: number, now: number): IndexEntry => ({ ref: `ref-${String(i).padStart(8, '0')}`, hash: `hash-${i}`, expiresAt: now + 60_000, loginAt: now + i })
const ADMIT = { expect: undefined, max: Number.MAX_SAFE_INTEGER, ttlMs: 60_000 }

test('index: 300 logins into one index scan it 5 times (each time it doubled), not 300; about one login in four into a large index returns a sample of 8 other entries', async () => {
  const s = await store()
  const now = Date.now()
  const scansBefore = await calls('hgetall')
  const samples: number[] = []
  for (let i = 0; i < 300; i++) {
    const result = await s.admit('scan:idx', entry(i, now), { ...ADMIT, now })
    assert.equal(result.admitted, true)
    samples.push(result.sample?.length ?? 0)
    if (i > 16) assert.ok(!(result.sample ?? []).some((e) => e.ref === entry(i, now).ref), 'never the entry just admitted')
  }
  const scans = await calls('hgetall') - scansBefore
  assert.equal(scans, 5, 'scans at 17, 35, 71, 143 and 287 entries')
  assert.deepEqual(samples.slice(0, 16), Array(16).fill(0), 'no sample below 17 entries')
  // Each login asks for a sample with probability 1/4: 283 logins above the floor, about 71
  // samples (standard deviation 7.3); the bounds are 5 deviations out.
  const sampled = samples.slice(17)
  assert.deepEqual(new Set(sampled), new Set([0, 8]), 'a sample is 8 entries or none')
  const taken = sampled.filter((n) => n === 8).length
  assert.ok(taken >= 35 && taken <= 107, `${taken} of ${sampled.length} logins got a sample`)
  assert.equal((await s.members('scan:idx')).length, 300)
})

test('index: the cap still holds exactly when the index is not due for a scan', async () => {
  const s = await store()
  const now = Date.now()
  for (let i = 0; i < 3; i++) await s.admit('cap:idx', entry(i, now), { ...ADMIT, now })
  const result = await s.admit('cap:idx', entry(3, now), { ...ADMIT, now, max: 2 })
  assert.deepEqual(result.evicted.map((e) => e.ref), [entry(0, now).ref, entry(1, now).ref])
  assert.deepEqual((await s.members('cap:idx')).map((e) => e.ref).sort(), [entry(2, now).ref, entry(3, now).ref])
})

test('index pruner: an entry whose record is missing at both looks, grace apart, is dismissed; one whose record appears meanwhile is kept', async () => {
  const s = await store()
  const keys = new KeyNames('prune:', Buffer.alloc(32, 1))
  const log = { error () {}, warn () {}, info () {}, debug () {} } as unknown as FastifyBaseLogger
  const pruner = new IndexPruner(s, keys, new Guard(1000, log, new Events(undefined, log)), 200)
  closers.push(async () => { pruner.close() })
  const now = Date.now()
  const [gone, late, live] = [entry(1, now), entry(2, now), entry(3, now)]
  for (const e of [gone, late, live]) await s.admit('prune:idx', e, { ...ADMIT, now })
  await s.create(keys.session(live.hash), record({}), 60_000)
  await pruner.prune('prune:idx', [gone, late, live])
  // The late session's record is written within the grace (as a login's CREATE follows its ADMIT).
  await s.create(keys.session(late.hash), record({}), 60_000)
  await eventually(async () => (await s.members('prune:idx')).length === 2, 2000, 'the entry without a record is dismissed')
  assert.deepEqual((await s.members('prune:idx')).map((e) => e.ref).sort(), [late.ref, live.ref])
})

test('index: logins of a user whose 195 older sessions idled out shrink the index back, and never drop a live session', async () => {
  // storeTimeout 300 ms: the pruner's second look comes 3 s after the first.
  const app: FastifyInstance = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: 'grow:', storeTimeout: 300 })
  closers.push(() => app.close())
  const cookies: string[] = []
  for (let i = 0; i < 200; i++) cookies.push(await login(app, 'u-grow'))
  const key = (cookie: string): string => 'grow:' + storageHash(cookie.slice(cookie.indexOf('=') + 1, cookie.indexOf('.')))
  const indexKey = 'grow:u:' + (await fx.redis.command('HGET', key(cookies[0] as string), 'm:k')).split('\r\n')[1]
  assert.equal(await hlen(indexKey), 201, '200 entries and the scan mark')
  // Redis removes records when their idle deadline passes; the index keeps their entries.
  const live = cookies.slice(195)
  for (const cookie of cookies.slice(0, 195)) await fx.redis.command('DEL', key(cookie))

  // One device logs in again and again (a re-login keeps its lineage: the index does not grow).
  let current = live[0] as string
  const ms = await eventually(async () => {
    const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'u-grow' }, headers: { cookie: current } })
    current = sessionCookie(res) ?? assert.fail('re-login failed')
    return await hlen(indexKey) <= 6 + 1
  }, 15_000, 'the index is back to the 5 live sessions (and the mark)')
  const listed = await app.session.listUserSessions('u-grow')
  assert.equal(listed.length, 5)
  for (const cookie of [current, ...live.slice(1)]) assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  assert.ok(ms < 15_000)
})
