/**
 * Attacks on logins that tag a new record with the epoch copy their instance holds (CREATE
 * checks it as it writes) and hold the index entry they admitted: two instances on one Redis,
 * B through a stallable proxy; revokeAll and user revocations racing logins; a Redis writer
 * deleting, rolling back or planting the epoch; a Redis restart without persistence.
 * Every test here is an attack the code withstood, kept as a regression test.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import type { HardenedSessionOptions } from '../lib/index.ts'
import { buildApp, gone, login, sessionCookie, works } from './helpers/app.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('loginep')
let prefixes = 0
let users = 0
const user = (): string => `le-user-${++users}`
async function app (options: Partial<HardenedSessionOptions>): Promise<FastifyInstance> {
  const made = await buildApp({ redis: { url: fx.redis.url }, ...options })
  fx.apps.push(made)
  return made
}
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('30× on an instance whose link holds revokeAll\'s invalidation (held epoch copy stale), a regenerate / same-user re-login of a revoked session ends (409), and a new login / anonymous session made after revokeAll resolved works on both instances', async () => {
  const proxy = await startProxy(fx.redis.port)
  fx.closers.push(async () => { proxy.resume(); await proxy.close() })
  const keyPrefix = `le${++prefixes}:`
  const a = await app({ keyPrefix })
  const b = await app({ keyPrefix, redis: { url: proxy.url } })
  const failures: string[] = []
  for (let i = 0; i < 30; i++) {
    const u = user()
    const cookie = await login(b, u)
    assert.equal(await works(b, cookie), true) // B holds the record and the epoch copy
    const kind = ['regenerate', 'relogin', 'login', 'anon'][i % 4] as string
    proxy.stall()
    await a.session.revokeAll()
    const pending = kind === 'regenerate'
      ? b.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
      : kind === 'relogin'
        ? b.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: u } })
        : kind === 'login'
          ? b.inject({ method: 'POST', url: '/login', payload: { user: user() } })
          : b.inject({ method: 'POST', url: '/set', payload: { x: 1 } })
    await delay(30)
    proxy.resume()
    const res = await pending
    const next = sessionCookie(res)
    if (kind === 'regenerate' || kind === 'relogin') {
      if (res.statusCode !== 409) failures.push(`${i} ${kind}: ${res.statusCode}`)
      if (next !== undefined) {
        if (await works(a, next)) failures.push(`${i} ${kind}: continued revoked session works on A`)
        await gone(b, next, `${i} ${kind}`)
      }
    } else {
      assert.equal(res.statusCode, 200, `${i} ${kind}`)
      assert.ok(next)
      if (kind === 'login') {
        if (!(await works(a, next))) failures.push(`${i} ${kind}: dead on A`)
        if (!(await works(b, next))) failures.push(`${i} ${kind}: dead on B`)
      } else {
        const read = async (x: FastifyInstance): Promise<unknown> => (await x.inject({ url: '/get/x', headers: { cookie: next } })).json()
        if (JSON.stringify(await read(a)) !== '{"value":1}') failures.push(`${i} ${kind}: A reads ${JSON.stringify(await read(a))}`)
      }
    }
    await gone(a, cookie, `${i}: revoked`)
    await gone(b, cookie, `${i}: revoked`)
  }
  assert.deepEqual(failures, [])
})

test('40× a login on A racing revokeOthers / revokeSession / revokeUser of the same user on B: the new session works on A exactly when the index lists it (a revocation that removed it is never hidden by the login\'s cached entry)', async () => {
  const keyPrefix = `le${++prefixes}:`
  const a = await app({ keyPrefix })
  const b = await app({ keyPrefix })
  const failures: string[] = []
  for (let i = 0; i < 40; i++) {
    const u = user()
    const keep = await login(b, u)
    const victim = await login(b, u)
    const refRes = await b.inject({ url: '/ref', headers: { cookie: victim } })
    const victimRef = refRes.json().ref as string
    const kind = ['others', 'session', 'user'][i % 3] as string
    const revoke = kind === 'others'
      ? b.inject({ method: 'POST', url: '/revoke-others', headers: { cookie: keep } })
      : kind === 'session' ? b.session.revokeSession(u, victimRef) : b.session.revokeUser(u)
    const [res] = await Promise.all([
      a.inject({ method: 'POST', url: '/login', headers: { cookie: victim }, payload: { user: u } }),
      revoke,
    ])
    const next = sessionCookie(res)
    await delay(5)
    if (next !== undefined) {
      const refs = (await b.session.listUserSessions(u)).map((s: { ref: string }) => s.ref)
      const nextRef = (await b.inject({ url: '/ref', headers: { cookie: next } })).json().ref as string | undefined
      const onA = await works(a, next)
      const onB = await works(b, next)
      const listed = nextRef !== undefined && refs.includes(nextRef)
      if (onA !== onB || onA !== listed) failures.push(`${i} ${kind}: A ${onA} B ${onB} listed ${listed}`)
      if (kind !== 'user' && onA && nextRef === victimRef) failures.push(`${i} ${kind}: revoked lineage continued`)
    }
    await gone(a, victim, `${i}: victim old id`)
  }
  assert.deepEqual(failures, [])
})

test('a Redis writer deleting or rolling back the epoch copy, and a Redis restart without persistence, neither revive a session revokeAll ended nor make logins (on the held-copy path) issue dead sessions; the stored epoch never goes back', async () => {
  const keyPrefix = `le${++prefixes}:`
  const a = await app({ keyPrefix })
  const b = await app({ keyPrefix })
  const epochKey = `${keyPrefix}epoch`
  const counter = async (): Promise<number> => Number(/\$\d+\r\n(\d+)\./.exec(await fx.redis.command('GET', epochKey))?.[1] ?? 0)
  const revoked = await login(a, user())
  assert.equal(await works(b, revoked), true)
  const saved = (await fx.redis.command('GET', epochKey)).split('\r\n')[1] as string
  await a.session.revokeAll()
  const after = await counter()
  await gone(b, revoked)
  const check = async (what: string): Promise<void> => {
    for (const x of [a, b]) {
      const fresh = await login(x, user())
      assert.equal(await works(a, fresh), true, `${what}: a login made now works on A`)
      assert.equal(await works(b, fresh), true, `${what}: and on B`)
      const anon = sessionCookie(await x.inject({ method: 'POST', url: '/set', payload: { x: 1 } })) as string
      assert.deepEqual((await (x === a ? b : a).inject({ url: '/get/x', headers: { cookie: anon } })).json(), { value: 1 }, `${what}: anonymous session`)
    }
    assert.equal(await works(a, revoked), false, `${what}: the revoked session stays dead on A`)
    assert.equal(await works(b, revoked), false, `${what}: and on B`)
    assert.ok(await counter() >= after, `${what}: the stored epoch never goes back`)
  }
  await check('baseline')
  for (let i = 0; i < 5; i++) {
    await fx.redis.command('DEL', epochKey)
    await check(`${i} deleted`)
    await fx.redis.command('SET', epochKey, saved)
    await check(`${i} rolled back`)
    await fx.redis.command('SET', epochKey, '999999999.' + 'x'.repeat(22) + '.' + 'y'.repeat(22))
    await check(`${i} planted`)
  }
})

test('after a Redis restart without persistence, a login on either instance (held copy flushed) works on both and the epoch is restored to the newest known, never below', async () => {
  const { startRedis } = await import('./helpers/redis-server.ts')
  const server = await startRedis()
  fx.closers.push(() => server.stop())
  const keyPrefix = `le${++prefixes}:`
  const mk = async (): Promise<FastifyInstance> => {
    const made = await buildApp({ redis: { url: server.url }, keyPrefix })
    fx.apps.push(made)
    return made
  }
  const a = await mk()
  const b = await mk()
  const epochKey = `${keyPrefix}epoch`
  const counter = async (): Promise<number> => Number(/\$\d+\r\n(\d+)\./.exec(await server.command('GET', epochKey))?.[1] ?? 0)
  await login(b, user())
  await a.session.revokeAll()
  await a.session.revokeAll()
  const before = await counter()
  assert.ok(before >= 2)
  await delay(50)
  await server.kill()
  await server.restart()
  let made = 0
  for (let i = 0; i < 10; i++) {
    const x = i % 2 === 0 ? b : a
    const res = await x.inject({ method: 'POST', url: '/login', payload: { user: user() } })
    if (res.statusCode !== 200) { await delay(100); continue } // still reconnecting
    const fresh = sessionCookie(res) as string
    assert.equal(await works(a, fresh), true, `try ${i}: works on A`)
    assert.equal(await works(b, fresh), true, `try ${i}: works on B`)
    assert.ok(await counter() >= before, `try ${i}: epoch ${await counter()} < ${before}`)
    made++
  }
  assert.ok(made >= 5, `logins after the restart: ${made}`)
})
