import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cookieValues } from '../lib/cookie.ts'

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
