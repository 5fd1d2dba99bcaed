/**
 * RedisStore's local cache against a real Redis, with replies held back to force the orderings
 * that promise chains of different depth can produce under load: a late read reply must never
 * overwrite a newer snapshot, nor resurrect a key invalidated while the read was in flight.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from 'redis'
import { RedisStore } from '../lib/store/redis.ts'
import { READ } from '../lib/store/scripts.ts'
import type { SessionRecord } from '../lib/store/contract.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import { eventually } from './helpers/app.ts'
import { putToSleep, startRedis, type RedisServer } from './helpers/redis-server.ts'
import { record, storeContract } from './helpers/store-contract.ts'

let redis: RedisServer
const clients: Array<{ close (): Promise<void> }> = []
before(async () => { redis = await startRedis(['--enable-debug-command', 'yes']) })
after(async () => {
  await Promise.all(clients.map((c) => c.close()))
  await redis.stop()
})

const OPTIONS = { cacheSize: 100, cacheBytes: 1 << 20, storeTimeout: 1000, probeInterval: 1000 }

storeContract('redis store', async () => {
  const client = createClient({ url: redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
  await client.connect()
  clients.push(client)
  return new RedisStore(client as never, OPTIONS)
})

/** A real client whose session reads (the READ script of a cache miss) are delivered only when the test releases them. */
async function heldClient () {
  const client = createClient({ url: redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
  await client.connect()
  const held: Array<() => void> = []
  let holding = false
  const conn = new Proxy(client, {
    get (target, prop, receiver) {
      if (prop === 'sendCommand') {
        return async (args: string[]) => {
          const reply = await target.sendCommand(args)
          if (holding && (args[1] === READ.sha || args[1] === READ.source)) await new Promise<void>((resolve) => held.push(resolve))
          return reply
        }
      }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    client,
    store: new RedisStore(conn as never, OPTIONS),
    hold: () => { holding = true },
    release: () => { holding = false; for (const r of held.splice(0)) r() },
    waiting: () => held.length,
  }
}

const E0 = '1.' + 'a'.repeat(22) + '.' + 'm'.repeat(22)
/** A cache-miss read as the plugin makes it (record and its epoch copy), returning the record. */
function getRecord (store: RedisStore, key: string): Promise<SessionRecord | undefined> {
  return store.getWithEpoch(key, key + ':epoch', E0).then((r) => r.record)
}

test('redis store: a read reply that arrives after a newer write snapshot is not cached', async () => {
  const h = await heldClient()
  try {
    await h.store.create('order:a', record({ x: '"old"' }), 60_000)
    h.hold()
    const late = getRecord(h.store, 'order:a') // HGETALL runs now (sees "old"), its reply is held
    await eventually(async () => h.waiting() === 1, 1000, 'read held')
    assert.equal(await h.store.update('order:a', { maxBytes: 1 << 20, set: new Map([['x', '"new"']]), del: [] }, 60_000), true)
    assert.equal(h.store.peek('order:a')?.fields.get('x'), '"new"', 'the write snapshot is cached')
    h.release()
    assert.equal((await late)?.fields.get('x'), '"old"', 'the late read itself saw the old value')
    assert.equal(h.store.peek('order:a')?.fields.get('x'), '"new"', 'and did not overwrite the newer snapshot')
  } finally {
    await h.store.close()
    await h.client.close()
  }
})

test('redis store: a read in flight when its key is invalidated by another client is not cached', async () => {
  const h = await heldClient()
  const other = createClient({ url: redis.url })
  await other.connect()
  try {
    await other.hSet('inv:a', { 'm:c': '1', 'm:a': String(Date.now() + 60_000), 'm:i': String(Date.now() + 60_000), 'm:r': 'r', 'm:g': '0', 'm:s': 's', 'd:x': '"v1"' })
    h.hold()
    const late = getRecord(h.store, 'inv:a')
    await eventually(async () => h.waiting() === 1, 1000, 'read held')
    await other.hSet('inv:a', 'd:x', '"v2"') // Redis pushes an invalidation to the store's connection
    await h.client.ping() // replies arrive in order: the invalidation push came before this one
    h.release()
    assert.equal((await late)?.fields.get('x'), '"v1"')
    assert.equal(h.store.peek('inv:a'), undefined, 'the pre-invalidation read was not cached')
    assert.equal((await getRecord(h.store, 'inv:a'))?.fields.get('x'), '"v2"')
    assert.equal(h.store.peek('inv:a')?.fields.get('x'), '"v2"')
  } finally {
    await h.store.close()
    await h.client.close()
    await other.close()
  }
})

test('redis store: own writes are not echoed back (NOLOOP) yet other clients still invalidate the key', async () => {
  const h = await heldClient()
  const other = createClient({ url: redis.url })
  await other.connect()
  try {
    await h.store.create('loop:a', record({ x: '"1"' }), 60_000)
    await h.store.update('loop:a', { maxBytes: 1 << 20, set: new Map([['x', '"2"']]), del: [] }, 60_000)
    await h.client.ping() // any echo of our own write would have arrived before this reply
    assert.equal(h.store.peek('loop:a')?.fields.get('x'), '"2"', 'still cached after our own write')
    await other.hSet('loop:a', 'd:x', '"3"')
    await eventually(async () => h.store.peek('loop:a') === undefined, 1000, 'invalidated by the other client')
  } finally {
    await h.store.close()
    await h.client.close()
    await other.close()
  }
})

test('redis store: replace is a compare-and-set inside the write script', async () => {
  const h = await heldClient()
  try {
    await h.store.create('cas:a', record({ x: '"A"', y: '"A"' }), 60_000)
    assert.equal(await h.store.update('cas:a', {
      maxBytes: 1 << 20,
      set: new Map([['z', '"Z"']]),
      del: [],
      replace: new Map([['x', { from: '"B"', to: '"C"' }], ['y', { from: '"A"', to: '"C"' }]]),
    }, 0), true)
    const stored = await h.client.hGetAll('cas:a')
    assert.deepEqual([stored['d:x'], stored['d:y'], stored['d:z']], ['"A"', '"C"', '"Z"'])
  } finally {
    await h.store.close()
    await h.client.close()
  }
})

test('redis store: a foreign write processed in the same Redis event-loop iteration as an own write is never hidden by it', async (t) => {
  const h = await heldClient()
  const other = createClient({ url: redis.url })
  await other.connect()
  const outcomes = { foreignFirst: 0, foreignLast: 0 }
  try {
    for (let i = 0; i < 12; i++) {
      const key = `same-loop:${i}`
      await h.store.create(key, record({ x: '"0"' }), 60_000)
      // Redis sleeps while both clients' commands queue up; it then runs them in one iteration.
      const sleeping = (await putToSleep(redis.port, 0.35)).awake
      const own = () => h.store.update(key, { maxBytes: 1 << 20, set: new Map([['x', '"1"']]), del: [] }, 60_000)
      const foreign = () => other.hSet(key, 'd:y', '"foreign"')
      await (i % 2 === 0 ? Promise.all([own(), foreign()]) : Promise.all([foreign(), own()]))
      await sleeping
      await h.client.ping() // any invalidation pushed for those writes arrived before this reply
      const cached = h.store.peek(key)
      if (cached === undefined) {
        outcomes.foreignLast++
      } else {
        assert.equal(cached?.fields.get('y'), '"foreign"', 'a cached snapshot includes the foreign write')
        outcomes.foreignFirst++
      }
      assert.equal((await getRecord(h.store, key))?.fields.get('y'), '"foreign"')
    }
    t.diagnostic(`foreign write before the own write: ${outcomes.foreignFirst}, after it (invalidation pushed): ${outcomes.foreignLast}`)
    assert.ok(outcomes.foreignFirst > 0 && outcomes.foreignLast > 0, 'both orders of processing were exercised')
  } finally {
    await h.store.close()
    await h.client.close()
    await other.close()
  }
})

test('redis store: throttle counters whose window ended are swept by later hits, so a bucket stays near its live counters', async () => {
  const client = createClient({ url: redis.url, RESP: 3 })
  await client.connect()
  const store = new RedisStore(client as never, OPTIONS)
  try {
    const bucket = 'sweep:t:A'
    for (let i = 0; i < 300; i++) await store.hit(bucket, `a:old-${i}`, 100)
    await eventually(async () => (await store.readHits(bucket, 'a:old-299')).count === 0, 2000, 'the old windows ended')
    for (let i = 0; i < 300; i++) await store.hit(bucket, `a:new-${i}`, 60_000)
    const size = Number(await client.sendCommand(['HLEN', bucket]))
    // Without the sweep the bucket would hold 600 fields; with it, the live 300 and a few old ones.
    assert.ok(size >= 300 && size <= 330, `${size} fields`)
    assert.equal(Number(await client.sendCommand(['PTTL', bucket])), -1, 'the bucket has no TTL')
  } finally {
    await store.close()
    await client.close()
  }
})
