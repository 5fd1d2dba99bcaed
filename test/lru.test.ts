import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BoundedCache } from '../lib/lru.ts'

test('cache: holds at most maxEntries, dropping the least recently used generation', () => {
  const cache = new BoundedCache<string, number>(4)
  for (let i = 0; i < 100; i++) cache.set(`k${i}`, i)
  assert.ok(cache.size <= 4)
  assert.equal(cache.get('k99'), 99)
  assert.equal(cache.get('k0'), undefined)
})

test('cache: bounded by bytes as well as entries, and a value larger than a generation is not kept', () => {
  const cache = new BoundedCache<string, string>(1_000_000, 10_000)
  for (let i = 0; i < 1000; i++) cache.set(`k${i}`, 'v', 1000)
  assert.ok(cache.bytes <= 10_000, `${cache.bytes} bytes held`)
  assert.ok(cache.size <= 10)
  cache.set('huge', 'v', 6000)
  assert.equal(cache.get('huge'), undefined)
})

test('cache: a hit in the old generation is promoted and survives the next rotation', () => {
  const cache = new BoundedCache<string, number>(4)
  cache.set('a', 1)
  cache.set('b', 2)
  cache.set('c', 3) // rotation: a, b are old
  assert.equal(cache.get('a'), 1) // promoted
  cache.set('d', 4)
  cache.set('e', 5) // rotation: b is dropped
  assert.equal(cache.get('a'), 1)
  assert.equal(cache.get('b'), undefined)
})

test('cache: delete and clear keep the byte count exact', () => {
  const cache = new BoundedCache<string, number>(100, 1_000_000)
  cache.set('a', 1, 10)
  cache.set('b', 2, 20)
  cache.set('a', 3, 5)
  assert.equal(cache.bytes, 25)
  cache.delete('b')
  assert.equal(cache.bytes, 5)
  cache.clear()
  assert.equal(cache.bytes, 0)
  assert.equal(cache.size, 0)
})
