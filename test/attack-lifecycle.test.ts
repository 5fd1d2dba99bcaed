/**
 * An adversarial review of "Session lifecycle v2" against a real redis-server, with two app
 * instances where it matters. Tests marked `// Fixed defect:` failed on the reviewed code: each proves an
 * invariant of issue 8 broken. The others are attacks the code withstood; they stay as
 * regression tests.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createClient } from 'redis'
import { generateEncryptionKey, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { CREATE } from '../lib/store/scripts.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import { barrier, buildApp, captureLogs, eventually, gone, idOf, login, manualClock, refOf, SECRET, sessionCookie, works } from './helpers/app.ts'
import { startRedis } from './helpers/redis-server.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const TRIES = 40
const OLD_SECRET = SECRET
const NEW_SECRET = 'rotated-secret-0123456789-abcdefghijklmnop'

const fx = useRedis('atk')
const apps = fx.apps
const closers = fx.closers

let prefixes = 0
/** A key prefix of its own, so that writer attacks on one test's keys never touch another's. */
function freshPrefix (): string {
  return `atk${++prefixes}:`
}

let users = 0
function user (): string {
  return `attack-user-${++users}`
}

async function app (options: Partial<HardenedSessionOptions>, routes?: (app: FastifyInstance) => void, server = {}): Promise<FastifyInstance> {
  const made = await buildApp({ redis: { url: fx.redis.url }, ...options }, server, routes)
  apps.push(made)
  return made
}

async function pair (options: Partial<HardenedSessionOptions> = {}, routes?: (app: FastifyInstance) => void): Promise<[FastifyInstance, FastifyInstance]> {
  const keyPrefix = options.keyPrefix ?? freshPrefix()
  return [await app({ ...options, keyPrefix }, routes), await app({ ...options, keyPrefix }, routes)]
}

function hashOf (cookie: string): string {
  return createHash('sha256').update(idOf(cookie)).digest('base64url')
}

function randomId (): string {
  return randomBytes(32).toString('base64url')
}

/** A cookie for `id` signed with `secret` (what the plugin's signer produces). */
function signed (id: string, secret: string): string {
  return `__Host-sid=${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`
}

/** Field/value pairs of a hash, read raw over RESP2 (bulk strings here are ASCII or counted in bytes). */
async function hgetall (key: string): Promise<Map<string, string>> {
  const reply = await fx.redis.command('HGETALL', key)
  const out = new Map<string, string>()
  const values: string[] = []
  let pos = reply.indexOf('\r\n') + 2
  while (pos < reply.length) {
    if (reply[pos] !== '$') break
    const end = reply.indexOf('\r\n', pos)
    const len = Number(reply.slice(pos + 1, end))
    const bytes = Buffer.from(reply.slice(end + 2), 'utf8').subarray(0, len).toString('utf8')
    values.push(bytes)
    pos = end + 2 + bytes.length + 2
  }
  for (let i = 0; i + 1 < values.length; i += 2) out.set(values[i] as string, values[i + 1] as string)
  return out
}

/**
 * A real node-redis client (RESP3, the plugin's tracking cache) whose next CREATE script is held
 * before it is sent, so a test can act between a login's index step and its record step.
 */
async function holdingClient (): Promise<{ client: unknown, holdNextCreate: () => { reached: Promise<void>, release: () => void } }> {
  const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('sess:') })
  client.on('error', () => {})
  await client.connect()
  closers.push(() => client.close())
  let gate: ReturnType<typeof barrier> | undefined
  const proxy = new Proxy(client, {
    get (target, prop, receiver) {
      if (prop === 'sendCommand') {
        return async (...args: unknown[]) => {
          const cmd = args.find(Array.isArray) as string[] | undefined
          const isCreate = cmd !== undefined && ((cmd[0] === 'EVALSHA' && cmd[1] === CREATE.sha) || (cmd[0] === 'EVAL' && cmd[1] === CREATE.source))
          if (isCreate && gate !== undefined) {
            const g = gate
            gate = undefined
            await g.wait()
          }
          return (target.sendCommand as (...a: unknown[]) => Promise<unknown>)(...args)
        }
      }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    client: proxy,
    holdNextCreate: () => {
      const g = barrier()
      gate = g
      return { reached: g.reached, release: g.release }
    },
  }
}

/** Routes whose handler waits at a barrier the test pushes before sending the request. */
function gatedRoutes (gates: Array<ReturnType<typeof barrier>>) {
  const next = async (): Promise<void> => { await (gates.shift() as ReturnType<typeof barrier>).wait() }
  return (app: FastifyInstance): void => {
    app.post('/slow-logout', async (req) => { await next(); await req.session.logout(); return { ok: true } })
    app.post('/slow-regenerate', async (req) => { await next(); await req.session.regenerate(); return { ok: true } })
    app.post('/slow-relogin', async (req) => { await next(); await req.session.login(req.session.userId as string); return { ok: true } })
    app.get('/slow-read', async (req) => { await next(); return { theme: req.session.get('theme') ?? null } })
  }
}

// ---------------------------------------------------------------------------------------------
// Invariant 1: revocation is final
// ---------------------------------------------------------------------------------------------
describe('attack: revocation is final', () => {
  // Fixed defect: a logout whose request began before a regenerate elsewhere leaves the regenerated session alive
  test('logout: a session regenerated (on the other instance) while the logout request ran does not outlive the logout', async () => {
    const gates: Array<ReturnType<typeof barrier>> = []
    const [a, b] = await pair({}, gatedRoutes(gates))
    const u = user()
    const cookie = await login(a, u)
    const gate = barrier()
    gates.push(gate)
    const logout = a.inject({ method: 'POST', url: '/slow-logout', headers: { cookie } })
    await gate.reached
    const next = sessionCookie(await b.inject({ method: 'POST', url: '/regenerate', headers: { cookie } }))
    assert.ok(next, 'the regenerate succeeded')
    gate.release()
    assert.equal((await logout).statusCode, 200)
    // The logout has resolved: nothing of this session issued before it may work any more.
    await gone(b, next, 'the session regenerated before the logout resolved')
    assert.deepEqual(await a.session.listUserSessions(u), [])
  })

  // Fixed defect: a logout whose request began before a same-user re-login elsewhere leaves the re-logged-in session alive
  test('logout: a same-user re-login (on the other instance) while the logout request ran does not outlive the logout', async () => {
    const gates: Array<ReturnType<typeof barrier>> = []
    const [a, b] = await pair({}, gatedRoutes(gates))
    const u = user()
    const cookie = await login(a, u)
    const gate = barrier()
    gates.push(gate)
    const logout = a.inject({ method: 'POST', url: '/slow-logout', headers: { cookie } })
    await gate.reached
    const next = sessionCookie(await b.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: u } }))
    assert.ok(next)
    gate.release()
    assert.equal((await logout).statusCode, 200)
    await gone(b, next, 'the session re-logged-in before the logout resolved')
  })

  /**
   * A gated move (`/slow-regenerate`, `/slow-relogin`) on A, still in its handler when
   * `revokeAll` resolves on B; any cookie it issues must already be dead on B.
   */
  async function racingRevokeAll (route: string, what: string): Promise<{ res: LightMyRequestResponse, next: string | undefined }> {
    const gates: Array<ReturnType<typeof barrier>> = []
    const [a, b] = await pair({}, gatedRoutes(gates))
    const cookie = await login(a, user())
    const gate = barrier()
    gates.push(gate)
    const pending = a.inject({ method: 'POST', url: route, headers: { cookie } })
    await gate.reached
    await b.session.revokeAll()
    gate.release()
    const res = await pending
    const next = sessionCookie(res)
    if (next !== undefined) await gone(b, next, what)
    return { res, next }
  }

  // Fixed defect: regenerate() racing revokeAll answers 200 with a dead cookie instead of 409 FST_SESSION_ENDED
  test('revokeAll: a regenerate in a handler still running when revokeAll resolved fails with 409 FST_SESSION_ENDED and revives nothing', async () => {
    const { res, next } = await racingRevokeAll('/slow-regenerate', 'the regenerated id')
    assert.equal(res.statusCode, 409, 'the regenerate is reported as failed')
    assert.equal(res.json().code, 'FST_SESSION_ENDED')
    assert.equal(next, undefined, 'no cookie is issued')
  })

  // Fixed defect: a same-user re-login racing revokeAll answers 200 with a dead cookie instead of 409 FST_SESSION_ENDED
  test('revokeAll: a same-user re-login in a handler still running when revokeAll resolved fails with 409 FST_SESSION_ENDED', async () => {
    const { res } = await racingRevokeAll('/slow-relogin', 'the re-logged-in id')
    assert.equal(res.statusCode, 409)
    assert.equal(res.json().code, 'FST_SESSION_ENDED')
  })

  // Fixed defect: a login on another instance right after revokeAll resolved uses its cached (old) epoch while the invalidation is in flight: the new session answers 200 and is dead for good
  test('revokeAll: a login on the other instance after revokeAll resolved, before the invalidation reached it, issues a working session', async () => {
    const proxy = await startProxy(fx.redis.port)
    closers.push(async () => { proxy.resume(); await proxy.close() })
    const keyPrefix = freshPrefix()
    let picked: () => void = () => {}
    const a = await app({ keyPrefix })
    const b = await app({ keyPrefix, redis: { url: proxy.url } }, (app) => {
      app.post('/login-signal', async (req) => {
        const done = req.session.login(user()) // the epoch is read synchronously, before the first await
        picked()
        await done
        return { ok: true }
      })
    })
    for (let i = 0; i < 5; i++) {
      assert.equal(await works(b, await login(b, user())), true) // B holds the current epoch
      proxy.stall() // the invalidation to B is in flight (held), well under storeTimeout
      await a.session.revokeAll()
      const started = new Promise<void>((resolve) => { picked = resolve })
      const pending = b.inject({ method: 'POST', url: '/login-signal' })
      await started
      proxy.resume()
      const res = await pending
      assert.equal(res.statusCode, 200)
      const fresh = sessionCookie(res) as string
      assert.equal(await works(a, fresh), true, `try ${i}: a login made after revokeAll resolved issued a dead session`)
    }
  })

  test(`revokeSession: ${TRIES}× a same-user re-login racing revokeSession on the other instance fails or is dead, and revives nothing`, async () => {
    const [a, b] = await pair()
    for (let i = 0; i < TRIES; i++) {
      const u = user()
      const cookie = await login(a, u)
      const ref = await refOf(a, cookie)
      const [res, revoked] = await Promise.all([
        a.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: u } }),
        b.session.revokeSession(u, ref),
      ])
      assert.equal(revoked, true, `try ${i}`)
      await gone(b, cookie, `try ${i}: old id`)
      const next = sessionCookie(res)
      if (res.statusCode === 409) assert.equal(res.json().code, 'FST_SESSION_ENDED')
      if (next !== undefined) await gone(b, next, `try ${i}: re-login of a revoked lineage`)
      assert.deepEqual(await b.session.listUserSessions(u), [], `try ${i}: nothing listed`)
    }
  })

  test(`revokeOthers: ${TRIES}× a regenerate of another session racing revokeOthers leaves that lineage dead`, async () => {
    const [a, b] = await pair()
    for (let i = 0; i < TRIES; i++) {
      const u = user()
      const keep = await login(a, u)
      const other = await login(b, u)
      const [res, revoked] = await Promise.all([
        a.inject({ method: 'POST', url: '/regenerate', headers: { cookie: other } }),
        b.inject({ method: 'POST', url: '/revoke-others', headers: { cookie: keep } }),
      ])
      assert.deepEqual(revoked.json(), { revoked: 1 }, `try ${i}`)
      const next = sessionCookie(res)
      if (next !== undefined) await gone(b, next, `try ${i}: regenerated other`)
      await gone(b, other, `try ${i}: other`)
      assert.equal(await works(a, keep), true, `try ${i}: this session stays`)
    }
  })

  test(`revokeUser: ${TRIES}× a login as B on A's cookie racing revokeUser(A) gives B an empty session (keep aside) and kills A's`, async () => {
    const [a, b] = await pair()
    for (let i = 0; i < TRIES; i++) {
      const victim = user()
      const other = user()
      const cookieA = await login(a, victim, { mfa: true, theme: 'dark' })
      const [res] = await Promise.all([
        a.inject({ method: 'POST', url: '/login', headers: { cookie: cookieA }, payload: { user: other, keep: ['theme'] } }),
        b.session.revokeUser(victim),
      ])
      await gone(b, cookieA, `try ${i}: A's session`)
      const cookieB = sessionCookie(res)
      assert.ok(cookieB, `try ${i}: ${res.body}`)
      assert.deepEqual((await b.inject({ url: '/get/mfa', headers: { cookie: cookieB } })).json(), { value: null }, `try ${i}`)
      // 'theme' survives when the login saw A's session, and is absent when the revoke won the race.
      assert.ok(['dark', null].includes((await b.inject({ url: '/get/theme', headers: { cookie: cookieB } })).json().value), `try ${i}`)
      assert.equal((await b.inject({ url: '/ref', headers: { cookie: cookieB } })).json().user, other)
      assert.deepEqual(await b.session.listUserSessions(victim), [], `try ${i}: nothing of A's listed`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 2: no data across users
// ---------------------------------------------------------------------------------------------
describe('attack: no data across users', () => {
  test('login: keep with prototype keys carries only those keys, pollutes nothing, and data keys never reach meta', async () => {
    const a = await app({ keyPrefix: freshPrefix() }, (app) => {
      app.post('/odd-keys', async (req) => {
        req.session.set('__proto__', { polluted: true })
        req.session.set('constructor', 'c')
        req.session.set('m:u', 'p:admin')
        req.session.set('u:', 'x')
        req.session.set('\u00e9\u{1F600} key\nwith newline', 'unicode')
        req.session.set('secret', 'victim-only')
        return { ok: true }
      })
      app.post('/login-keep', async (req) => {
        await req.session.login('attack-keep-B', undefined, { keep: ['__proto__', 'constructor', 'toString', 'hasOwnProperty'] })
        return { ok: true }
      })
    })
    const cookieA = await login(a, 'attack-keep-A')
    const withData = await a.inject({ method: 'POST', url: '/odd-keys', headers: { cookie: cookieA } })
    assert.equal(withData.statusCode, 200)
    assert.equal((await a.inject({ url: '/ref', headers: { cookie: cookieA } })).json().user, 'attack-keep-A', "a data key 'm:u' is not the user")
    const res = await a.inject({ method: 'POST', url: '/login-keep', headers: { cookie: cookieA } })
    const cookieB = sessionCookie(res)
    assert.ok(cookieB)
    const get = async (key: string): Promise<unknown> => (await a.inject({ url: `/get/${encodeURIComponent(key)}`, headers: { cookie: cookieB } })).json().value
    assert.deepEqual(await get('__proto__'), { polluted: true })
    assert.equal(await get('constructor'), 'c')
    assert.equal(await get('secret'), null)
    assert.equal(await get('m:u'), null)
    assert.equal(await get('toString'), null)
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched')
    assert.equal((await a.inject({ url: '/ref', headers: { cookie: cookieB } })).json().user, 'attack-keep-B')
  })

  test('login: user ids with spaces, newlines, #, unicode and 1024 characters each get their own index; near-equal ids never share', async () => {
    const [a, b] = await pair()
    const ids = ['a b', 'a b ', 'a\nb', 'a#b', 'a#meta', '\u00e9\u{1F600}', 'x'.repeat(1024), 'x'.repeat(1023)]
    const cookies = []
    for (const id of ids) cookies.push(await login(a, id))
    for (const [i, id] of ids.entries()) {
      assert.equal((await b.inject({ url: '/ref', headers: { cookie: cookies[i] as string } })).json().user, id)
      assert.equal((await b.session.listUserSessions(id)).length, 1, JSON.stringify(id))
    }
    assert.equal(await b.session.revokeUser('a b'), 1)
    await gone(a, cookies[0] as string)
    for (const c of cookies.slice(1)) assert.equal(await works(a, c), true)
    const tooLong = await a.inject({ method: 'POST', url: '/login', payload: { user: 'x'.repeat(1025) } })
    assert.equal(tooLong.json().code, 'FST_SESSION_INVALID_ARGUMENT')
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 3: a Redis writer (any command, no secrets)
// ---------------------------------------------------------------------------------------------
describe('attack: a Redis writer', () => {
  const encryption = { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: '*' as const }

  // Fixed defect: one DEL of the epoch key (no saved copy needed) revives every session revokeAll ended
  test('writer: deleting (or resetting) the epoch key after revokeAll revives none of the revoked sessions', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const cookie = await login(a, user())
    await a.session.revokeAll()
    await gone(a, cookie, 'the session revokeAll ended')
    await fx.redis.command('DEL', keyPrefix + 'epoch') // no saved copy needed: deleting the key is all the writer does
    // Instance B (or A after a restart, or once its bounded memory of dead hashes forgot it).
    assert.equal(await works(b, cookie), false, 'a session ended by revokeAll works again after one DEL')
  })

  // Fixed defect: an epoch planted at 2^53 made revokeAll unable to move it; the epoch now carries a MAC, so a planted value is replaced.
  test('writer: an epoch planted with the largest counter does not disable revokeAll (a value that does not verify is replaced)', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const cookie = await login(a, user())
    await fx.redis.command('SET', keyPrefix + 'epoch', '999999999999999.' + 'A'.repeat(22) + '.' + 'B'.repeat(22))
    await eventually(async () => works(b, cookie), 1000, 'a planted epoch ends no session (the instances restore theirs)')
    const late = await login(b, user()) // issued after the plant
    await a.session.revokeAll()
    for (const c of [cookie, late]) {
      await gone(a, c, 'a session issued before revokeAll')
      await gone(b, c, 'a session issued before revokeAll')
    }
    const fresh = await login(a, user())
    await eventually(async () => works(b, fresh), 100, 'a session issued after revokeAll works')
  })

  // Fixed defect: revokeAll could be undone with what Redis still held after it: every surviving record carried the previous epoch in plaintext (m:g), and SET <prefix>epoch to it revived every revoked session.
  test('writer: putting back any value Redis holds after revokeAll (record fields, the old epoch of a saved record) revives nothing, on running or new instances', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const cookie = await login(a, user())
    const before = await hgetall(keyPrefix + hashOf(cookie))
    await a.session.revokeAll()
    await gone(b, cookie, 'a session issued before revokeAll')
    // Everything a writer can read after revokeAll, written back as the epoch.
    const candidates = [...before.values(), ...(await hgetall(keyPrefix + hashOf(cookie))).values()]
    for (const value of candidates) {
      await fx.redis.command('SET', keyPrefix + 'epoch', value)
      const c = await app({ keyPrefix }) // an instance started afterwards never saw the session dead
      assert.equal(await works(c, cookie), false, `a revoked session works on a new instance after SET epoch ${JSON.stringify(value.slice(0, 12))}…`)
      assert.equal(await works(a, cookie), false, 'and on a running one')
    }
  })

  test('writer: an epoch a running instance has seen is never replaced by an older one (a saved copy put back is raised again)', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const saved = await fx.redis.command('GET', keyPrefix + 'epoch')
    const old = /\$\d+\r\n([^\r]*)\r\n/.exec(saved)?.[1] as string
    const cookie = await login(a, user())
    await a.session.revokeAll()
    await gone(b, cookie, 'a session issued before revokeAll')
    await fx.redis.command('SET', keyPrefix + 'epoch', old) // the attacker's saved copy of the epoch before revokeAll
    await eventually(async () => /\$\d+\r\n([^\r]*)\r\n/.exec(await fx.redis.command('GET', keyPrefix + 'epoch'))?.[1] !== old, 1000, 'the running instances raise the epoch again')
    assert.equal(await works(a, cookie), false)
    assert.equal(await works(b, cookie), false)
    const c = await app({ keyPrefix })
    assert.equal(await works(c, cookie), false, 'a new instance started after the repair sees the revoked session dead')
  })

  // Fixed defect: listUserSessions does not check that a listed record belongs to the index: a planted entry makes the app decrypt another user's user agent and IP for the attacker
  test("writer: a victim's index entry copied into the attacker's index does not list (or decrypt) the victim's session for the attacker", async () => {
    const keyPrefix = freshPrefix()
    const a = await app({ keyPrefix, encryption, sessionInfo: { userAgent: true, ip: true } })
    const victim = (await a.inject({ method: 'POST', url: '/login', headers: { 'user-agent': 'VictimBrowser/7.7 (secret device)' }, payload: { user: 'attack-victim' } }))
    const victimCookie = sessionCookie(victim) as string
    const attackerCookie = await login(a, 'attack-attacker')
    const victimRecord = await hgetall(keyPrefix + hashOf(victimCookie))
    const attackerRecord = await hgetall(keyPrefix + hashOf(attackerCookie))
    assert.ok(![...victimRecord.values()].some((v) => v.includes('VictimBrowser')), 'the user agent is encrypted at rest')
    const victimIndex = keyPrefix + 'u:' + victimRecord.get('m:k')
    const attackerIndex = keyPrefix + 'u:' + attackerRecord.get('m:k')
    const victimRef = victimRecord.get('m:r') as string
    const entry = (await hgetall(victimIndex)).get(victimRef) as string
    await fx.redis.command('HSET', attackerIndex, victimRef, entry)
    const listed = await a.session.listUserSessions('attack-attacker')
    assert.ok(!listed.some((s) => s.userAgent?.includes('VictimBrowser') === true), "the victim's user agent is shown to the attacker")
    assert.deepEqual(listed.map((s) => s.ref), [await refOf(a, attackerCookie)])
  })

  test('writer: after revokeUser, putting back the saved index entry alone revives nothing (the record is gone)', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const u = user()
    const cookie = await login(a, u)
    const record = await hgetall(keyPrefix + hashOf(cookie))
    const index = keyPrefix + 'u:' + record.get('m:k')
    const saved = await hgetall(index)
    assert.equal(await b.session.revokeUser(u), 1)
    await gone(a, cookie)
    for (const [ref, value] of saved) await fx.redis.command('HSET', index, ref, value)
    assert.equal(await works(b, cookie), false)
    assert.equal(await works(a, cookie), false)
  })

  test('writer: after logout, putting back the saved record alone revives nothing (the index entry is gone)', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const cookie = await login(a, user())
    const key = keyPrefix + hashOf(cookie)
    const saved = await hgetall(key)
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    for (const [field, value] of saved) await fx.redis.command('HSET', key, field, value)
    assert.equal(await works(b, cookie), false)
  })

  test('writer: huge or malformed meta values and a wrong key type give no session and no 500', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    for (const [field, value] of [['m:a', '1e400'], ['m:i', '9'.repeat(400)], ['m:t', 'NaN'], ['m:g', 'x'.repeat(10_000)], ['m:s', '']]) {
      const cookie = await login(a, user())
      await fx.redis.command('HSET', keyPrefix + hashOf(cookie), field as string, value as string)
      await gone(b, cookie, `after ${field}`)
      assert.equal((await b.inject({ url: '/me', headers: { cookie } })).statusCode, 200, 'no session, no error')
    }
    const cookie = await login(a, user())
    await fx.redis.command('DEL', keyPrefix + hashOf(cookie))
    await fx.redis.command('SET', keyPrefix + hashOf(cookie), 'a string now')
    const res = await b.inject({ url: '/private', headers: { cookie } })
    assert.notEqual(res.statusCode, 200)
    assert.notEqual(res.statusCode, 500)
  })

  test('writer: swapping two users\' index entries makes neither session anyone else\'s', async () => {
    const keyPrefix = freshPrefix()
    const [a, b] = await pair({ keyPrefix })
    const one = await login(a, 'attack-swap-1')
    const two = await login(a, 'attack-swap-2')
    const r1 = await hgetall(keyPrefix + hashOf(one))
    const r2 = await hgetall(keyPrefix + hashOf(two))
    const i1 = keyPrefix + 'u:' + r1.get('m:k')
    const i2 = keyPrefix + 'u:' + r2.get('m:k')
    const e1 = (await hgetall(i1)).get(r1.get('m:r') as string) as string
    const e2 = (await hgetall(i2)).get(r2.get('m:r') as string) as string
    await fx.redis.command('DEL', i1, i2)
    await fx.redis.command('HSET', i1, r2.get('m:r') as string, e2)
    await fx.redis.command('HSET', i2, r1.get('m:r') as string, e1)
    for (const c of [one, two]) {
      const who = (await b.inject({ url: '/ref', headers: { cookie: c } })).json().user
      assert.equal(who, null, 'a session whose entry moved to another index is no session')
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 5: maxSessionsPerUser
// ---------------------------------------------------------------------------------------------
describe('attack: maxSessionsPerUser', () => {
  // Fixed defect: the cap is enforced per index key, and secret rotation gives a user a second index: two sessions under a cap of 1
  test('maxSessionsPerUser: during a secret rotation a user still has at most the cap of working sessions', async () => {
    const keyPrefix = freshPrefix()
    const before = await app({ keyPrefix, maxSessionsPerUser: 1, secrets: [OLD_SECRET] })
    const rotated = await app({ keyPrefix, maxSessionsPerUser: 1, secrets: [NEW_SECRET, OLD_SECRET] })
    const u = user()
    const first = await login(before, u)
    const second = await login(rotated, u)
    const working = [await works(rotated, first), await works(rotated, second)].filter(Boolean).length
    assert.equal((await rotated.session.listUserSessions(u)).length, working, 'every working session is listed')
    assert.equal(working, 1, `${working} working sessions under maxSessionsPerUser 1`)
  })

  test(`maxSessionsPerUser: ${TRIES}× parallel re-logins and new logins on two instances never exceed the cap, and a re-login revokes nobody`, async () => {
    const [a, b] = await pair({ maxSessionsPerUser: 2 })
    for (let i = 0; i < TRIES; i++) {
      const u = user()
      const phone = await login(a, u)
      const laptop = await login(b, u)
      // Two step-up re-logins in parallel: each continues its own lineage and evicts nobody.
      const [p2, l2] = await Promise.all([
        a.inject({ method: 'POST', url: '/login', headers: { cookie: phone }, payload: { user: u } }),
        b.inject({ method: 'POST', url: '/login', headers: { cookie: laptop }, payload: { user: u } }),
      ])
      const renewed = [sessionCookie(p2), sessionCookie(l2)]
      for (const c of renewed) assert.ok(c !== undefined && await works(b, c), `try ${i}: a re-login keeps its place`)
      const extra = await Promise.all([login(a, u), login(b, u)])
      const all = [...renewed as string[], ...extra]
      let live = 0
      for (const c of all) if (await works(a, c)) live++
      assert.ok(live <= 2, `try ${i}: ${live} live sessions`)
      assert.equal((await b.session.listUserSessions(u)).length, live, `try ${i}: all listed`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 6: a pre-login request finishing after the login
// ---------------------------------------------------------------------------------------------
describe('attack: pre-login requests and response headers', () => {
  // Fixed defect: a request that arrived with a cookie signed by an older secret re-issues that (now dead) id after a concurrent login, overwriting the new cookie
  test('rotation: a pre-login request carrying an old-secret cookie and finishing after the login sends no cookie', async () => {
    const gates: Array<ReturnType<typeof barrier>> = []
    const keyPrefix = freshPrefix()
    const old = await app({ keyPrefix, secrets: [OLD_SECRET] })
    const rotated = await app({ keyPrefix, secrets: [NEW_SECRET, OLD_SECRET] }, gatedRoutes(gates))
    const anon = sessionCookie(await old.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })) as string
    assert.equal(anon, signed(idOf(anon), OLD_SECRET))
    // One request under the new secret reseals the record (and re-signs the cookie in its response).
    const resigned = sessionCookie(await rotated.inject({ url: '/me', headers: { cookie: anon } }))
    assert.equal(resigned, signed(idOf(anon), NEW_SECRET))
    // Another tab still sends the old-secret cookie; its request is slow.
    const gate = barrier()
    gates.push(gate)
    const slow = rotated.inject({ url: '/slow-read', headers: { cookie: anon } })
    await gate.reached
    const loggedIn = sessionCookie(await rotated.inject({ method: 'POST', url: '/login', headers: { cookie: resigned as string }, payload: { user: user() } }))
    assert.ok(loggedIn)
    gate.release()
    const res = await slow
    assert.equal(res.statusCode, 200)
    assert.equal(await works(rotated, loggedIn), true)
    assert.equal(res.headers['set-cookie'], undefined, `the late response overwrites the new login cookie with the dead id (${String(res.headers['set-cookie']).slice(0, 20)}…)`)
  })

  test(`pre-login: ${TRIES}× a write racing a login on the other instance is 200 or 409 without a cookie; the new cookie is never cleared and keeps the anonymous data`, async () => {
    const [a, b] = await pair()
    for (let i = 0; i < TRIES; i++) {
      const anon = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { theme: 'light' } })) as string
      const [write, loginRes] = await Promise.all([
        a.inject({ method: 'POST', url: '/set', headers: { cookie: anon }, payload: { late: i } }),
        b.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: user() } }),
      ])
      const loggedIn = sessionCookie(loginRes) as string
      assert.ok(loggedIn, `try ${i}`)
      if (write.statusCode === 409) {
        assert.equal(write.json().code, 'FST_SESSION_ENDED')
        assert.equal(write.headers['set-cookie'], undefined, `try ${i}: a failed write sends no cookie`)
      } else {
        assert.equal(write.statusCode, 200, `try ${i}: ${write.body}`)
        const set = write.headers['set-cookie']
        assert.ok(set === undefined || !String(set).includes('Max-Age=0'), `try ${i}: never clears`)
      }
      assert.equal(await works(a, loggedIn), true, `try ${i}: the new session works`)
      assert.deepEqual((await a.inject({ url: '/get/theme', headers: { cookie: loggedIn } })).json(), { value: 'light' }, `try ${i}: anonymous data kept`)
    }
  })

  // Fixed defect: login copies the data it read when its request began, then deletes the old id: a write acknowledged (200) in between is lost
  test('login: data written to the anonymous session (200) after the login request began but before login() ran is kept', async () => {
    const gates: Array<ReturnType<typeof barrier>> = []
    const [a, b] = await pair({}, (app) => {
      app.post('/slow-login', async (req) => {
        await (gates.shift() as ReturnType<typeof barrier>).wait()
        await req.session.login('attack-slow-login')
        return { ok: true }
      })
    })
    const anon = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { theme: 'light' } })) as string
    const gate = barrier()
    gates.push(gate)
    const loginRes = b.inject({ method: 'POST', url: '/slow-login', headers: { cookie: anon } })
    await gate.reached
    const write = await a.inject({ method: 'POST', url: '/set', headers: { cookie: anon }, payload: { cart: ['book'] } })
    assert.equal(write.statusCode, 200, 'the write was acknowledged')
    gate.release()
    const loggedIn = sessionCookie(await loginRes) as string
    assert.ok(loggedIn)
    assert.deepEqual((await a.inject({ url: '/get/cart', headers: { cookie: loggedIn } })).json(), { value: ['book'] }, 'an acknowledged write was lost by the login')
  })

  // Fixed defect: regenerate copies the data it read when its request began, then deletes the old id: a write acknowledged (200) in between is lost
  test('regenerate: data written (200) after the regenerate request began but before regenerate() ran is kept', async () => {
    const gates: Array<ReturnType<typeof barrier>> = []
    const [a, b] = await pair({}, gatedRoutes(gates))
    const cookie = await login(a, user())
    const gate = barrier()
    gates.push(gate)
    const regen = b.inject({ method: 'POST', url: '/slow-regenerate', headers: { cookie } })
    await gate.reached
    const write = await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { cart: ['book'] } })
    assert.equal(write.statusCode, 200, 'the write was acknowledged')
    gate.release()
    const next = sessionCookie(await regen) as string
    assert.ok(next)
    assert.deepEqual((await a.inject({ url: '/get/cart', headers: { cookie: next } })).json(), { value: ['book'] }, 'an acknowledged write was lost by the regenerate')
  })

  test('clearSiteData: logout + login, logout + set, and "*" never send a directive that wipes the new cookie', async () => {
    const a = await app({ keyPrefix: freshPrefix(), clearSiteData: '"cookies", "storage", "*"' }, (app) => {
      app.post('/switch', async (req) => { await req.session.logout(); await req.session.login('attack-switched'); return { ok: true } })
      app.post('/logout-set', async (req) => { await req.session.logout(); req.session.set('x', 1); return { ok: true } })
      app.post('/logout-regenerate-login', async (req) => { await req.session.logout(); await req.session.regenerate(); await req.session.login('attack-switched-2'); return { ok: true } })
    })
    for (const url of ['/switch', '/logout-set', '/logout-regenerate-login']) {
      const cookie = await login(a, user())
      const res = await a.inject({ method: 'POST', url, headers: { cookie } })
      assert.ok(sessionCookie(res), url)
      const csd = String(res.headers['clear-site-data'] ?? '')
      assert.ok(!csd.includes('cookies') && !csd.includes('*'), `${url}: ${csd}`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 7: cache coherence, and a session just issued works everywhere at once
// ---------------------------------------------------------------------------------------------
describe('attack: cache coherence', () => {
  // Fixed defect: listUserSessions prunes an index entry whose record is not written yet (login admits before it creates): the login answers 200 with a dead cookie
  test('listUserSessions: a listing that runs between a login\'s index step and its record step does not kill the session being issued', async () => {
    const keyPrefix = freshPrefix()
    const held = await holdingClient()
    const a = await app({ keyPrefix, redis: held.client as never })
    const b = await app({ keyPrefix })
    for (let i = 0; i < 5; i++) {
      const u = user()
      const hold = held.holdNextCreate()
      const pending = a.inject({ method: 'POST', url: '/login', payload: { user: u } })
      await hold.reached // the lineage is in the index; the record is about to be written
      await b.session.listUserSessions(u) // e.g. an admin page or the user's "devices" page on another instance
      hold.release()
      const res = await pending
      assert.equal(res.statusCode, 200)
      const cookie = sessionCookie(res) as string
      assert.equal(await works(b, cookie), true, `try ${i}: a login answered 200 issued a dead session`)
    }
  })

  // Fixed defect: the same pruning logs the user out when the listing runs between a regenerate's index step and its record step
  test('listUserSessions: a listing that runs during a regenerate does not end the regenerated session', async () => {
    const keyPrefix = freshPrefix()
    const held = await holdingClient()
    const a = await app({ keyPrefix, redis: held.client as never })
    const b = await app({ keyPrefix })
    const u = user()
    const cookie = await login(a, u)
    const hold = held.holdNextCreate()
    const pending = a.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
    await hold.reached
    await b.session.listUserSessions(u)
    hold.release()
    const res = await pending
    assert.equal(res.statusCode, 200)
    const next = sessionCookie(res) as string
    assert.equal(await works(b, next), true, 'a regenerate answered 200 issued a dead session')
  })

  // Fixed defect: NOLOOP default-mode tracking loses invalidations silently when Redis evicts tracking-table entries during this client's own command (tracking-table-max-keys, 1e6 by default): a revoked session keeps being served
  test(`tracking: ${TRIES}× with Redis evicting tracking entries (tracking-table-max-keys reached), a revokeUser elsewhere is still seen within 100 ms`, async () => {
    // A small table stands in for a busy deployment with more than a million tracked keys.
    const small = await startRedis(['--tracking-table-max-keys', '20'])
    closers.push(() => small.stop())
    const keyPrefix = freshPrefix()
    const a = await app({ keyPrefix, redis: { url: small.url } })
    const b = await app({ keyPrefix, redis: { url: small.url } })
    let stale = 0
    let forever = 0
    for (let i = 0; i < TRIES; i++) {
      const u = user()
      const cookie = await login(a, u)
      assert.equal(await works(b, cookie), true) // cached on B: record, epoch, index entry
      // Meanwhile B serves first visits of other clients (each one reads a key on B's connection).
      await Promise.all(Array.from({ length: 50 }, () => b.inject({ url: '/me', headers: { cookie: signed(randomId(), SECRET) } })))
      assert.equal(await a.session.revokeUser(u), 1)
      try {
        await gone(b, cookie, `try ${i}`)
      } catch {
        stale++
        try {
          await gone(b, cookie, `try ${i}`)
        } catch {
          forever++
        }
      }
    }
    assert.equal(stale, 0, `${stale} of ${TRIES} revoked sessions were still served by B after 100 ms (${forever} still after 200 ms)`)
  })

  test(`coherence: ${TRIES}× a value written on A is read on B within 100 ms, and a session issued on A works on B at once`, async () => {
    const [a, b] = await pair()
    const u = user()
    const cookie = await login(a, u)
    assert.equal(await works(b, cookie), true)
    for (let i = 0; i < TRIES; i++) {
      await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theme: `t${i}` } })
      await eventually(async () => (await b.inject({ url: '/get/theme', headers: { cookie } })).json().value === `t${i}`, 100, `try ${i}: B reads the new value`)
      // B holds this user's index entries; a new lineage and a moved lineage work on B at once.
      const another = await login(a, u)
      assert.equal(await works(b, another), true, `try ${i}: a new login works on B at once`)
      const moved = sessionCookie(await a.inject({ method: 'POST', url: '/regenerate', headers: { cookie: another } })) as string
      assert.equal(await works(b, moved), true, `try ${i}: a regenerated id works on B at once`)
    }
  })

  test('coherence: FLUSHALL while sessions are cached on both instances ends them everywhere within 100 ms; new logins work', async () => {
    const other = await startRedis()
    closers.push(() => other.stop())
    const a = await app({ redis: { url: other.url } })
    const b = await app({ redis: { url: other.url } })
    const cookies = [await login(a, user()), await login(b, user())]
    for (const c of cookies) { assert.equal(await works(a, c), true); assert.equal(await works(b, c), true) }
    await other.command('FLUSHALL')
    for (const c of cookies) { await gone(a, c, 'after FLUSHALL'); await gone(b, c, 'after FLUSHALL') }
    const fresh = await login(a, user())
    assert.equal(await works(b, fresh), true)
  })

  test('coherence: a Redis restart with sessions cached serves none of them afterwards (no 500s) and recovers by itself', async () => {
    const other = await startRedis()
    closers.push(() => other.stop())
    const a = await app({ redis: { url: other.url }, storeTimeout: 300 })
    const cookie = await login(a, user())
    assert.equal(await works(a, cookie), true)
    await other.kill()
    // Served from the cache only until the client notices the connection is gone.
    await eventually(async () => [401, 503].includes((await a.inject({ url: '/private', headers: { cookie } })).statusCode), 1000, 'not served once the connection is lost')
    await other.restart()
    await eventually(async () => (await a.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 5000, 'the lost session reads as none once Redis is back')
    const fresh = await login(a, user())
    assert.equal(await works(a, fresh), true)
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 4: a stalled Redis link
// ---------------------------------------------------------------------------------------------
describe('attack: a stalled link', () => {
  // Fixed defect: the idle probe runs every storeTimeout and needs a tick at least storeTimeout after the probe was sent; with timer jitter that is the tick after, so a stall is noticed after up to 3× storeTimeout
  test('stall: an idle instance stops serving a session revoked elsewhere within 1.6× storeTimeout in the median of 20 tries, and in 19 of 20 within 3×', async () => {
    const STORE_TIMEOUT = 200
    const proxy = await startProxy(fx.redis.port)
    closers.push(async () => { proxy.resume(); await proxy.close() })
    const keyPrefix = freshPrefix()
    const a = await app({ keyPrefix, storeTimeout: STORE_TIMEOUT })
    const b = await app({ keyPrefix, storeTimeout: STORE_TIMEOUT, redis: { url: proxy.url } })
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      const u = user()
      const cookie = await login(a, u)
      // B serves the session from its cache (it caches again only once its link counts as healthy).
      await eventually(async () => {
        const hits = b.session.stats().cacheHits
        return await works(b, cookie) && b.session.stats().cacheHits > hits
      }, 2000, `try ${i}: B serves the session from its cache`)
      proxy.stall()
      const stalledAt = performance.now()
      try {
        await a.session.revokeUser(u)
        // The first request B no longer serves from its cache marks the moment it noticed (that
        // request then waits for its own store call to time out).
        for (;;) {
          const sent = performance.now()
          const r = await b.inject({ url: '/private', headers: { cookie } })
          if (r.statusCode !== 200) {
            times.push(Math.round(sent - stalledAt))
            break
          }
          assert.ok(sent - stalledAt < 3000, `try ${i}: B still serves after 3 s`)
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
      } finally {
        proxy.resume()
      }
      await eventually(async () => (await b.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 3000, `try ${i}: B recovers`)
    }
    // Probes every storeTimeout / 2, each with its own deadline: noticed within 1.5 × storeTimeout
    // by design. A loose bound on a shared machine: the median, and a cap on the second-slowest
    // try for hangs (one late timer on a loaded machine is not a defect; two would be suspect).
    const sorted = [...times].sort((x, y) => x - y)
    const median = sorted[Math.floor(sorted.length / 2)] as number
    assert.ok(median <= 1.6 * STORE_TIMEOUT && (sorted.at(-2) as number) <= 3 * STORE_TIMEOUT, `noticed after ${times.join(', ')} ms (storeTimeout ${STORE_TIMEOUT})`)
  })
})

// ---------------------------------------------------------------------------------------------
// Invariant 8: resource bounds, and nothing identifying in logs or events
// ---------------------------------------------------------------------------------------------
describe('attack: resource bounds and logs', () => {
  // Fixed defect: maxSessionBytes is checked against this request's view only: parallel writes each pass and the stored session grows past the bound
  test('maxSessionBytes: parallel writes of one session cannot together store more than maxSessionBytes', async () => {
    const keyPrefix = freshPrefix()
    const a = await app({ keyPrefix, maxSessionBytes: 4096 })
    const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { seed: 1 } })) as string
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { [`k${i}`]: 'x'.repeat(1500) } })))
    const accepted = results.filter((r) => r.statusCode === 200).length
    let bytes = 0
    for (const [field, value] of await hgetall(keyPrefix + hashOf(cookie))) if (field.startsWith('d:')) bytes += Buffer.byteLength(field) + Buffer.byteLength(value)
    assert.ok(bytes <= 4096, `${accepted} of 10 writes accepted; the stored session holds ${bytes} bytes of data under maxSessionBytes 4096`)
  })

  test('maxSessionBytes: counts UTF-8 bytes (3- and 4-byte characters), in values and in keys', async () => {
    const a = await app({ keyPrefix: freshPrefix(), maxSessionBytes: 4096 })
    for (const payload of [{ v: '\u20ac'.repeat(1400) }, { v: '\u{1F600}'.repeat(1000) }, { ['\u20ac'.repeat(1400)]: 1 }]) {
      const res = await a.inject({ method: 'POST', url: '/set', payload })
      assert.equal(res.json().code, 'FST_SESSION_TOO_LARGE', JSON.stringify(payload).slice(0, 20))
      assert.equal(sessionCookie(res), undefined)
    }
    assert.equal((await a.inject({ method: 'POST', url: '/set', payload: { v: 'x'.repeat(1400) } })).statusCode, 200)
  })

  // Fixed defect: index entries cached per user are counted as 256 bytes whatever their number: the local cache holds far more than cacheBytes
  test('cache: the local cache stays within cacheBytes however many index entries of one user it holds', async () => {
    const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('sess:') })
    await client.connect()
    closers.push(() => client.close())
    const CACHE_BYTES = 64 * 1024
    const store = new RedisStore(client as never, { cacheSize: 10_000, cacheBytes: CACHE_BYTES, storeTimeout: 1000, probeInterval: 1000 })
    closers.push(() => store.close())
    const index = freshPrefix() + 'u:many'
    const refs: string[] = []
    const args = ['HSET', index]
    for (let i = 0; i < 3000; i++) {
      const ref = randomBytes(9).toString('base64url')
      refs.push(ref)
      args.push(ref, `${randomBytes(32).toString('base64url')} ${Date.now() + 60_000} ${Date.now()}`)
    }
    await fx.redis.command(...args)
    for (const ref of refs) await store.getMember(index, ref)
    const held = refs.filter((ref) => store.peekMember(index, ref) !== undefined).length
    // Each held entry keeps at least its ref and storage hash as UTF-16 strings (2 × 55 bytes).
    assert.ok(held * 110 <= CACHE_BYTES, `${held} index entries (≥ ${held * 110} bytes of strings alone) held under cacheBytes ${CACHE_BYTES}`)
  })

  test('cookie: at most 3 candidates are verified; a valid cookie behind 3 forged ones is not even tried, and 10 000 forged ones cost no store access', async () => {
    // A Redis of its own: the shared one also serves other tests' apps, whose background work
    // (a pruner's second look, say) would be counted here.
    const own = await startRedis()
    closers.push(() => own.stop())
    const keyPrefix = freshPrefix()
    const events: SessionEvent[] = []
    const a = await app({ keyPrefix, redis: { url: own.url }, onEvent: (e) => { events.push(e) } })
    const cookie = await login(a, user())
    const forged = (n: number): string => Array.from({ length: n }, () => signed(randomId(), 'not-the-secret-0123456789-abcdefghijklmn')).join('; ')
    assert.equal((await a.inject({ url: '/private', headers: { cookie: `${forged(2)}; ${cookie}` } })).statusCode, 200)
    assert.equal((await a.inject({ url: '/private', headers: { cookie: `${forged(3)}; ${cookie}` } })).statusCode, 401)
    const before = await own.totalCalls()
    events.length = 0
    const res = await a.inject({ url: '/me', headers: { cookie: forged(10_000) } })
    assert.equal(res.statusCode, 200)
    assert.equal(await own.totalCalls(), before, 'no store access for forged cookies')
    assert.deepEqual(events.map((e) => e.type), ['invalid_cookie'])
  })

  test('logs and events: no session id, cookie, storage hash, user agent or IP, through login, writes, rotation, tampering, revocations and outages', async () => {
    const keyPrefix = freshPrefix()
    const { lines, logger } = captureLogs('trace')
    const events: SessionEvent[] = []
    const encryption = { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: '*' as const }
    const a = await app({ keyPrefix, encryption, sessionInfo: { userAgent: true, ip: true }, onEvent: (e) => { events.push(e) }, storeTimeout: 200 }, undefined, { logger, disableRequestLogging: true })
    const UA = 'Marker-Agent/4.2'
    const res = await a.inject({ method: 'POST', url: '/login', headers: { 'user-agent': UA }, remoteAddress: '203.0.113.77', payload: { user: 'attack-log-user', data: { note: 'n' } } })
    const cookie = sessionCookie(res) as string
    const secrets: string[] = [idOf(cookie), cookie.split('=')[1] as string, hashOf(cookie), UA, '203.0.113.77']
    await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theme: 'x' } })
    const next = sessionCookie(await a.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })) as string
    secrets.push(idOf(next), hashOf(next))
    await a.inject({ url: '/me', headers: { cookie: `${cookie}; ${signed(randomId(), 'nope-0123456789-0123456789-0123456789')}` } })
    await fx.redis.command('HSET', keyPrefix + hashOf(next), 'd:theme', 'garbage') // unreadable ciphertext
    await eventually(async () => (await a.inject({ url: '/get/theme', headers: { cookie: next } })).json().value === null, 100, 'the tampered field reads as absent')
    const other = await login(a, 'attack-log-user')
    secrets.push(idOf(other), hashOf(other))
    await fx.redis.command('HSET', keyPrefix + hashOf(other), 'm:i', String(Date.now() + 1e9)) // invalid_record
    await eventually(async () => (await a.inject({ url: '/me', headers: { cookie: other } })).json().user === null, 100, 'the tampered record is no session')
    await a.session.listUserSessions('attack-log-user')
    await a.session.revokeUser('attack-log-user')
    await a.session.revokeAll()
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie: next } })
    const text = JSON.stringify(lines) + JSON.stringify(events)
    for (const s of secrets) assert.ok(!text.includes(s), `found ${s.slice(0, 8)}… in logs or events`)
    assert.ok(events.some((e) => e.type === 'invalid_record') && events.some((e) => e.type === 'decrypt_error'), 'the paths ran')
  })
})

describe('attack: rotation of secrets and encryption keys together', () => {
  test('rotation: secrets [S1]→[S2,S1]→[S2] with keys [k1]→[k2,k1]→[k2]: one write in between carries user, user agent and data over', async () => {
    const keyPrefix = freshPrefix()
    const k1 = { id: 'k1', key: generateEncryptionKey() }
    const k2 = { id: 'k2', key: generateEncryptionKey() }
    const common = { keyPrefix, sessionInfo: { userAgent: true } }
    const v1 = await app({ ...common, secrets: [OLD_SECRET], encryption: { keys: [k1], fields: '*' } })
    const v2 = await app({ ...common, secrets: [NEW_SECRET, OLD_SECRET], encryption: { keys: [k2, k1], fields: '*' } })
    const v3 = await app({ ...common, secrets: [NEW_SECRET], encryption: { keys: [k2], fields: '*' } })
    const u = user()
    const res = await v1.inject({ method: 'POST', url: '/login', headers: { 'user-agent': 'Rotating/1' }, payload: { user: u, data: { theme: 'dark', cart: ['a'] } } })
    const cookie = sessionCookie(res) as string
    const resigned = sessionCookie(await v2.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { touched: true } })) as string
    assert.equal(resigned, signed(idOf(cookie), NEW_SECRET), 're-signed under the new secret')
    assert.equal(await works(v3, cookie), false, 'the old-secret cookie is dead once S1 is gone')
    assert.equal((await v3.inject({ url: '/ref', headers: { cookie: resigned } })).json().user, u)
    for (const [key, value] of [['theme', 'dark'], ['cart', ['a']], ['touched', true]] as const) {
      assert.deepEqual((await v3.inject({ url: `/get/${key}`, headers: { cookie: resigned } })).json(), { value }, key)
    }
    const [info] = await v2.session.listUserSessions(u)
    assert.equal(info?.userAgent, 'Rotating/1')
    const stored = await hgetall(keyPrefix + hashOf(cookie))
    assert.ok([...stored.values()].every((v) => !v.startsWith('~1.k1.')), 'nothing left under k1')
  })

  // Fixed defect: a lineage keeps the index name derived from the secret it was first logged in under (re-login and regenerate keep m:k); once that secret is removed per the runbook, revokeUser/listUserSessions no longer find a session that still works
  test('rotation: after the runbook removes the old secret, revokeUser still ends a session whose lineage began before the rotation', async () => {
    const keyPrefix = freshPrefix()
    const clock = manualClock()
    const timing = { keyPrefix, clock: clock.now, idleTimeout: 60_000, absoluteTimeout: 120_000 }
    const v1 = await app({ ...timing, secrets: [OLD_SECRET] })
    const v2 = await app({ ...timing, secrets: [NEW_SECRET, OLD_SECRET] })
    const u = user()
    let cookie = await login(v1, u)
    clock.advance(10_000) // the rotation starts: v2 replaces v1
    const rotationStart = clock.now()
    for (let t = 0; t < 100_000; t += 25_000) {
      const res = await v2.inject({ url: '/private', headers: { cookie } })
      assert.equal(res.statusCode, 200)
      cookie = sessionCookie(res) ?? cookie
      clock.advance(25_000)
    }
    // A step-up re-login shortly before the old secret goes: a new absolute deadline.
    cookie = sessionCookie(await v2.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { user: u } })) as string
    clock.advance(rotationStart + 120_000 + 1000 - clock.now()) // absoluteTimeout after the rotation began: drop the old secret
    const v3 = await app({ ...timing, secrets: [NEW_SECRET] })
    assert.equal(await works(v3, cookie), true, 'the re-logged-in session works after the rotation')
    assert.equal((await v3.session.listUserSessions(u)).length, 1, 'a working session is listed')
    assert.equal(await v3.session.revokeUser(u), 1, 'revokeUser finds it')
    await gone(v3, cookie, 'a session after revokeUser')
  })
})
