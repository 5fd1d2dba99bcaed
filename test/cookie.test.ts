import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cookieValues, cookieWriter } from '../lib/cookie.ts'
import { normaliseOptions } from '../lib/options.ts'
import { createMemoryStore } from '../lib/store/memory.ts'

test('cookie: finds only whole cookie-pairs of the name', () => {
  assert.deepEqual(cookieValues('a=1; __Host-sid=abc; b=2', '__Host-sid', 3), ['abc'])
  assert.deepEqual(cookieValues('__Host-sid=abc', '__Host-sid', 3), ['abc'])
  assert.deepEqual(cookieValues('x__Host-sid=abc', '__Host-sid', 3), [])
  assert.deepEqual(cookieValues('a=__Host-sid=abc', '__Host-sid', 3), [])
  assert.deepEqual(cookieValues('__Host-sid=1;__Host-sid=2', '__Host-sid', 3), ['1', '2'])
  assert.deepEqual(cookieValues('', '__Host-sid', 3), [])
})

test('cookie: at most `max` candidates are returned, however many the header repeats', () => {
  const header = Array.from({ length: 165 }, (_, i) => `__Host-sid=v${i}`).join('; ')
  assert.deepEqual(cookieValues(header, '__Host-sid', 3), ['v0', 'v1', 'v2'])
})

test('cookie: Set-Cookie carries HttpOnly, Secure, SameSite=Lax, Path=/ and Max-Age by default', () => {
  const config = normaliseOptions({ secrets: ['s'.repeat(32)], store: createMemoryStore() })
  const writer = cookieWriter(config.cookie)
  const set = writer.set('v', 90_400)
  assert.match(set, /^__Host-sid=v; Max-Age=90; Expires=[^;]+ GMT; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  assert.match(writer.clear(), /^__Host-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
})

test('cookie: custom attributes are written (domain, strict, partitioned)', () => {
  const config = normaliseOptions({
    secrets: ['s'.repeat(32)],
    store: createMemoryStore(),
    cookie: { name: 'sid', domain: 'example.com', sameSite: 'strict', partitioned: true, path: '/app' },
  })
  const set = cookieWriter(config.cookie).set('v', 1000)
  assert.match(set, /; Path=\/app; HttpOnly; Secure; SameSite=Strict; Domain=example\.com; Partitioned$/)
})
