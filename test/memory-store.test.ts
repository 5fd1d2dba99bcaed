import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMemoryStore } from '../lib/index.ts'
import type { SessionRecord } from '../lib/store/types.ts'
import { sleep } from './helpers/app.ts'

function record (fields: Record<string, string> = {}): SessionRecord {
  const now = Date.now()
  return { createdAt: now, absoluteExpiry: now + 60_000, idleExpiry: now + 60_000, userId: undefined, authenticatedAt: undefined, fields: new Map(Object.entries(fields)) }
}

test('memory store: a record lives until its TTL, then is gone', async () => {
  const store = createMemoryStore()
  await store.create('k', record({ a: '1' }), 50)
  assert.equal((await store.get('k'))?.fields.get('a'), '1')
  await sleep(60)
  assert.equal(await store.get('k'), undefined)
  await store.close()
})

test('memory store: update applies only the given fields, refuses a missing key, and never mutates the old record', async () => {
  const store = createMemoryStore()
  const original = record({ a: '1', b: '2' })
  await store.create('k', original, 1000)
  assert.equal(await store.update('k', { set: new Map([['c', '3']]), del: ['a'], idleExpiry: 5 }, 1000), true)
  const updated = await store.get('k')
  assert.deepEqual([...(updated?.fields ?? [])], [['b', '2'], ['c', '3']])
  assert.equal(updated?.idleExpiry, 5)
  assert.deepEqual([...original.fields], [['a', '1'], ['b', '2']], 'the previous record object is untouched')
  assert.equal(await store.update('missing', { set: new Map(), del: [], idleExpiry: 1 }, 1000), false)
  assert.equal(await store.get('missing'), undefined)
  await store.close()
})

test('memory store: beyond maxEntries the least recently used session is evicted', async () => {
  const store = createMemoryStore({ maxEntries: 2 })
  await store.create('a', record(), 1000)
  await store.create('b', record(), 1000)
  await store.get('a') // a is now more recent than b
  await store.create('c', record(), 1000)
  assert.ok(await store.get('a'))
  assert.equal(await store.get('b'), undefined)
  assert.ok(await store.get('c'))
  assert.equal(store.evictions, 1)
  assert.equal(store.size, 2)
  await store.close()
})

test('memory store: the sweep removes expired sessions and indexes', async () => {
  const store = createMemoryStore()
  await store.create('a', record(), 20)
  await store.indexAdd('u', 'a', Date.now() + 1000, 20)
  await sleep(30)
  assert.equal(store.size, 1)
  store.sweep()
  assert.equal(store.size, 0)
  assert.deepEqual(await store.indexRead('u'), [])
  await store.close()
})

test('memory store: the user index keeps members by score and prunes past deadlines on add', async () => {
  const store = createMemoryStore()
  const now = Date.now()
  await store.indexAdd('u', 'old', now - 1, 10_000)
  await store.indexAdd('u', 'y', now + 2000, 10_000)
  await store.indexAdd('u', 'x', now + 1000, 10_000)
  assert.deepEqual((await store.indexRead('u')).map((e) => e.member), ['x', 'y'])
  await store.indexRemove('u', ['x'])
  assert.deepEqual((await store.indexRead('u')).map((e) => e.member), ['y'])
  await store.indexRemove('u', ['y'])
  assert.deepEqual(await store.indexRead('u'), [], 'an emptied index is gone')
  await store.close()
})

test('memory store: bad options throw TypeError', () => {
  assert.throws(() => createMemoryStore({ maxEntries: 0 }), TypeError)
  assert.throws(() => createMemoryStore({ sweepInterval: 1 }), TypeError)
})

test('memory store: replace is a compare-and-set (a field changed meanwhile is left alone)', async () => {
  const store = createMemoryStore()
  await store.create('k', record({ x: 'A', y: 'A' }), 1000)
  await store.update('k', { set: new Map(), del: [], idleExpiry: undefined, replace: new Map([['x', { from: 'B', to: 'C' }], ['y', { from: 'A', to: 'C' }]]) }, 0)
  const r = await store.get('k')
  assert.equal(r?.fields.get('x'), 'A')
  assert.equal(r?.fields.get('y'), 'C')
  await store.close()
})
