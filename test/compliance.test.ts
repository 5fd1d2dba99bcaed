/**
 * Evidence for compliance duties (docs/security.md): the audit trail reports every kind of event
 * the plugin has, each from the operation that causes it, with the user id and the session's
 * reference and never the session id; and erasing a user (`revokeUser`) leaves nothing of that
 * user's sessions in Redis; and a re-authentication (a same-user `login`) restarts the absolute
 * timeout, which NIST SP 800-63B-4's per-AAL limits count from. Real redis-server, started here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { generateEncryptionKey, hashPassword, type HardenedSessionOptions, type SessionEvent, type SessionEventType } from '../lib/index.ts'
import { buildApp, eventually, idOf, login, manualClock, sessionCookie } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
const fx = useRedis('compl')
const apps = fx.apps

async function make (options: Partial<HardenedSessionOptions>, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = await buildApp({ redis: { url: fx.redis.url }, ...options }, {}, routes)
  apps.push(app)
  return app
}

function recordKey (prefix: string, cookie: string): string {
  return prefix + createHash('sha256').update(idOf(cookie)).digest('base64url')
}

/** The names of the keys under `prefix`, from a raw RESP reply of KEYS. */
async function keysUnder (prefix: string): Promise<string[]> {
  const reply = await fx.redis.command('KEYS', `${prefix}*`)
  return [...reply.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string).sort()
}

/** One field of a hash, from a raw RESP bulk-string reply. */
async function hget (key: string, field: string): Promise<string> {
  return /\$\d+\r\n([^\r]*)\r\n/.exec(await fx.redis.command('HGET', key, field))?.[1] ?? ''
}

test("erasure: revokeUser leaves no record of the user's sessions and, under the user's name, only a random revocation marker that expires within 10 minutes; other users keep theirs", async () => {
  const prefix = 'erase:'
  const app = await make({ keyPrefix: prefix, sessionInfo: { userAgent: true, ip: true } })
  const erased = [await login(app, 'erase-me@example.com', { note: 'n' }), await login(app, 'erase-me@example.com'), await login(app, 'erase-me@example.com')]
  const kept = await login(app, 'keep-me@example.com', { note: 'k' })
  const erasedIndex = prefix + 'u:' + await hget(recordKey(prefix, erased[0] as string), 'm:k')
  const keptIndex = prefix + 'u:' + await hget(recordKey(prefix, kept), 'm:k')
  const before = await keysUnder(prefix)
  for (const key of [...erased.map((c) => recordKey(prefix, c)), erasedIndex]) assert.ok(before.includes(key), `${key} exists before the erasure`)

  assert.equal(await app.session.revokeUser('erase-me@example.com'), 3)

  assert.deepEqual(await keysUnder(prefix), [recordKey(prefix, kept), keptIndex, erasedIndex, prefix + 'epoch', prefix + 'keyring'].sort(),
    'only the other user\'s record and index, the erased user\'s revocation marker, the epoch and the key ring remain')
  // The marker (which makes a password login still running for the user fail) holds nothing but a random token.
  assert.deepEqual(await fx.redis.command('HKEYS', erasedIndex), '*1\r\n$4\r\n#gen\r\n')
  assert.match(await hget(erasedIndex, '#gen'), /^[A-Za-z0-9_-]{16}$/)
  const ttl = Number(/^:(-?\d+)/.exec(await fx.redis.command('PTTL', erasedIndex))?.[1])
  assert.ok(ttl > 0 && ttl <= 10 * 60_000, `the marker expires within 10 minutes (PTTL ${ttl})`)
  assert.equal((await app.inject({ url: '/me', headers: { cookie: kept } })).json().user, 'keep-me@example.com')
})

test('reauthentication: a same-user re-login ends the old id and restarts the absolute timeout; a regenerate does not restart it', async () => {
  const clock = manualClock()
  const app = await make({ keyPrefix: 'reauth:', idleTimeout: 1000, touchInterval: 100, absoluteTimeout: 1500, allowShortDurations: true, clock: clock.now })
  const user = async (cookie: string): Promise<string | null> => (await app.inject({ url: '/me', headers: { cookie } })).json().user
  const a = await login(app, 'reauth-a')
  const b = await login(app, 'reauth-b')
  clock.advance(700)
  const reLoggedIn = sessionCookie(await app.inject({ method: 'POST', url: '/login', headers: { cookie: a }, payload: { user: 'reauth-a' } })) as string
  const regenerated = sessionCookie(await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie: b } })) as string
  assert.equal(await user(a), null, 'the id before the re-login is dead')
  assert.equal(await user(b), null, 'the id before the regenerate is dead')
  clock.advance(700) // 1400 ms: both within their idle timeout
  assert.equal(await user(reLoggedIn), 'reauth-a')
  assert.equal(await user(regenerated), 'reauth-b')
  clock.advance(200) // 1600 ms: past the absolute deadline of the first login
  assert.equal(await user(regenerated), null, 'a regenerate keeps the absolute deadline of the login')
  assert.equal(await user(reLoggedIn), 'reauth-a', 'a re-login restarts it')
  clock.advance(500) // 2100 ms
  assert.equal(await user(reLoggedIn), 'reauth-a')
  clock.advance(100) // 2200 ms: 1500 ms after the re-login
  assert.equal(await user(reLoggedIn), null, 'the restarted absolute timeout ends it however active')
})

test('events: each event type is reported by the operation that causes it, with the user id and the session ref, never the session id', async () => {
  const clock = manualClock()
  const events: SessionEvent[] = []
  const cookies: string[] = []
  const hash = await hashPassword('correct horse battery staple', CHEAP)
  const app = await make({
    keyPrefix: 'audit:',
    clock: clock.now,
    maxSessionsPerUser: 2,
    storeTimeout: 500,
    encryption: { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: ['secret'] },
    loginThrottle: { perAccount: { max: 1, windowMs: 60_000 } },
    password: CHEAP,
    onEvent: (e) => { events.push(e) },
  }, (a) => {
    a.post('/pw', async (req) => await req.session.loginWithPassword({ account: 'audit-pw@example.com', hash, password: (req.body as { p: string }).p, userId: 'audit-pw' }))
  })
  const signIn = async (user: string, data?: object): Promise<string> => {
    const cookie = await login(app, user, data)
    cookies.push(cookie)
    return cookie
  }
  const refOf = async (cookie: string): Promise<string> => (await app.inject({ url: '/ref', headers: { cookie } })).json().ref
  type Seen = Pick<SessionEvent, 'type' | 'userId' | 'sessionRef' | 'code'>
  const seen = (list: SessionEvent[]): Seen[] => list.map(({ type, userId, sessionRef, code }) => ({ type, userId, sessionRef, code }))
  const event = (type: SessionEventType, userId?: string, sessionRef?: string, code?: SessionEvent['code']): Seen => ({ type, userId, sessionRef, code })
  /** Runs `action`, then checks the events it reported (types, user ids, refs, codes, in order) against `expected()`. */
  const reported = async (action: () => Promise<unknown>, expected: () => Seen[] | Promise<Seen[]>): Promise<void> => {
    const from = events.length
    await action()
    assert.deepEqual(seen(events.slice(from)), await expected())
  }

  // created → login → regenerated → logout, one lineage.
  let anon = ''
  await reported(async () => {
    anon = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })) as string
    cookies.push(anon)
  }, async () => [event('created', undefined, await refOf(anon))])
  let cookie = ''
  let ref = ''
  await reported(async () => {
    const res = await app.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: 'audit-1' } })
    cookie = sessionCookie(res) as string
    ref = res.json().ref
    cookies.push(cookie)
  }, () => [event('login', 'audit-1', ref)])
  await reported(async () => {
    cookie = sessionCookie(await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })) as string
    cookies.push(cookie)
  }, () => [event('regenerated', 'audit-1', ref)])
  await reported(() => app.inject({ method: 'POST', url: '/logout', headers: { cookie } }), () => [event('logout', 'audit-1', ref)])

  // destroyed, expired.
  const doomed = await signIn('audit-2')
  const doomedRef = await refOf(doomed)
  await reported(() => app.inject({ method: 'POST', url: '/destroy', headers: { cookie: doomed } }), () => [event('destroyed', 'audit-2', doomedRef)])
  const idle = await signIn('audit-3')
  const idleRef = await refOf(idle)
  clock.advance(30 * 60_000 + 1)
  await reported(async () => {
    assert.equal((await app.inject({ url: '/me', headers: { cookie: idle } })).json().user, null)
  }, () => [event('expired', 'audit-3', idleRef)])

  // revoked: by revokeUser, revokeSession, revokeOthers and maxSessionsPerUser; revoked_all.
  const pair = [await signIn('audit-4'), await signIn('audit-4')]
  const pairRefs = await Promise.all(pair.map(refOf))
  const from = events.length
  assert.equal(await app.session.revokeUser('audit-4'), 2)
  // Revoked in index order, which is not login order: compared as sets (one code-unit order on both sides).
  const byRef = (a: { sessionRef?: string }, b: { sessionRef?: string }): number => String(a.sessionRef) < String(b.sessionRef) ? -1 : String(a.sessionRef) > String(b.sessionRef) ? 1 : 0
  assert.deepEqual(seen(events.slice(from)).sort(byRef), pairRefs.map((r) => event('revoked', 'audit-4', r)).sort(byRef))
  const one = await signIn('audit-5')
  const oneRef = await refOf(one)
  await reported(async () => {
    assert.equal(await app.session.revokeSession('audit-5', oneRef), true)
  }, () => [event('revoked', 'audit-5', oneRef)])
  const mine = await signIn('audit-6')
  const otherRef = await refOf(await signIn('audit-6'))
  await reported(async () => {
    assert.deepEqual((await app.inject({ method: 'POST', url: '/revoke-others', headers: { cookie: mine } })).json(), { revoked: 1 })
  }, () => [event('revoked', 'audit-6', otherRef)])
  const oldestRef = await refOf(await signIn('audit-7'))
  clock.advance(1)
  await signIn('audit-7')
  clock.advance(1)
  let newestRef = ''
  await reported(async () => {
    const res = await app.inject({ method: 'POST', url: '/login', payload: { user: 'audit-7' } })
    cookies.push(sessionCookie(res) as string)
    newestRef = res.json().ref
  }, () => [event('revoked', 'audit-7', oldestRef), event('login', 'audit-7', newestRef)])
  await reported(() => app.session.revokeAll(), () => [event('revoked_all')])

  // invalid_cookie, invalid_record, decrypt_error, csrf.
  const forged = `__Host-sid=${randomBytes(32).toString('base64url')}.${createHmac('sha256', 'not-the-secret-0123456789-0123456789').update('x').digest('base64url')}`
  await reported(() => app.inject({ url: '/me', headers: { cookie: forged } }), () => [event('invalid_cookie')])
  const tampered = await signIn('audit-8')
  await reported(async () => {
    await fx.redis.command('HSET', recordKey('audit:', tampered), 'm:i', String(clock.now() + 1e9))
    await eventually(async () => (await app.inject({ url: '/me', headers: { cookie: tampered } })).json().user === null, 1000, 'the tampered record is no session')
  }, () => [event('invalid_record', undefined, undefined, 'FST_SESSION_RECORD_INVALID')])
  const secret = await signIn('audit-9', { secret: 's' })
  const secretRef = await refOf(secret)
  await reported(async () => {
    await fx.redis.command('HSET', recordKey('audit:', secret), 'd:secret', '~1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
    await eventually(async () => (await app.inject({ url: '/get/secret', headers: { cookie: secret } })).json().value === null, 1000, 'the tampered field reads as absent')
  }, () => [event('decrypt_error', undefined, secretRef, 'FST_SESSION_DECRYPT')])
  await reported(async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/set', headers: { cookie: secret, origin: 'https://evil.example' }, payload: { a: 1 } })).statusCode, 403)
  }, () => [event('csrf')])

  // login_failed, login_throttled: the app's user id, never the account name.
  await reported(async () => {
    assert.deepEqual((await app.inject({ method: 'POST', url: '/pw', payload: { p: 'wrong' } })).json(), { ok: false })
  }, () => [event('login_failed', 'audit-pw')])
  await reported(async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/pw', payload: { p: 'wrong' } })).statusCode, 429)
  }, () => [event('login_throttled', 'audit-pw')])

  // store_error: once per outage, however many requests fail.
  const live = await signIn('audit-10')
  await reported(async () => {
    await fx.redis.kill()
    await eventually(async () => (await app.inject({ url: '/me', headers: { cookie: live } })).statusCode === 503, 2000, 'a request that needs the store gets 503')
    assert.equal((await app.inject({ url: '/me', headers: { cookie: live } })).statusCode, 503)
  }, () => [event('store_error', undefined, undefined, 'FST_SESSION_STORE_UNAVAILABLE')])
  await fx.redis.restart()

  // Every event type was seen (the record fails to type-check when SessionEventType changes);
  // the device-bound ones are seen by test/dbsc-plugin.test.ts (this app does not bind devices).
  const all: Record<Exclude<SessionEventType, 'device_bound' | 'device_bound_refresh_failed'>, true> = { created: true, login: true, logout: true, regenerated: true, destroyed: true, expired: true, revoked: true, revoked_all: true, invalid_cookie: true, invalid_record: true, store_error: true, decrypt_error: true, login_failed: true, login_throttled: true, csrf: true }
  assert.deepEqual([...new Set(events.map((e) => e.type))].sort(), Object.keys(all).sort())
  const text = JSON.stringify(events)
  for (const c of cookies) assert.ok(!text.includes(idOf(c)) && !text.includes(c.split('=')[1] as string), 'no session id or cookie in any event')
  assert.ok(!text.includes('example.com'), 'no account name in any event')
  assert.ok(events.every((e) => e.at instanceof Date))
})
