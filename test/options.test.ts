import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions } from '../lib/index.ts'
import { normaliseOptions, TOP_LEVEL } from '../lib/config.ts'
import { readFileSync } from 'node:fs'

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
  ['absolute below idle', (o) => { o.idleTimeout = 120_000; o.absoluteTimeout = 90_000 }, 'FST_SESSION_INVALID_OPTION'],
  ['touchInterval above idle/2', (o) => { o.idleTimeout = 120_000; o.touchInterval = 61_000 }, 'FST_SESSION_INVALID_OPTION'],
  ['a non-function onEvent', (o) => { o.onEvent = 'x' as unknown as () => void }, 'FST_SESSION_INVALID_OPTION'],
  ['a zero maxSessionBytes', (o) => { o.maxSessionBytes = 0 }, 'FST_SESSION_INVALID_OPTION'],
  ['a bad clearSiteData directive', (o) => { o.clearSiteData = '"everything"' }, 'FST_SESSION_INVALID_OPTION'],
  ['a non-boolean sessionInfo.ip', (o) => { o.sessionInfo = { ip: 'yes' as unknown as boolean } }, 'FST_SESSION_INVALID_OPTION'],
  ['a keyPrefix with a hash tag', (o) => { o.keyPrefix = '{sess}:' }, 'FST_SESSION_INVALID_OPTION'],
  ['a non-function clock', (o) => { o.clock = 5 as unknown as () => number }, 'FST_SESSION_INVALID_OPTION'],
  ['deviceBound: true (an object is expected)', (o) => { o.deviceBound = true as unknown as {} }, 'FST_SESSION_INVALID_OPTION'],
  ['an unknown deviceBound key', (o) => { o.deviceBound = { cookieName: 'x' } as unknown as {} }, 'FST_SESSION_INVALID_OPTION'],
  ['a deviceBound path without a leading slash', (o) => { o.deviceBound = { refreshPath: 'refresh' } }, 'FST_SESSION_INVALID_OPTION'],
  ['a deviceBound path with a quote', (o) => { o.deviceBound = { registrationPath: '/r"x' } }, 'FST_SESSION_INVALID_OPTION'],
  ['the same deviceBound path twice', (o) => { o.deviceBound = { registrationPath: '/d', refreshPath: '/d' } }, 'FST_SESSION_INVALID_OPTION'],
  ['a deviceBound cookieMaxAge in seconds', (o) => { o.deviceBound = { cookieMaxAge: 600 } }, 'FST_SESSION_INVALID_OPTION'],
  ['a deviceBound cookieMaxAge above idleTimeout', (o) => { o.deviceBound = { cookieMaxAge: 31 * 60_000 } }, 'FST_SESSION_INVALID_OPTION'],
  ['deviceBound with an insecure cookie', (o) => { o.cookie = { name: 'sid', secure: false }; o.deviceBound = {} }, 'FST_SESSION_INVALID_OPTION'],
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
  assert.equal(normaliseOptions({ ...base(), idleTimeout: 100_000 }).touchInterval, 50_000)
})

const unknown: Array<[string, Record<string, unknown>, RegExp]> = [
  ['idletimeout', { idletimeout: 1000 }, /unknown option 'idletimeout' \(did you mean 'idleTimeout'\?\)/],
  ['cookieName', { cookieName: 'sid' }, /unknown option 'cookieName' \(use 'cookie\.name'\)/],
  ['secret', { secret }, /unknown option 'secret' \(use 'secrets'/],
  ['cookie.maxAge', { cookie: { maxAge: 1000 } }, /unknown option 'cookie\.maxAge' \(the cookie follows the session/],
  ['cookie.httponly', { cookie: { httponly: false } }, /unknown option 'cookie\.httponly'/],
  ['saveUninitialized', { saveUninitialized: true }, /unknown option 'saveUninitialized' \(sessions are saved only when/],
  ['rolling', { rolling: true }, /unknown option 'rolling'/],
  ['sessionInfo.userAgents', { sessionInfo: { userAgents: true } }, /did you mean 'sessionInfo\.userAgent'/],
]

for (const [name, extra, message] of unknown) {
  test(`options: an unknown option '${name}' fails register with FST_SESSION_INVALID_OPTION naming it`, async () => {
    const app = Fastify()
    await assert.rejects(async () => {
      await app.register(hardenedSession, { ...base(), ...extra } as HardenedSessionOptions)
      await app.ready()
    }, (err: { code?: string, message: string }) => {
      assert.ok(['FST_SESSION_INVALID_OPTION', 'FST_SESSION_COOKIE_OPTION'].includes(err.code ?? ''), err.code)
      assert.match(err.message, message)
      assert.ok(!err.message.includes(secret), 'no secret in the message')
      return true
    })
    await app.close()
  })
}

test('options: clearSiteData defaults to "cache" and never sends cookies/* beside a new session cookie', () => {
  const config = normaliseOptions(base())
  assert.equal(config.clearSiteData, '"cache"')
  const wide = normaliseOptions({ ...base(), clearSiteData: '"cookies", "storage", "*"' })
  assert.equal(wide.clearSiteData, '"cookies", "storage", "*"')
  assert.equal(wide.clearSiteDataWithCookie, '"storage"')
  assert.equal(normaliseOptions({ ...base(), clearSiteData: false }).clearSiteData, undefined)
})

test('options: the tables of docs/configuration.md list every top-level option the code accepts, and no other', () => {
  const text = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  const documented = new Set<string>()
  for (const row of text.split('\n').filter((line) => line.startsWith('| `'))) {
    for (const name of (row.split('|')[1] ?? '').matchAll(/`([A-Za-z]+)(?:\.[A-Za-z.]+)?`/g)) documented.add(name[1] as string)
  }
  assert.deepEqual([...documented].filter((name) => !(TOP_LEVEL as readonly string[]).includes(name)).sort(), [], 'documented but refused by the code')
  assert.deepEqual(TOP_LEVEL.filter((name) => !documented.has(name)).sort(), [], 'accepted by the code but not documented')
})

test('options: deviceBound defaults follow the contract (two /.well-known/ paths, 10 min, the session cookie name with -bound); false and absent turn it off', () => {
  assert.deepEqual(normaliseOptions({ ...base(), deviceBound: {} }).deviceBound, {
    registrationPath: '/.well-known/device-bound-sessions/register',
    refreshPath: '/.well-known/device-bound-sessions/refresh',
    cookieMaxAge: 600_000,
    cookieName: '__Host-sid-bound',
  })
  assert.equal(normaliseOptions({ ...base(), deviceBound: false }).deviceBound, undefined)
  assert.equal(normaliseOptions(base()).deviceBound, undefined)
  assert.equal(normaliseOptions({ ...base(), allowShortDurations: true, deviceBound: { cookieMaxAge: 2000 } }).deviceBound?.cookieMaxAge, 2000)
})
