/**
 * Attacks on login throttling across instances and look-alike accounts, against real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { hashPassword, type HardenedSessionOptions } from '../lib/index.ts'
import { rawCommand } from './helpers/redis-server.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('thrott', ['--enable-debug-command', 'yes'])

const CROSS_SITE = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }

const TRIES = 40

describe('login throttle', () => {
  const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
  const PASSWORD = 'correct horse battery staple'

  async function throttled (options: Partial<HardenedSessionOptions>, server = {}): Promise<{ a: FastifyInstance, keyPrefix: string }> {
    const keyPrefix = fx.freshPrefix()
    const hash = await hashPassword(PASSWORD, CHEAP)
    const a = await fx.app({ keyPrefix, password: CHEAP, ...options } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/pw', async (req) => {
        const { account, password } = req.body as { account: string, password: string }
        return await req.session.loginWithPassword({ account, password, hash: account.toLowerCase() === 'alice@example.com' ? hash : null })
      })
    }, { trustProxy: true, ...server })
    return { a, keyPrefix }
  }
  const attempt = (a: FastifyInstance, account: string, ip: string, password = 'wrong') =>
    a.inject({ method: 'POST', url: '/pw', payload: { account, password }, headers: { 'x-forwarded-for': ip } })

  async function keys (pattern: string): Promise<string[]> {
    const raw = await rawCommand(fx.redis.port, ['KEYS', pattern])
    return raw.split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
  }

  test('login throttle: counters end within their window, hold neither account nor IP, and Retry-After never exceeds the window', async () => {
    const windowMs = 60_000
    const { a, keyPrefix } = await throttled({ loginThrottle: { perAccount: { max: 3, windowMs }, perIp: { max: 100, windowMs } } })
    for (let i = 0; i < 3; i++) assert.equal((await attempt(a, 'Alice@Example.com', '198.51.100.23')).statusCode, 200)
    const res = await attempt(a, 'alice@example.com', '198.51.100.24', PASSWORD)
    assert.equal(res.statusCode, 429)
    const retry = Number(res.headers['retry-after'])
    assert.ok(retry >= 1 && retry <= windowMs / 1000, `Retry-After ${retry}`)
    const buckets = await keys(`${keyPrefix}t:*`)
    assert.ok(buckets.length >= 2)
    for (const key of buckets) {
      assert.ok(!/alice|example|198\.51|100\.23/i.test(key), key)
      const flat = (await rawCommand(fx.redis.port, ['HGETALL', key])).split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
      assert.ok(!/alice|198\.51/i.test(flat.join(' ')))
      assert.ok(flat.length >= 2 && flat.length % 2 === 0, `${key} is a hash of counters`)
      for (let i = 1; i < flat.length; i += 2) {
        const end = Number((flat[i] as string).split(' ')[1])
        assert.ok(end > Date.now() && end <= Date.now() + windowMs, `${key} ${flat[i - 1]}: window ends in ${end - Date.now()} ms`)
      }
    }
  })

  test('login throttle: IPv4-mapped IPv6, IPv4 and every address of one IPv6 /64 share one per-IP counter', async () => {
    const { a } = await throttled({ loginThrottle: { perAccount: { max: 1000, windowMs: 60_000 }, perIp: { max: 4, windowMs: 60_000 } } })
    const v4 = ['203.0.113.9', '::ffff:203.0.113.9', '::FFFF:203.0.113.9', '203.0.113.9']
    for (const ip of v4) assert.equal((await attempt(a, `x${ip}@example.com`, ip)).statusCode, 200, ip)
    assert.equal((await attempt(a, 'y@example.com', '::ffff:203.0.113.9')).statusCode, 429)
    const v6 = ['2001:db8:1:2::1', '2001:0db8:0001:0002:ffff::9', '2001:DB8:1:2:0:0:0:abcd', '2001:db8:1:2::1:2']
    for (const ip of v6) assert.equal((await attempt(a, `z${ip}@example.com`, ip)).statusCode, 200, ip)
    assert.equal((await attempt(a, 'w@example.com', '2001:db8:1:2:dead:beef::1')).statusCode, 429)
  })

  test('login throttle: 40 parallel wrong attempts from 40 IPs never verify more than max per account', async () => {
    const { a } = await throttled({ loginThrottle: { perAccount: { max: 5, windowMs: 60_000 }, perIp: { max: 1000, windowMs: 60_000 } } })
    const results = await Promise.all(Array.from({ length: TRIES }, (_, i) => attempt(a, 'bob@example.com', `192.0.2.${i + 1}`)))
    const verified = results.filter((r) => r.statusCode === 200).length
    assert.ok(verified <= 5, `${verified} wrong passwords verified at max 5`)
    assert.ok(results.every((r) => r.statusCode === 200 || (r.statusCode === 429 && Number(r.headers['retry-after']) >= 1)))
  })

  test('login throttle: a cross-site login form is refused before any counter is touched', async () => {
    const { a, keyPrefix } = await throttled({})
    const res = await a.inject({ method: 'POST', url: '/pw', payload: { account: 'alice@example.com', password: PASSWORD }, headers: { ...CROSS_SITE, host: 'app.example' } })
    assert.equal(res.statusCode, 403)
    assert.deepEqual(await keys(`${keyPrefix}t:*`), [])
  })
})
