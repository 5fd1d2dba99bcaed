import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../lib/index.ts'
import { record, storeContract } from './helpers/store-contract.ts'

storeContract('memory store', async () => createMemoryStore())

/** A clock the test moves by hand. */
function manualClock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

test('memory store: a record lives until its TTL, then is gone', async () => {
  const clock = manualClock()
  const store = createMemoryStore({ clock: clock.now })
  await store.create('k', record({ a: '1' }, clock.now()), 50)
  clock.advance(49)
  assert.equal(store.peek('k')?.fields.get('a'), '1')
  clock.advance(1)
  assert.equal(store.peek('k'), null)
  await store.close()
})

test('memory store: beyond maxEntries the least recently used session is evicted', async () => {
  const store = createMemoryStore({ maxEntries: 2 })
  await store.create('a', record(), 1000)
  await store.create('b', record(), 1000)
  store.peek('a') // a is now more recent than b
  await store.create('c', record(), 1000)
  assert.ok(store.peek('a'))
  assert.equal(store.peek('b'), null)
  assert.ok(store.peek('c'))
  assert.equal(store.evictions, 1)
  assert.equal(store.size, 2)
  await store.close()
})

test('memory store: the sweep removes expired sessions and indexes', async () => {
  const clock = manualClock()
  const store = createMemoryStore({ clock: clock.now })
  await store.create('a', record({}, clock.now()), 20)
  await store.admit('u', { ref: 'r', hash: 'a', expiresAt: clock.now() + 1000, loginAt: clock.now() }, { expect: undefined, max: 10, now: clock.now(), ttlMs: 20 })
  clock.advance(30)
  assert.equal(store.size, 1)
  store.sweep()
  assert.equal(store.size, 0)
  assert.deepEqual(await store.members('u'), [])
  await store.close()
})

test('memory store: bad or unknown options fail with FST_SESSION_INVALID_OPTION', () => {
  for (const options of [{ maxEntries: 0 }, { sweepInterval: 1 }, { clock: 5 }, { maxentries: 5 }]) {
    assert.throws(() => createMemoryStore(options as never), { code: 'FST_SESSION_INVALID_OPTION' }, JSON.stringify(options))
  }
})
