import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions } from '../lib/index.ts'
import { normaliseOptions } from '../lib/options.ts'

const secret = 's'.repeat(32)
const base = (): HardenedSessionOptions => ({ secrets: [secret], store: createMemoryStore() })

const cases: Array<[string, (o: HardenedSessionOptions) => void, string]> = [
  ['no secrets', (o) => { o.secrets = [] }, 'FST_SESSION_SECRET_INVALID'],
  ['a short secret', (o) => { o.secrets = [secret, 'short'] }, 'FST_SESSION_SECRET_INVALID'],
  ['a non-string secret', (o) => { o.secrets = [42 as unknown as string] }, 'FST_SESSION_SECRET_INVALID'],
  ['neither redis nor store', (o) => { delete o.store }, 'FST_SESSION_STORE_OPTION'],
  ['both redis and store', (o) => { o.redis = { url: 'redis://127.0.0.1:1' } }, 'FST_SESSION_STORE_OPTION'],
  ['__Host- with a domain', (o) => { o.cookie = { domain: 'example.com' } }, 'FST_SESSION_COOKIE_OPTION'],
  ['__Host- with a path', (o) => { o.cookie = { path: '/app' } }, 'FST_SESSION_COOKIE_OPTION'],
  ['__Host- without secure', (o) => { o.cookie = { secure: false } }, 'FST_SESSION_COOKIE_OPTION'],
  ['SameSite=None without secure', (o) => { o.cookie = { name: 'sid', secure: false, sameSite: 'none' } }, 'FST_SESSION_COOKIE_OPTION'],
  ['a cookie name with a space', (o) => { o.cookie = { name: 'my sid' } }, 'FST_SESSION_COOKIE_OPTION'],
  ['a bad sameSite', (o) => { o.cookie = { sameSite: 'loose' as 'lax' } }, 'FST_SESSION_COOKIE_OPTION'],
  ['a negative idleTimeout', (o) => { o.idleTimeout = -1 }, 'FST_SESSION_INVALID_OPTION'],
  ['absolute below idle', (o) => { o.idleTimeout = 60_000; o.absoluteTimeout = 30_000 }, 'FST_SESSION_INVALID_OPTION'],
  ['touchInterval above idle/2', (o) => { o.idleTimeout = 10_000; o.touchInterval = 6000 }, 'FST_SESSION_INVALID_OPTION'],
  ['a non-function onEvent', (o) => { o.onEvent = 'x' as unknown as () => void }, 'FST_SESSION_INVALID_OPTION'],
  ['a zero maxSessionBytes', (o) => { o.maxSessionBytes = 0 }, 'FST_SESSION_INVALID_OPTION'],
]

for (const [name, mutate, code] of cases) {
  test(`options: ${name} fails register with ${code}`, async () => {
    const options = base()
    mutate(options)
    const app = Fastify()
    await assert.rejects(async () => {
      await app.register(hardenedSession, options)
      await app.ready()
    }, (err: { code?: string, message: string }) => {
      assert.equal(err.code, code)
      assert.ok(!err.message.includes(secret), 'no secret in the message')
      return true
    })
    await app.close()
  })
}

test('options: defaults follow the contract and are frozen', () => {
  const config = normaliseOptions(base())
  assert.equal(config.idleTimeout, 30 * 60_000)
  assert.equal(config.absoluteTimeout, 12 * 3600_000)
  assert.equal(config.touchInterval, 60_000)
  assert.equal(config.storeTimeout, 1000)
  assert.equal(config.maxSessionBytes, 64 * 1024)
  assert.equal(config.keyPrefix, 'sess:')
  assert.deepEqual({ ...config.cookie }, { name: '__Host-sid', sameSite: 'lax', secure: true, domain: undefined, path: '/', partitioned: false })
  assert.ok(Object.isFrozen(config))
  assert.ok(Object.isFrozen(config.cookie))
})

test('options: touchInterval defaults to idleTimeout/2 when that is below 60 s', () => {
  assert.equal(normaliseOptions({ ...base(), idleTimeout: 10_000 }).touchInterval, 5000)
})
