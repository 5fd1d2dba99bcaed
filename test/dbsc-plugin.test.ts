import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createMemoryStore, generateEncryptionKey, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { storageHash } from '../lib/crypto/ids.ts'
import { buildApp, eventually, idOf, manualClock } from './helpers/app.ts'
import { deviceKey, parseChallenge, refreshProof, registrationProof, sfString } from './helpers/dbsc-client.ts'
import { BOUND, Browser, REFRESH, REGISTER } from './helpers/dbsc-browser.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

const MAX_AGE = 60_000

interface Made {
  app: FastifyInstance
  clock: ReturnType<typeof manualClock>
  events: SessionEvent[]
}

const apps: FastifyInstance[] = []
let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => {
  await Promise.all(apps.map((a) => a.close().catch(() => {})))
  await redis.stop()
})

type Backend = 'memory' | 'redis'

async function make (backend: Backend, extra: Partial<HardenedSessionOptions> = {}): Promise<Made> {
  const clock = manualClock()
  const events: SessionEvent[] = []
  // Each Redis app under a prefix of its own: no test sees another's users.
  const store = backend === 'memory' ? { store: createMemoryStore({ clock: clock.now }) } : { redis: { url: redis.url }, keyPrefix: `dbsc${apps.length}:` }
  const app = await buildApp({
    ...store,
    clock: clock.now,
    allowShortDurations: true,
    deviceBound: { cookieMaxAge: MAX_AGE },
    onEvent: (e) => events.push(e),
    ...extra,
  })
  apps.push(app)
  return { app, clock, events }
}

/** A browser that logged in and registered (ES256 unless said). */
async function bound (app: FastifyInstance, user = 'user-1', alg: 'ES256' | 'RS256' = 'ES256'): Promise<Browser> {
  const b = await Browser.open(app, alg)
  await b.login(user)
  const res = await b.register()
  assert.equal(res.statusCode, 200, res.body)
  return b
}

for (const backend of ['memory', 'redis'] as const) {
  describe(`dbsc (${backend} store)`, () => {
    test(`dbsc ${backend}: a login asks the browser to register with a fresh challenge; without deviceBound nothing is asked`, async () => {
      const { app } = await make(backend)
      const a = await Browser.open(app)
      await a.login()
      assert.deepEqual(a.registration?.algs, ['ES256', 'RS256'])
      assert.equal(a.registration?.path, REGISTER)
      const first = a.registration?.challenge
      await a.login()
      assert.notEqual(a.registration?.challenge, first, 'each login its own challenge')
      const { app: plain } = await make(backend, { deviceBound: false })
      const res = await plain.inject({ method: 'POST', url: '/login', payload: { user: 'u' } })
      assert.equal(res.headers['secure-session-registration'], undefined)
      assert.equal((await plain.inject({ method: 'POST', url: REGISTER })).statusCode, 404, 'no endpoints either')
    })

    for (const alg of ['ES256', 'RS256'] as const) {
      test(`dbsc ${backend}: ${alg} registration binds the session — new session id, a bound cookie, the draft's session instructions, device_bound`, async () => {
        const { app, events } = await make(backend)
        const b = await Browser.open(app, alg)
        await b.login(`alice-${alg}`)
        const before = b.jar.get('__Host-sid')
        const res = await b.register()
        assert.equal(res.statusCode, 200, res.body)
        const body = res.json()
        assert.match(body.session_identifier, /^[A-Za-z0-9_-]{22}$/)
        assert.equal(body.refresh_url, REFRESH)
        assert.equal(body.continue, true)
        assert.deepEqual(body.credentials, [{ type: 'cookie', name: BOUND, attributes: 'Path=/; Secure; HttpOnly; SameSite=Lax' }])
        assert.equal(body.scope.include_site, false)
        assert.notEqual(b.jar.get('__Host-sid'), before, 'the session moved to a new id')
        const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith(BOUND + '='))
        assert.match(setCookie ?? '', /Max-Age=60; .*HttpOnly; Secure; SameSite=Lax|Max-Age=60;.*Secure/)
        assert.equal(await b.user(), `alice-${alg}`)
        assert.deepEqual(events.filter((e) => e.type === 'device_bound').map((e) => e.userId), [`alice-${alg}`])
        const listed = await app.session.listUserSessions(`alice-${alg}`)
        assert.deepEqual(listed.map((s) => s.deviceBound), [true])
      })
    }

    test(`dbsc ${backend}: a bound session without its bound cookie, with a forged one, or with another session's is no session; writes to it create nothing`, async () => {
      const { app } = await make(backend)
      const a = await bound(app, 'alice')
      const b = await bound(app, 'bob')
      const sid = a.jar.get('__Host-sid') as string
      const noBound = await app.inject({ url: '/me', headers: { cookie: `__Host-sid=${sid}` } })
      assert.deepEqual(noBound.json(), { user: null, theme: null, isNew: true })
      const forged = `${(Date.now() + 3_600_000).toString(36)}.${'A'.repeat(43)}`
      assert.equal((await app.inject({ url: '/me', headers: { cookie: `__Host-sid=${sid}; ${BOUND}=${forged}` } })).json().user, null)
      assert.equal((await app.inject({ url: '/me', headers: { cookie: `__Host-sid=${sid}; ${BOUND}=${b.jar.get(BOUND) as string}` } })).json().user, null)
      const write = await app.inject({ method: 'POST', url: '/set', payload: { theme: 'x' }, headers: { cookie: `__Host-sid=${sid}` } })
      assert.equal(write.statusCode, 200)
      assert.equal(write.headers['set-cookie'], undefined, 'no new session replaces the held one')
      assert.equal(await a.user(), 'alice', 'with both cookies it still works')
      assert.equal((await a.request({ url: '/get/theme' })).json().value, null, 'and nothing was written to it')
    })

    // Fixed defect: with deviceBound switched off, a bound session was served on its session cookie alone (a copied cookie worked again).
    test(`dbsc ${backend}: with deviceBound switched off, a session bound earlier is no session, with or without its bound cookie; a fresh login works`, async () => {
      const clock = manualClock()
      const shared = backend === 'memory' ? { store: createMemoryStore({ clock: clock.now }) } : { redis: { url: redis.url }, keyPrefix: `dbsc-off${apps.length}:` }
      const on = await buildApp({ ...shared, clock: clock.now, deviceBound: { cookieMaxAge: MAX_AGE } })
      apps.push(on)
      const b = await bound(on, 'erin')
      assert.equal(await b.user(), 'erin')
      const off = await buildApp({ ...shared, clock: clock.now })
      apps.push(off)
      const sid = b.jar.get('__Host-sid') as string
      for (const cookie of [`__Host-sid=${sid}`, b.cookie]) {
        assert.deepEqual((await off.inject({ url: '/me', headers: { cookie } })).json(), { user: null, theme: null, isNew: true }, cookie === b.cookie ? 'with the bound cookie' : 'session cookie alone')
      }
      const again = await off.inject({ method: 'POST', url: '/login', payload: { user: 'erin' }, headers: { cookie: b.cookie } })
      const fresh = ([] as string[]).concat(again.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-sid='))?.split(';')[0] as string
      assert.equal((await off.inject({ url: '/me', headers: { cookie: fresh } })).json().user, 'erin')
    })

    test(`dbsc ${backend}: refresh — 403 with a challenge for the DBSC session id, then a proof by the bound key sets a new bound cookie`, async () => {
      const { app, clock } = await make(backend)
      const b = await bound(app)
      clock.advance(MAX_AGE)
      assert.equal(await b.user(), null, 'the bound cookie expired (server-side deadline)')
      const ask = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(b.dbscId as string) } })
      assert.equal(ask.statusCode, 403)
      assert.equal(ask.json().code, 'FST_SESSION_DEVICE_CHALLENGE')
      const challenge = parseChallenge(ask.headers['secure-session-challenge'])
      assert.equal(challenge?.id, b.dbscId)
      const again = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(b.dbscId as string) } })
      assert.equal(parseChallenge(again.headers['secure-session-challenge'])?.challenge, challenge?.challenge, 'the outstanding challenge is re-sent while fresh')
      const res = await b.answer(challenge?.challenge as string)
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json().session_identifier, b.dbscId)
      assert.equal(await b.user(), 'user-1')
    })

    test(`dbsc ${backend}: an attacker who copied both cookies loses the session when the bound cookie expires; the device keeps it`, async () => {
      const { app, clock, events } = await make(backend)
      const victim = await bound(app, 'victim')
      const thief = await victim.stolen()
      assert.equal(await thief.user(), 'victim', 'a copied jar works while the bound cookie lives')
      clock.advance(MAX_AGE - 1)
      assert.equal(await thief.user(), 'victim')
      clock.advance(1)
      assert.equal(await thief.user(), null, 'dead at the bound cookie\'s deadline, whatever the jar says')
      // The thief answers the challenge with the key it has: not the device's.
      const res = await thief.refresh()
      assert.equal(res.statusCode, 400)
      assert.equal(res.json().code, 'FST_SESSION_DEVICE_PROOF')
      assert.equal(res.headers['set-cookie'], undefined)
      assert.equal(await thief.user(), null)
      assert.ok(events.some((e) => e.type === 'device_bound_refresh_failed' && e.userId === 'victim' && e.code === 'FST_SESSION_DEVICE_PROOF'))
      // The device refreshes; the thief's old bound cookie stays dead.
      assert.equal((await victim.refresh()).statusCode, 200)
      assert.equal(await victim.user(), 'victim')
      assert.equal(await thief.user(), null)
      // A thief without any bound cookie and no DBSC id gets nothing either.
      const bare = await app.inject({ method: 'POST', url: REFRESH, headers: { cookie: `__Host-sid=${thief.jar.get('__Host-sid') as string}` } })
      assert.equal(bare.statusCode, 401)
    })

    test(`dbsc ${backend}: a replayed refresh proof is refused (its challenge is spent) and answered with a new challenge`, async () => {
      const { app, clock } = await make(backend)
      const b = await bound(app)
      clock.advance(MAX_AGE)
      assert.equal((await b.refresh()).statusCode, 200)
      const proof = b.sent.at(-1) as string
      clock.advance(MAX_AGE)
      const replay = await b.send(proof)
      assert.equal(replay.statusCode, 403)
      assert.equal(replay.json().code, 'FST_SESSION_DEVICE_CHALLENGE')
      assert.ok(parseChallenge(replay.headers['secure-session-challenge']) !== undefined)
      assert.equal(replay.headers['set-cookie'], undefined)
      assert.equal(await b.user(), null)
    })

    test(`dbsc ${backend}: a refresh proof over another session's challenge, or over a registration challenge, is refused`, async () => {
      const { app, clock } = await make(backend)
      const a = await bound(app, 'alice')
      const b = await bound(app, 'bob')
      clock.advance(MAX_AGE)
      const askB = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(b.dbscId as string) } })
      const bobs = parseChallenge(askB.headers['secure-session-challenge'])?.challenge as string
      const res = await a.answer(bobs)
      assert.equal(res.statusCode, 403, 'signed by the right key, over the wrong session\'s challenge')
      assert.equal(await a.user(), null)
      const c = await Browser.open(app)
      await c.login('carol')
      const registrationChallenge = c.registration?.challenge as string
      assert.equal((await c.register()).statusCode, 200)
      clock.advance(MAX_AGE)
      assert.equal((await c.answer(registrationChallenge)).statusCode, 403, 'a registration challenge is no refresh challenge')
      // Any attempt spends a challenge: bob's is gone, and bob is sent a new one, never the spent one.
      const spent = await b.answer(bobs)
      assert.equal(spent.statusCode, 403)
      assert.notEqual(parseChallenge(spent.headers['secure-session-challenge'])?.challenge, bobs)
      assert.equal((await b.refresh()).statusCode, 200)
    })

    test(`dbsc ${backend}: a replayed registration proof is refused — after a re-login, and when sent twice at once only one binds`, async () => {
      const { app } = await make(backend)
      const b = await Browser.open(app)
      await b.login()
      const proof = await registrationProof(b.key, b.registration?.challenge as string)
      const [x, y] = await Promise.all([b.register(proof), b.register(proof)])
      assert.deepEqual([x.statusCode, y.statusCode].filter((s) => s === 200).length, 1, `${x.statusCode} ${y.statusCode}`)
      await b.login() // same user: the binding is dropped, a new registration asked
      const res = await b.register(proof)
      assert.equal(res.statusCode, 403)
      assert.equal(res.json().code, 'FST_SESSION_DEVICE_CHALLENGE')
      assert.equal((await app.session.listUserSessions('user-1'))[0]?.deviceBound, false)
    })

    test(`dbsc ${backend}: registration needs a logged-in unbound session and a proof by the key it carries`, async () => {
      const { app } = await make(backend)
      const anon = await app.inject({ method: 'POST', url: REGISTER })
      assert.equal(anon.statusCode, 401)
      const b = await Browser.open(app)
      await b.login()
      const other = await deviceKey('ES256')
      const mixed = await other.sign({ alg: 'ES256', typ: 'dbsc+jwt', jwk: b.key.jwk }, { jti: b.registration?.challenge })
      assert.equal((await b.register(mixed)).statusCode, 400, 'signed by a key other than the one it names')
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dbsc+jwt', jwk: b.key.jwk })).toString('base64url')}.${Buffer.from(JSON.stringify({ jti: b.registration?.challenge })).toString('base64url')}.`
      assert.equal((await b.register(none)).statusCode, 400, 'alg none')
      assert.equal((await b.request({ method: 'POST', url: REGISTER, headers: { 'secure-session-response': 'unquoted' } })).statusCode, 400)
      assert.equal((await b.register()).statusCode, 200, 'refused attempts before the signature check spend no challenge')
      await b.login()
      const again = await b.register(await registrationProof(b.key, b.registration?.challenge as string))
      assert.equal(again.statusCode, 200, 'a re-login may bind again')
      const third = await b.request({ method: 'POST', url: REGISTER, headers: { 'secure-session-response': sfString(await registrationProof(b.key, 'x')) } })
      assert.equal(third.statusCode, 400, 'a bound session takes no second key')
    })

    test(`dbsc ${backend}: regenerate keeps the binding and expires the bound cookie (the device refreshes with its key); login drops it and asks again; logout, revokeSession and revokeUser end a bound session (refresh: 401)`, async () => {
      const { app } = await make(backend)
      const b = await bound(app, 'dave')
      b.registration = undefined
      await b.request({ method: 'POST', url: '/regenerate' })
      assert.equal((await app.session.listUserSessions('dave'))[0]?.deviceBound, true, 'still bound after regenerate')
      assert.equal(b.registration, undefined, 'no new registration is offered')
      assert.equal(b.jar.has(BOUND), false, 'the bound cookie of the old id is expired')
      assert.equal(await b.user(), null, 'no session without a bound cookie')
      assert.equal((await b.refresh()).statusCode, 200, 'the device refreshes with its key')
      assert.equal(await b.user(), 'dave')
      await b.login('dave')
      assert.equal((await app.session.listUserSessions('dave'))[0]?.deviceBound, false)
      assert.ok(b.registration !== undefined)
      b.jar.delete(BOUND)
      assert.equal(await b.user(), 'dave', 'unbound again: works without a bound cookie')
      assert.equal((await b.register()).statusCode, 200)
      const [info] = await app.session.listUserSessions('dave')
      assert.equal(info?.deviceBound, true)
      assert.equal(await app.session.revokeSession('dave', info?.ref as string), true)
      assert.equal(await b.user(), null)
      const res = await b.refresh()
      assert.equal(res.statusCode, 401, 'a 4xx other than 403 ends the browser\'s DBSC session')
      const c = await bound(app, 'erin')
      await app.session.revokeUser('erin')
      assert.equal((await c.refresh()).statusCode, 401)
      const d = await bound(app, 'fay')
      const before = await d.stolen()
      await d.request({ method: 'POST', url: '/logout' })
      assert.deepEqual([...d.jar.keys()], [], 'logout expires the bound cookie with the session cookie')
      before.key = d.key
      assert.equal((await before.refresh()).statusCode, 401, 'the logged-out session cannot be refreshed, even with its cookies and key')
    })

    test(`dbsc ${backend}: a refresh with another DBSC session id is refused (401) and reported`, async () => {
      const { app, events } = await make(backend)
      const b = await bound(app, 'gus')
      const res = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString('A'.repeat(22)) } })
      assert.equal(res.statusCode, 401)
      assert.ok(events.some((e) => e.type === 'device_bound_refresh_failed' && e.userId === 'gus'))
    })

    test(`dbsc ${backend}: Chromium's header forms — a bare Secure-Session-Response and Sec-Secure-Session-Id — register and refresh`, async () => {
      const { app, clock } = await make(backend)
      const b = await Browser.open(app)
      await b.login('bare')
      const proof = await registrationProof(b.key, b.registration?.challenge as string)
      const res = await b.request({ method: 'POST', url: REGISTER, headers: { 'secure-session-response': proof } })
      assert.equal(res.statusCode, 200, res.body)
      const id = res.json().session_identifier as string
      clock.advance(MAX_AGE)
      const ask = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': id } })
      assert.equal(ask.statusCode, 403)
      const challenge = parseChallenge(ask.headers['secure-session-challenge'])?.challenge as string
      const answer = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': id, 'secure-session-response': await refreshProof(b.key, challenge) } })
      assert.equal(answer.statusCode, 200, answer.body)
      assert.equal(await b.user(), 'bare')
    })

    test(`dbsc ${backend}: browsers without DBSC keep working as before`, async () => {
      const { app, clock } = await make(backend)
      const b = await Browser.open(app)
      await b.login('hal')
      clock.advance(MAX_AGE * 2)
      assert.equal(await b.user(), 'hal')
      assert.equal((await app.session.listUserSessions('hal'))[0]?.deviceBound, false)
    })

    test(`dbsc ${backend}: no event, log line or error carries a cookie, challenge, proof or key`, async () => {
      const { app, clock, events } = await make(backend)
      const b = await bound(app, 'ivy')
      clock.advance(MAX_AGE)
      const thief = await b.stolen()
      await thief.refresh()
      await b.refresh()
      const text = JSON.stringify(events)
      for (const secret of [...b.jar.values(), ...b.sent, b.key.jwk['x'] as string, idOf(`x=${b.jar.get('__Host-sid') as string}`)]) {
        assert.equal(text.includes(secret), false)
      }
      assert.deepEqual([...new Set(events.map((e) => e.type))].filter((t) => t.startsWith('device')).sort(), ['device_bound', 'device_bound_refresh_failed'])
    })
  })
}

describe('dbsc (redis store): store-level guarantees', () => {
  async function keys (): Promise<string[]> {
    const reply = await redis.command('KEYS', '*')
    return [...reply.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
  }

  test('dbsc redis: a cached read of a bound session sends no Redis command (INFO commandstats)', async () => {
    const { app } = await make('redis')
    const b = await bound(app, 'zero')
    await b.user() // the first read after the move: a miss
    const before = await redis.totalCalls()
    for (let i = 0; i < 100; i++) assert.equal(await b.user(), 'zero')
    assert.equal(await redis.totalCalls(), before, 'no command during 100 cached reads of a bound session')
  })

  test('dbsc redis: a key swapped in the record by a Redis writer makes it no session (the binding is sealed), and the writer\'s key cannot refresh', async () => {
    const { app, clock } = await make('redis')
    const b = await bound(app, 'mallory-target')
    const key = `dbsc${apps.length - 1}:` + storageHash(idOf(`x=${b.jar.get('__Host-sid') as string}`))
    const stored = await redis.command('HGET', key, 'm:b')
    const mallory = await deviceKey('ES256')
    const binding = JSON.parse(stored.split('\r\n')[1]?.replace(/^p:/, '') as string) as Record<string, unknown>
    const swapped = 'p:' + JSON.stringify({ ...binding, jwk: mallory.jwk })
    await redis.command('HSET', key, 'm:b', swapped)
    await eventually(async () => await b.user() === null, 2000, 'the seal no longer matches: no session, even with a live bound cookie')
    clock.advance(MAX_AGE)
    const ask = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(binding['id'] as string) } })
    assert.equal(ask.statusCode, 401)
    const proof = await refreshProof(mallory, 'anything')
    const res = await b.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(binding['id'] as string), 'secure-session-response': sfString(proof) } })
    assert.equal(res.statusCode, 401)
  })

  test('dbsc redis: with encryption the binding is stored encrypted, survives touches (resealed with the record) and a key rotation', async () => {
    const k1 = { id: 'k1', key: generateEncryptionKey() }
    const k2 = { id: 'k2', key: generateEncryptionKey() }
    const { app, clock } = await make('redis', { encryption: { keys: [k1], fields: ['secret'] } })
    const b = await bound(app, 'enc-user')
    const key = `dbsc${apps.length - 1}:` + storageHash(idOf(`x=${b.jar.get('__Host-sid') as string}`))
    const stored = (await redis.command('HGET', key, 'm:b')).split('\r\n')[1] as string
    assert.match(stored, /^~/, 'a ciphertext')
    assert.equal(stored.includes(b.key.jwk['x'] as string), false, 'the public key is not readable in Redis')
    for (let i = 0; i < 3; i++) {
      clock.advance(50_000) // past touchInterval: each read slides and reseals the record
      if (i === 1) assert.equal((await b.refresh()).statusCode, 200)
      assert.equal(await b.user(), 'enc-user')
    }
    // A second app with a new encryption key first still opens the binding (older keys decrypt).
    const { app: rotated } = await make('redis', { encryption: { keys: [k2, k1], fields: ['secret'] }, keyPrefix: `dbsc${apps.length - 1}:` })
    const onRotated = await Browser.open(rotated)
    for (const [k, v] of b.jar) onRotated.jar.set(k, v)
    assert.equal(await onRotated.user(), 'enc-user')
  })

  test('dbsc redis: challenges live under keyed names with a TTL and are deleted when used', async () => {
    const { app } = await make('redis', { keyPrefix: 'chal:' })
    const b = await Browser.open(app)
    await b.login()
    const pending = (await keys()).filter((k) => k.startsWith('chal:c:'))
    assert.equal(pending.length, 1)
    assert.equal(pending[0]?.includes(b.registration?.challenge as string), false)
    const ttl = Number((await redis.command('PTTL', pending[0] as string)).replace(/^:/, ''))
    assert.ok(ttl > 0 && ttl <= 120_000, `TTL ${ttl}`)
    assert.equal((await b.register()).statusCode, 200)
    assert.deepEqual((await keys()).filter((k) => k.startsWith('chal:c:')), [])
  })
})
