/**
 * Attacks on local-cache coherence: the BCAST echo, two instances writing one session, a Cluster,
 * against real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { type HardenedSessionOptions } from '../lib/index.ts'
import type { IndexEntry } from '../lib/store/contract.ts'
import { eventually, login, works } from './helpers/app.ts'
import { putToSleep } from './helpers/redis-server.ts'
import { record } from './helpers/store-contract.ts'
import { startCluster, type RedisCluster } from './helpers/redis-cluster.ts'
import { storageHash } from '../lib/crypto/ids.ts'
import { useRedis } from './helpers/redis-fixture.ts'
import { plainClient, trackedStore } from './helpers/tracked-store.ts'

const fx = useRedis('cohere', ['--enable-debug-command', 'yes'])

/** Two concurrent writes that fit maxSessionBytes alone but not together: exactly one is
 * accepted; returns the instance whose write was refused and the field the other one wrote. */
function acceptedWrite (a: FastifyInstance, b: FastifyInstance, statusA: number, statusB: number): { loser: FastifyInstance, field: string } {
  assert.equal([statusA, statusB].filter((s) => s === 200).length, 1, `exactly one of the two writes is accepted (A ${statusA}, B ${statusB})`)
  assert.ok([statusA, statusB].includes(500), `the refused write answers 500 FST_SESSION_TOO_LARGE (A ${statusA}, B ${statusB})`)
  return statusB === 200 ? { loser: a, field: 'fromB' } : { loser: b, field: 'fromA' }
}

describe('coherence: BCAST echo suppression', () => {
  // Fixed defect: an own write that UPDATE refuses as too large is still followed by our PEXPIRE, which hides a foreign write processed just before it in the same Redis iteration; the cached snapshot that predates the foreign write stays served indefinitely.
  test('coherence: a foreign write in the same Redis iteration as an own write refused as too large never leaves a stale snapshot cached', async (t) => {
    const own = await trackedStore(fx)
    const other = await plainClient(fx)
    let stale = 0
    const outcomes = { dropped: 0, fresh: 0 }
    await own.store.create(`${fx.freshPrefix()}warm`, record({}), 60_000) // loads the scripts (no NOSCRIPT retry below)
    await own.store.update(`${fx.freshPrefix()}warm`, { maxBytes: 200, set: new Map(), del: [] }, 60_000)
    for (let i = 0; i < 12; i++) {
      const key = `${fx.freshPrefix()}toolarge`
      await own.store.create(key, record({ x: '"0"' }), 60_000)
      assert.equal(own.store.peek(key)?.fields.get('x'), '"0"', 'the created snapshot is cached')
      const sleeping = await putToSleep(fx.redis.port, 0.4)
      const foreign = other.hSet(key, 'd:y', '"foreign"')
      await new Promise((resolve) => setTimeout(resolve, 20)) // the foreign command reaches Redis first
      const mine = own.store.update(key, { maxBytes: 200, set: new Map([['big', '"' + 'z'.repeat(500) + '"']]), del: [] }, 60_000).catch((err: Error & { code?: string }) => err.code)
      const [, result] = await Promise.all([foreign, mine])
      assert.equal(result, 'FST_SESSION_TOO_LARGE')
      await sleeping.awake
      await own.client.ping() // any invalidation pushed for those writes arrived before this reply
      const cached = own.store.peek(key)
      if (cached === undefined) outcomes.dropped++
      else if (cached?.fields.get('y') === '"foreign"') outcomes.fresh++
      else stale++
    }
    t.diagnostic(`dropped ${outcomes.dropped}, fresh ${outcomes.fresh}, stale ${stale}`)
    assert.equal(stale, 0, `a snapshot without the foreign write stayed cached in ${stale} of 12 tries`)
  })

  test('coherence: a miss reads the index entry with the record in one script and caches it; an index write landing right after that script, in the same Redis iteration, never leaves the entry cached', async () => {
    const own = await trackedStore(fx)
    const other = await plainClient(fx)
    const prefix = fx.freshPrefix()
    const indexPrefix = `${prefix}u:`
    const indexKey = `${indexPrefix}user-key`
    const epochKey = `${prefix}epoch`
    const E0 = '1.' + 'a'.repeat(22) + '.' + 'b'.repeat(22)
    const live = (i: number): string => `${i}hash ${Date.now() + 60_000} ${Date.now()}`
    await other.set(epochKey, E0) // READ finds the epoch as known: it writes nothing (no echo of its own)
    const outcomes = { cached: 0, dropped: 0 }
    for (let i = 0; i < 10; i++) {
      const key = `${prefix}s${i}`
      const ref = `ref${String(i).padStart(9, '0')}`
      await other.hSet(indexKey, ref, live(i))
      await own.store.create(key, { ...record({}), ref, userKey: 'user-key', user: 'u' }, 60_000)
      // The store drops its own snapshot of the record on purpose: the next read is a miss.
      await other.hSet(key, 'd:x', '"1"')
      await own.client.ping() // its invalidation arrived before this reply
      assert.equal(own.store.peek(key), undefined, 'the foreign write dropped the cached record')
      if (i % 2 === 0) {
        // Quiet: nothing else happens, the entry read with the record is returned and cached.
        const read = await own.store.getWithEpoch(key, epochKey, E0, indexPrefix)
        assert.equal(read.member?.hash, `${i}hash`)
        if (own.store.peekMember(indexKey, ref)?.hash === `${i}hash`) outcomes.cached++
        continue
      }
      // The index entry is removed right after the READ script, in the same Redis iteration.
      const sleeping = await putToSleep(fx.redis.port, 0.3)
      const read = own.store.getWithEpoch(key, epochKey, E0, indexPrefix)
      await new Promise((resolve) => setTimeout(resolve, 20)) // the READ reaches Redis first
      const foreign = other.hDel(indexKey, ref)
      const [result] = await Promise.all([read, foreign])
      await sleeping.awake
      assert.equal(result.member?.hash, `${i}hash`, 'the READ ran before the removal')
      await own.client.ping() // any invalidation pushed for the removal arrived before this reply
      assert.equal(own.store.peekMember(indexKey, ref), undefined, 'the removed entry is not held locally')
      outcomes.dropped++
    }
    assert.deepEqual(outcomes, { cached: 5, dropped: 5 })
  })

  test('coherence: a login caches the index entry it admitted and nothing else of that index, so another client\'s removal of an entry in the same Redis iteration, just before the login\'s script, is never hidden', async () => {
    const own = await trackedStore(fx)
    const other = await plainClient(fx)
    const indexKey = `${fx.freshPrefix()}u:index`
    const options = { expect: undefined, max: 1000, ttlMs: 60_000 }
    const entryOf = (ref: string): IndexEntry => ({ ref, hash: `${ref}-hash`, expiresAt: Date.now() + 60_000, loginAt: Date.now() })
    for (let i = 0; i < 10; i++) {
      const first = entryOf(`first${String(i).padStart(7, '0')}`)
      await own.store.admit(indexKey, first, { ...options, now: Date.now() })
      assert.equal(own.store.peekMember(indexKey, first.ref)?.hash, first.hash, 'the admitted entry is held: the first read after a login needs no command')
      const sleeping = await putToSleep(fx.redis.port, 0.3)
      const foreign = other.hDel(indexKey, first.ref) // a revocation of the first device, elsewhere
      await new Promise((resolve) => setTimeout(resolve, 20)) // it reaches Redis first
      const second = entryOf(`second${String(i).padStart(6, '0')}`)
      const mine = own.store.admit(indexKey, second, { ...options, now: Date.now() })
      await Promise.all([foreign, mine])
      await sleeping.awake
      await own.client.ping() // any invalidation pushed for those writes arrived before this reply
      assert.equal(own.store.peekMember(indexKey, first.ref), undefined, `try ${i}: the removed entry is not held`)
      // Held unless the removal was processed after the login's script (then its invalidation dropped the index).
      const held = own.store.peekMember(indexKey, second.ref)
      assert.ok(held === undefined || held?.hash === second.hash, `try ${i}: only what the login admitted is held`)
    }
  })
})

describe('coherence: two instances', () => {
  // Fixed defect: two concurrent writes of one session, each within maxSessionBytes but over it together: the instance whose UPDATE is refused keeps serving its cached snapshot without the other instance's accepted write for good (its PEXPIRE hid the invalidation).
  test('coherence: a value written on one instance is read on the other within 100 ms even when the other\'s concurrent write of the same session is refused as too large', async (t) => {
    const keyPrefix = fx.freshPrefix()
    const options = { keyPrefix, maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>
    const a = await fx.app(options)
    const b = await fx.app(options)
    // Scripts loaded, so that no NOSCRIPT retry changes the order below.
    const warm = await login(a, fx.user())
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { w: 1 } })
    let stale = 0
    for (let i = 0; i < 10; i++) {
      const cookie = await login(a, fx.user())
      assert.equal(await works(a, cookie), true) // cached on A
      assert.equal(await works(b, cookie), true) // and on B, so that B's write is sent at once
      const sleeping = await putToSleep(fx.redis.port, 0.45)
      // Both writes wait for the sleeping Redis and run in one of its iterations. Which one lands
      // first is up to scheduling (B is sent 20 ms earlier, usually first), so the test follows the
      // accepted write: the instance whose write was refused must read the other's.
      const onB = b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromB: 'b'.repeat(450) } })
      await new Promise((resolve) => setTimeout(resolve, 20))
      const onA = a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromA: 'a'.repeat(450) } })
      const [resB, resA] = await Promise.all([onB, onA])
      await sleeping.awake
      t.diagnostic(`B ${resB.statusCode} ${resB.body} A ${resA.statusCode} ${resA.body}`)
      const { loser, field } = acceptedWrite(a, b, resA.statusCode, resB.statusCode)
      try {
        await eventually(async () => (await loser.inject({ url: `/get/${field}`, headers: { cookie } })).json().value !== null, 100, 'the accepted write on the other instance')
      } catch {
        stale++
      }
    }
    assert.equal(stale, 0, `an instance served the session without the other's accepted write beyond 100 ms in ${stale} of 10 tries`)
  })
})

describe('coherence on a cluster', () => {
  let cluster: RedisCluster
  before(async () => { cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no', '--enable-debug-command', 'yes'] }) })
  after(async () => { await cluster?.stop() })

  // Fixed defect: (cluster) the same hidden invalidation: after A's write of a session is refused as too large in the Redis iteration that also ran B's accepted write, A serves the session without B's write for good.
  test('cluster coherence: a value written on one instance is read on the other within 100 ms even when the other\'s concurrent write is refused as too large', async () => {
    const keyPrefix = fx.freshPrefix()
    const options = { redis: { cluster: { rootNodes: cluster.rootNodes } }, keyPrefix, maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>
    const a = await fx.app(options)
    const b = await fx.app(options)
    const warm = await login(a, fx.user())
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { w: 1 } })
    let stale = 0
    for (let i = 0; i < 6; i++) {
      const cookie = await login(a, fx.user())
      await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { w: 1 } }) // the scripts are loaded on this shard
      assert.equal(await works(a, cookie), true)
      assert.equal(await works(b, cookie), true)
      const master = await cluster.masterForKey(keyPrefix + storageHash(cookie.split('=')[1]?.split('.')[0] as string))
      const sleeping = (await putToSleep(master.port, 0.45)).awake
      const onB = b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromB: 'b'.repeat(450) } })
      await new Promise((resolve) => setTimeout(resolve, 20))
      const onA = a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromA: 'a'.repeat(450) } })
      const [resB, resA] = await Promise.all([onB, onA])
      await sleeping
      const { loser, field } = acceptedWrite(a, b, resA.statusCode, resB.statusCode)
      try {
        await eventually(async () => (await loser.inject({ url: `/get/${field}`, headers: { cookie } })).json().value !== null, 100, 'the accepted write on the other instance')
      } catch {
        stale++
      }
    }
    assert.equal(stale, 0, `an instance served the session without the other's accepted write beyond 100 ms in ${stale} of 6 tries`)
  })
})
