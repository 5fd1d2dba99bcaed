/**
 * The session lifecycle under an adversary, run against every store with TWO app instances
 * sharing it: data never crosses users, revocation is final, and the races that broke earlier
 * versions (parallel logins at the cap, a login racing revokeUser, a slow regenerate after a
 * revoke, a pre-login request finishing after the login) are repeated often enough to catch a
 * 1-in-10 race. Self-service members (ref, revokeOthers, revokeSession, revokeAll) are proven
 * across instances.
 */
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import type { HardenedSessionOptions } from '../../lib/index.ts'
import { barrier, buildApp, eventually, gone, login, refOf, sessionCookie, works } from './app.ts'

export interface PairFixture {
  /** Options for two app instances sharing one store. */
  pair (): [Partial<HardenedSessionOptions>, Partial<HardenedSessionOptions>]
}

const TRIES = 40

export function lifecycleSuite (name: string, fixture: PairFixture): void {
  describe(`${name}: lifecycle (two instances)`, () => {
    const apps: FastifyInstance[] = []
    after(async () => { await Promise.all(apps.map((a) => a.close())) })
    const pair = async (extra: Partial<HardenedSessionOptions> = {}, routes?: (app: FastifyInstance) => void): Promise<[FastifyInstance, FastifyInstance]> => {
      const [a, b] = fixture.pair()
      const made: [FastifyInstance, FastifyInstance] = [
        await buildApp({ ...a, ...extra }, {}, routes),
        await buildApp({ ...b, ...extra }, {}, routes),
      ]
      apps.push(...made)
      return made
    }
    let n = 0
    const user = (): string => `${name}-user-${++n}`

    test('login: a different user on the same cookie starts empty except the keys in keep', async () => {
      const [a, b] = await pair()
      const cookieA = await login(a, 'victim', { mfa: true, theme: 'dark', cart: ['x'] })
      const res = await b.inject({ method: 'POST', url: '/login', headers: { cookie: cookieA }, payload: { user: 'attacker', keep: ['theme'] } })
      const cookieB = sessionCookie(res)
      assert.ok(cookieB)
      for (const [key, value] of [['mfa', null], ['cart', null], ['theme', 'dark']] as const) {
        assert.deepEqual((await a.inject({ url: `/get/${key}`, headers: { cookie: cookieB } })).json(), { value }, key)
      }
      await gone(a, cookieA, "the victim's old id")
    })

    test('login: an anonymous session keeps its data; a same-user re-login keeps data and lineage', async () => {
      const [a, b] = await pair()
      const anon = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { cart: ['book'] } }))
      assert.ok(anon)
      const first = await login(b, 'u-keep', undefined)
      const viaAnon = sessionCookie(await a.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: 'u-keep' } }))
      assert.ok(viaAnon)
      assert.deepEqual((await b.inject({ url: '/get/cart', headers: { cookie: viaAnon } })).json(), { value: ['book'] })
      const ref = await refOf(a, viaAnon)
      const again = sessionCookie(await b.inject({ method: 'POST', url: '/login', headers: { cookie: viaAnon }, payload: { user: 'u-keep' } }))
      assert.ok(again && again !== viaAnon)
      assert.deepEqual((await a.inject({ url: '/get/cart', headers: { cookie: again } })).json(), { value: ['book'] })
      assert.equal(await refOf(a, again), ref, 'the lineage reference survives a re-login')
      assert.notEqual(await refOf(a, first), ref)
    })

    test('ref: a short reference, stable across regenerate, listed by listUserSessions, never the id', async () => {
      const [a, b] = await pair()
      const u = user()
      const cookie = await login(a, u)
      const ref = await refOf(b, cookie)
      assert.match(ref, /^[A-Za-z0-9_-]{12}$/)
      const next = sessionCookie(await b.inject({ method: 'POST', url: '/regenerate', headers: { cookie } }))
      assert.ok(next)
      assert.equal(await refOf(a, next), ref)
      const list = await a.session.listUserSessions(u)
      assert.deepEqual(list.map((s) => s.ref), [ref])
      const id = next.split('=')[1]?.split('.')[0] ?? ''
      assert.ok(!id.includes(ref) && !ref.includes(id.slice(0, 12)))
    })

    test('revokeOthers: ends every other session of the user on both instances and keeps this one', async () => {
      const [a, b] = await pair()
      const u = user()
      const keep = await login(a, u)
      const others = [await login(a, u), await login(b, u), await login(b, u)]
      const bystander = await login(b, user())
      for (const c of others) assert.equal(await works(a, c), true)
      const res = await b.inject({ method: 'POST', url: '/revoke-others', headers: { cookie: keep } })
      assert.deepEqual(res.json(), { revoked: 3 })
      for (const c of others) {
        await gone(a, c)
        await gone(b, c)
      }
      assert.equal(await works(a, keep), true)
      assert.equal(await works(b, bystander), true)
      assert.equal((await a.inject({ method: 'POST', url: '/revoke-others' })).json().code, 'FST_SESSION_UNAUTHENTICATED')
    })

    test('revokeSession: ends one session by its ref on both instances; false for an unknown ref', async () => {
      const [a, b] = await pair()
      const u = user()
      const one = await login(a, u)
      const two = await login(b, u)
      assert.equal(await a.session.revokeSession(u, await refOf(a, one)), true)
      await gone(b, one)
      await gone(a, one)
      assert.equal(await works(a, two), true)
      assert.equal(await b.session.revokeSession(u, 'AAAAAAAAAAAA'), false)
      assert.equal(await b.session.revokeSession(u, 'not a ref'), false)
      assert.equal(await b.session.revokeSession('someone-else', await refOf(a, two)), false, "another user's ref is not found")
    })

    test('revokeAll: every existing session, anonymous ones too, dies on both instances; sessions made afterwards work', async () => {
      const [a, b] = await pair()
      const logged = await login(a, user())
      const anon = sessionCookie(await b.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } }))
      assert.ok(anon)
      assert.equal(await works(b, logged), true)
      await a.session.revokeAll()
      await gone(b, logged)
      await gone(a, logged)
      await eventually(async () => (await b.inject({ url: '/get/theme', headers: { cookie: anon } })).json().value === null, 100, 'the anonymous session ended')
      const fresh = await login(b, user())
      assert.equal(await works(a, fresh), true)
    })

    test('sessionInfo: user agent and IP recorded at login are listed only when the option asks for them', async () => {
      const [a] = await pair({ sessionInfo: { userAgent: true, ip: true } })
      const [plain] = await pair()
      const u = user()
      await a.inject({ method: 'POST', url: '/login', headers: { 'user-agent': 'Agent/1.0' }, payload: { user: u } })
      const [info] = await a.session.listUserSessions(u)
      assert.equal(info?.userAgent, 'Agent/1.0')
      assert.equal(info?.ip, '127.0.0.1')
      const v = user()
      await plain.inject({ method: 'POST', url: '/login', headers: { 'user-agent': 'Agent/2.0' }, payload: { user: v } })
      const [bare] = await plain.session.listUserSessions(v)
      assert.ok(bare !== undefined && !('userAgent' in bare) && !('ip' in bare))
    })

    test('maxSessionsPerUser: a re-login from one of two devices keeps the other device signed in', async () => {
      const [a, b] = await pair({ maxSessionsPerUser: 2 })
      const u = user()
      const phone = await login(a, u)
      const laptop = await login(b, u)
      const relogin = sessionCookie(await a.inject({ method: 'POST', url: '/login', headers: { cookie: phone }, payload: { user: u } }))
      assert.ok(relogin)
      assert.equal(await works(b, laptop), true)
      assert.equal(await works(b, relogin), true)
      assert.equal((await a.session.listUserSessions(u)).length, 2)
      const third = await login(b, u)
      assert.equal(await works(a, third), true)
      assert.equal([await works(a, laptop), await works(a, relogin)].filter(Boolean).length, 1, 'beyond the cap the oldest goes')
    })

    test('clearSiteData: logout then login in one response sends no "cookies" directive beside the new cookie', async () => {
      const [a] = await pair({ clearSiteData: '"cache", "cookies"' }, (app) => {
        app.post('/switch', async (req) => { await req.session.logout(); await req.session.login('switched'); return { ok: true } })
      })
      const cookie = await login(a, user())
      const res = await a.inject({ method: 'POST', url: '/switch', headers: { cookie } })
      assert.equal(res.headers['clear-site-data'], '"cache"')
      const next = sessionCookie(res)
      assert.ok(next)
      assert.equal(await works(a, next), true)
      const plain = await a.inject({ method: 'POST', url: '/logout', headers: { cookie: next } })
      assert.equal(plain.headers['clear-site-data'], '"cache", "cookies"', 'a plain logout sends every directive')
      const [none] = await pair({ clearSiteData: false })
      const c2 = await login(none, user())
      assert.equal((await none.inject({ method: 'POST', url: '/logout', headers: { cookie: c2 } })).headers['clear-site-data'], undefined)
    })

    test(`race: ${TRIES}× three parallel logins at maxSessionsPerUser 2 leave only listed, revocable sessions`, async () => {
      const [a, b] = await pair({ maxSessionsPerUser: 2 })
      for (let i = 0; i < TRIES; i++) {
        const u = user()
        // Every other try the user is already at the limit before two more parallel logins.
        const before = i % 2 === 0 ? [] : [await login(a, u), await login(b, u)]
        const cookies = [...before, ...await Promise.all((i % 2 === 0 ? [a, b, a] : [a, b]).map((app) => login(app, u)))]
        const working = []
        for (const c of cookies) if (await works(b, c)) working.push(await refOf(a, c))
        assert.ok(working.length <= 2 && working.length >= 1, `try ${i}: ${working.length} working sessions`)
        const listed = (await a.session.listUserSessions(u)).map((s) => s.ref)
        assert.deepEqual(listed.sort(), [...working].sort(), `try ${i}: every working session is listed, no other`)
        assert.equal(await b.session.revokeUser(u), working.length, `try ${i}: revokeUser counts every working session`)
        for (const c of cookies) await gone(a, c, `try ${i}: nothing works after revokeUser`)
      }
    })

    test(`race: ${TRIES}× a login racing revokeUser on the other instance never leaves an unlisted live session`, async () => {
      const [a, b] = await pair()
      for (let i = 0; i < TRIES; i++) {
        const u = user()
        const old = await login(a, u)
        const [fresh] = await Promise.all([login(a, u), b.session.revokeUser(u)])
        await gone(b, old, `try ${i}: the session from before the revoke is dead`)
        if (await works(b, fresh)) {
          assert.deepEqual((await b.session.listUserSessions(u)).map((s) => s.ref), [await refOf(a, fresh)], `try ${i}: a working session is listed`)
          assert.equal(await a.session.revokeUser(u), 1)
          await gone(b, fresh, `try ${i}: and revocable`)
        }
      }
    })

    test('race: a regenerate in a handler still running when revokeUser resolved fails with FST_SESSION_ENDED and revives nothing', async () => {
      const gates: Array<ReturnType<typeof barrier>> = []
      const [a, b] = await pair({}, (app) => {
        app.post('/slow-regenerate', async (req) => {
          await (gates.shift() as ReturnType<typeof barrier>).wait()
          await req.session.regenerate()
          return { ok: true }
        })
      })
      for (let i = 0; i < 10; i++) {
        const u = user()
        const cookie = await login(a, u)
        const gate = barrier()
        gates.push(gate)
        const pending = a.inject({ method: 'POST', url: '/slow-regenerate', headers: { cookie } })
        await gate.reached
        assert.equal(await b.session.revokeUser(u), 1)
        gate.release()
        const res = await pending
        assert.equal(res.statusCode, 409, `try ${i}`)
        assert.equal(res.json().code, 'FST_SESSION_ENDED')
        assert.equal(res.headers['set-cookie'], undefined, `try ${i}: no cookie is issued`)
        await gone(b, cookie)
        assert.deepEqual(await a.session.listUserSessions(u), [], `try ${i}: nothing was revived`)
      }
    })

    test(`race: ${TRIES}× regenerate racing revokeUser: once the revoke resolved neither the old nor a new id works`, async () => {
      const [a, b] = await pair()
      for (let i = 0; i < TRIES; i++) {
        const u = user()
        const cookie = await login(a, u)
        const [res] = await Promise.all([a.inject({ method: 'POST', url: '/regenerate', headers: { cookie } }), b.session.revokeUser(u)])
        const next = sessionCookie(res)
        await gone(b, cookie, `try ${i}: old id`)
        if (next !== undefined) await gone(b, next, `try ${i}: regenerated id`)
        else assert.ok(res.statusCode === 200 || res.json().code === 'FST_SESSION_ENDED', `try ${i}: ${res.body}`)
      }
    })

    test('race: a pre-login request finishing after the login response never clears the new cookie and never drops its write silently', async () => {
      const gates: Array<ReturnType<typeof barrier>> = []
      const [a, b] = await pair({}, (app) => {
        app.post('/slow-set', async (req) => {
          await (gates.shift() as ReturnType<typeof barrier>).wait()
          req.session.set('late', true)
          return { ok: true }
        })
        app.get('/slow-read', async (req) => {
          await (gates.shift() as ReturnType<typeof barrier>).wait()
          return { theme: req.session.get('theme') ?? null }
        })
      })
      const anon = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } }))
      assert.ok(anon)
      const writeGate = barrier()
      const readGate = barrier()
      gates.push(writeGate)
      const write = a.inject({ method: 'POST', url: '/slow-set', headers: { cookie: anon } })
      await writeGate.reached
      gates.push(readGate)
      const read = b.inject({ url: '/slow-read', headers: { cookie: anon } })
      await readGate.reached
      const loggedIn = sessionCookie(await b.inject({ method: 'POST', url: '/login', headers: { cookie: anon }, payload: { user: user() } }))
      assert.ok(loggedIn)
      writeGate.release()
      readGate.release()
      const [w, r] = await Promise.all([write, read])
      assert.equal(w.statusCode, 409, 'the lost write is reported')
      assert.equal(w.json().code, 'FST_SESSION_ENDED')
      assert.equal(w.headers['set-cookie'], undefined)
      assert.equal(r.statusCode, 200)
      assert.equal(r.headers['set-cookie'], undefined, 'a read that began before the login sends no cookie')
      assert.equal(await works(a, loggedIn), true)
      assert.deepEqual((await a.inject({ url: '/get/theme', headers: { cookie: loggedIn } })).json(), { value: 'dark' })
    })
  })
}
