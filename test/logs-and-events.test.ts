/**
 * Attacks on what logs and audit events carry, and what they never carry, against real
 * redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { hashPassword, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { captureLogs, eventually, login } from './helpers/app.ts'
import { startRedis } from './helpers/redis-server.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('logsan', ['--enable-debug-command', 'yes'])

describe('logs and events', () => {
  test('logs: nothing identifying (cookie, id, account, IP, user agent, Redis password) at trace level across error paths, outage included', async () => {
    const pw = 'S3cretRedisPassw0rd-' + randomBytes(6).toString('hex')
    const guarded = await startRedis()
    fx.closers.push(() => guarded.stop())
    await guarded.command('CONFIG', 'SET', 'requirepass', pw)
    const proxy = await startProxy(guarded.port)
    fx.closers.push(() => proxy.close())
    const { lines, logger } = captureLogs('trace')
    const events: SessionEvent[] = []
    const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
    const hash = await hashPassword('correct horse battery staple', CHEAP)
    const a = await fx.app({
      redis: { url: `redis://default:${pw}@127.0.0.1:${proxy.port}` },
      password: CHEAP,
      storeTimeout: 300,
      sessionInfo: { userAgent: true, ip: true },
      loginThrottle: { perAccount: { max: 1, windowMs: 60_000 }, perIp: { max: 100, windowMs: 60_000 } },
      onEvent: (e) => { events.push(e) },
    } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/pw', async (req) => {
        const { account, password } = req.body as { account: string, password: string }
        return await req.session.loginWithPassword({ account, password, hash: account === 'carol.secret@example.com' ? hash : null, userId: 'uid-carol-77' })
      })
    }, { logger, trustProxy: true })
    const ip = '198.51.100.77'
    const ua = 'AttackerAgent/9.9 (unique-ua-marker)'
    const headers = { 'x-forwarded-for': ip, 'user-agent': ua }
    await a.inject({ method: 'POST', url: '/pw', payload: { account: 'carol.secret@example.com', password: 'nope' }, headers })
    await a.inject({ method: 'POST', url: '/pw', payload: { account: 'carol.secret@example.com', password: 'nope' }, headers }) // throttled
    const cookie = await login(a, 'uid-carol-77')
    const id = cookie.split('=')[1]?.split('.')[0] as string
    await a.inject({ url: '/me', headers: { ...headers, cookie: cookie + 'x' } }) // invalid cookie
    await a.inject({ method: 'POST', url: '/set', headers: { ...headers, cookie, origin: 'https://evil.example' }, payload: { k: 1 } }) // csrf
    proxy.cut()
    proxy.stall()
    await a.inject({ method: 'POST', url: '/set', headers: { ...headers, cookie }, payload: { k: 2 } })
    await a.inject({ method: 'POST', url: '/login', headers, payload: { user: 'uid-carol-77' } })
    proxy.resume()
    await eventually(async () => (await a.inject({ url: '/me', headers: { ...headers, cookie } })).statusCode === 200, 5000, 'recovered')
    // Fastify's own request/response lines (req, res) are the application's choice; the plugin's are checked.
    const ours = lines.filter((l) => l.req === undefined && l.res === undefined)
    const text = JSON.stringify(ours) + JSON.stringify(events)
    for (const [what, value] of [['cookie value', cookie.split('=')[1] as string], ['session id', id], ['account', 'carol.secret'], ['IP', ip], ['user agent', 'unique-ua-marker'], ['Redis password', pw]]) {
      assert.ok(!text.includes(value as string), `${what} appears in a log line or event`)
    }
    assert.ok(ours.some((l) => String(l.msg).includes('store unavailable')), 'the outage was logged')
  })
})
