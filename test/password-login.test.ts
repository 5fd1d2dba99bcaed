/**
 * `request.session.loginWithPassword()` and login throttling, against the memory store and a real
 * Redis shared by two instances: the throttle check comes first (no argon2 work while
 * throttled), counters are shared, keyed by keyed hashes (no account name or IP in the store),
 * parallel attempts cannot exceed the limit, and a success resets its account.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import hardenedSession, { createMemoryStore, hashPassword, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { clientPrefix } from '../lib/defences/throttle.ts'
import { SECRET, sessionCookie } from './helpers/app.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
const PASSWORD = 'correct horse battery staple'
let redis: RedisServer
let stored: string
before(async () => {
  redis = await startRedis()
  stored = await hashPassword(PASSWORD, CHEAP)
})
after(async () => { await redis.stop() })

/** An app whose /login looks the account up in a fixed "user table" (one user: alice). */
async function make (options: Partial<HardenedSessionOptions>): Promise<FastifyInstance> {
  const app = Fastify({ trustProxy: true })
  await app.register(hardenedSession, { secrets: [SECRET], password: CHEAP, ...options } as HardenedSessionOptions)
  app.post('/login', async (req) => {
    const { account, password } = req.body as { account: string, password: string }
    const known = account.toLowerCase() === 'alice@example.com'
    return await req.session.loginWithPassword({ account, password, hash: known ? stored : null, userId: known ? 'user-alice' : undefined, data: { via: 'password' } })
  })
  app.get('/me', async (req) => ({ user: req.session.userId ?? null, via: req.session.get('via') ?? null }))
  await app.ready()
  return app
}

function attempt (app: FastifyInstance, account: string, password: string, ip = '203.0.113.7', headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/login', payload: { account, password }, headers: { 'x-forwarded-for': ip, ...headers } })
}

const stores: Array<[string, () => [Partial<HardenedSessionOptions>, Partial<HardenedSessionOptions>]]> = [
  ['memory store', () => { const store = createMemoryStore(); return [{ store }, { store }] }],
  ['redis store', () => [{ redis: { url: redis.url } }, { redis: { url: redis.url } }]],
]

for (const [name, pair] of stores) {
  describe(`loginWithPassword (${name}, two instances)`, () => {
    const apps: FastifyInstance[] = []
    after(async () => { await Promise.all(apps.map((a) => a.close())) })
    const two = async (extra: Partial<HardenedSessionOptions> = {}): Promise<[FastifyInstance, FastifyInstance, SessionEvent[]]> => {
      const events: SessionEvent[] = []
      const [a, b] = pair()
      const made: [FastifyInstance, FastifyInstance] = [
        await make({ ...a, ...extra, onEvent: (e) => { events.push(e) } }),
        await make({ ...b, ...extra, onEvent: (e) => { events.push(e) } }),
      ]
      apps.push(...made)
      return [...made, events]
    }

    test('login: the right password logs in as userId with data; a wrong one or an unknown account does not', async () => {
      const [a, , events] = await two({ keyPrefix: `${name.split(' ')[0]}-1:` })
      const ok = await attempt(a, 'alice@example.com', PASSWORD)
      assert.deepEqual(ok.json(), { ok: true })
      assert.deepEqual((await a.inject({ url: '/me', headers: { cookie: sessionCookie(ok) ?? '' } })).json(), { user: 'user-alice', via: 'password' })
      const wrong = await attempt(a, 'alice@example.com', 'wrong password')
      assert.deepEqual(wrong.json(), { ok: false })
      assert.equal(wrong.headers['set-cookie'], undefined)
      await attempt(a, 'first-unknown@example.com', 'whatever') // the dummy hash is made on first use
      const before = a.passwords.operations
      assert.deepEqual((await attempt(a, 'nobody@example.com', 'whatever')).json(), { ok: false })
      assert.equal(a.passwords.operations - before, 1, 'an unknown account still costs one (dummy) argon2 verify')
      const failures = events.filter((e) => e.type === 'login_failed')
      assert.deepEqual(failures.map((e) => e.userId), ['user-alice', undefined, undefined], 'the app\'s user id, never the account name')
      assert.ok(!JSON.stringify(events).includes('example.com'))
    })

    test('throttle: past 10 failures per account, 429 FST_SESSION_LOGIN_THROTTLED with Retry-After, no argon2 work, on both instances', async () => {
      const [a, b, events] = await two({ keyPrefix: `${name.split(' ')[0]}-2:` })
      for (let i = 0; i < 10; i++) {
        const res = await attempt(i % 2 === 0 ? a : b, 'alice@example.com', `wrong-${i}`, `198.51.100.${i}`)
        assert.deepEqual(res.json(), { ok: false }, `failure ${i}`)
      }
      const before = a.passwords.operations + b.passwords.operations
      for (const app of [a, b]) {
        const res = await attempt(app, 'ALICE@example.com', PASSWORD, '192.0.2.200')
        assert.equal(res.statusCode, 429)
        assert.equal(res.json().code, 'FST_SESSION_LOGIN_THROTTLED')
        const retry = Number(res.headers['retry-after'])
        assert.ok(retry > 0 && retry <= 900, `Retry-After ${retry}`)
      }
      assert.equal(a.passwords.operations + b.passwords.operations, before, 'no argon2 operation while throttled')
      assert.equal(events.filter((e) => e.type === 'login_throttled').length, 2)
    })

    test('throttle: past 50 failures per IP across accounts, 429; other IPs are unaffected; an IPv6 /64 counts as one client', async () => {
      const [a, b] = await two({ keyPrefix: `${name.split(' ')[0]}-3:` })
      for (let i = 0; i < 50; i++) await attempt(i % 2 === 0 ? a : b, `user${i}@example.com`, 'x', `2001:db8:1:2::${i.toString(16)}`)
      assert.equal((await attempt(a, 'fresh@example.com', 'x', '2001:db8:1:2:ffff::1')).statusCode, 429, 'same /64')
      assert.deepEqual((await attempt(b, 'fresh@example.com', 'x', '2001:db8:1:3::1')).json(), { ok: false }, 'another /64')
    })

    test('throttle: a success resets its account (not the IP), so the owner can fail again later', async () => {
      const [a] = await two({ keyPrefix: `${name.split(' ')[0]}-4:`, loginThrottle: { perAccount: { max: 3, windowMs: 60_000 } } })
      for (let i = 0; i < 3; i++) await attempt(a, 'alice@example.com', 'bad')
      assert.equal((await attempt(a, 'alice@example.com', PASSWORD)).statusCode, 429)
      const [c] = await two({ keyPrefix: `${name.split(' ')[0]}-5:`, loginThrottle: { perAccount: { max: 3, windowMs: 60_000 } } })
      for (let i = 0; i < 2; i++) await attempt(c, 'alice@example.com', 'bad')
      assert.deepEqual((await attempt(c, 'alice@example.com', PASSWORD)).json(), { ok: true })
      for (let i = 0; i < 3; i++) assert.deepEqual((await attempt(c, 'alice@example.com', 'bad')).json(), { ok: false }, `after reset ${i}`)
      assert.equal((await attempt(c, 'alice@example.com', 'bad')).statusCode, 429)
    })

    test('throttle: 30 parallel wrong attempts at a limit of 10 run at most 10 argon2 verifies', async () => {
      const [a, b] = await two({ keyPrefix: `${name.split(' ')[0]}-6:` })
      const before = a.passwords.operations + b.passwords.operations
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(i % 2 === 0 ? a : b, 'alice@example.com', `p${i}`, `198.51.100.${i}`)))
      const verifies = a.passwords.operations + b.passwords.operations - before
      assert.ok(verifies <= 10, `${verifies} verifies`)
      assert.equal(results.filter((r) => r.statusCode === 429).length, 30 - verifies)
    })

    test('csrf: a cross-site login form is refused even without a session cookie (login CSRF)', async () => {
      const [a, , events] = await two({ keyPrefix: `${name.split(' ')[0]}-7:` })
      const res = await attempt(a, 'alice@example.com', PASSWORD, '203.0.113.9', { origin: 'https://evil.example' })
      assert.equal(res.statusCode, 403)
      assert.equal(res.json().code, 'FST_SESSION_CSRF')
      assert.equal(events.filter((e) => e.type === 'csrf').length, 1)
    })

    test('loginThrottle: false never throttles', async () => {
      const [a] = await two({ keyPrefix: `${name.split(' ')[0]}-8:`, loginThrottle: false })
      for (let i = 0; i < 12; i++) assert.deepEqual((await attempt(a, 'alice@example.com', 'bad')).json(), { ok: false })
      assert.deepEqual((await attempt(a, 'alice@example.com', PASSWORD)).json(), { ok: true })
    })
  })
}

test('throttle: Redis holds neither the account name, the user id nor the IP, only keyed hashes in bucket hashes without a TTL, each with its window end', async () => {
  const app = await make({ redis: { url: redis.url }, keyPrefix: 'priv:' })
  const before = Date.now()
  await attempt(app, 'Secret.Person@example.com', 'bad', '203.0.113.77')
  await attempt(app, 'alice@example.com', 'bad', '203.0.113.78')
  const keys = [...(await redis.command('KEYS', 'priv:t:*')).matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
  assert.ok(keys.length >= 1 && keys.length <= 6, keys.join(' '))
  const fields: string[] = []
  for (const key of keys) {
    assert.match(key, /^priv:t:[A-Za-z0-9_-]$/, 'one of 64 buckets')
    assert.equal(await redis.command('PTTL', key), ':-1\r\n', 'no TTL: no volatile-* policy can evict a counter')
    const flat = [...(await redis.command('HGETALL', key)).matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
    for (let i = 0; i < flat.length; i += 2) {
      const [field, value] = [flat[i] as string, flat[i + 1] as string]
      fields.push(field)
      assert.match(field, /^[ausi]:[A-Za-z0-9_-]{43}$/)
      const [count, end] = value.split(' ').map(Number) as [number, number]
      assert.equal(count, 1, `${field} ${value}`)
      assert.ok(end > before && end <= Date.now() + 15 * 60_000, `window end ${end}`)
    }
  }
  // An account, a user share, a user and an IP counter for the known account; an account and
  // an IP counter for the unknown one.
  assert.deepEqual(fields.map((f) => f[0]).sort(), ['a', 'a', 'i', 'i', 's', 'u'])
  const all = await redis.command('KEYS', '*') + JSON.stringify(await Promise.all(keys.map((k) => redis.command('HGETALL', k))))
  assert.ok(!/secret|person|alice|user-alice|203\.0\.113/i.test(all))
  await app.close()
})

test('throttle: a throttled attempt returns in well under one argon2 verify at the default cost', async () => {
  const app = Fastify({ trustProxy: true })
  await app.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore(), loginThrottle: { perAccount: { max: 1, windowMs: 60_000 } } })
  const realHash = await app.passwords.hashPassword(PASSWORD)
  app.post('/login', async (req) => await req.session.loginWithPassword({ account: 'a', hash: realHash, password: (req.body as { p: string }).p }))
  const t0 = performance.now()
  await app.inject({ method: 'POST', url: '/login', payload: { p: 'wrong' } })
  const verifyMs = performance.now() - t0
  const t1 = performance.now()
  const throttled = await app.inject({ method: 'POST', url: '/login', payload: { p: 'wrong' } })
  const throttledMs = performance.now() - t1
  assert.equal(throttled.statusCode, 429)
  assert.ok(throttledMs < verifyMs / 4, `throttled ${throttledMs.toFixed(1)} ms vs verify ${verifyMs.toFixed(1)} ms`)
  await app.close()
})

test('throttle: clientPrefix keeps IPv4, unwraps IPv4-mapped IPv6, and groups IPv6 by /64', () => {
  assert.equal(clientPrefix('203.0.113.7'), '203.0.113.7')
  assert.equal(clientPrefix('::ffff:203.0.113.7'), '203.0.113.7')
  assert.equal(clientPrefix('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  assert.equal(clientPrefix('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
  assert.equal(clientPrefix('::1'), '0:0:0:0::/64')
  assert.equal(clientPrefix('not an ip'), 'not an ip')
})
