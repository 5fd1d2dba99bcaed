/**
 * The behavioural suite every store must pass, driven through `app.inject()`. Each store's test
 * file supplies a fixture: the plugin options that select the store and a counter of store
 * operations (Redis commands for Redis, store calls for the memory store).
 */
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { HardenedSessionOptions, SessionEvent } from '../../lib/index.ts'
import { SECRET, buildApp, cookieAttributes, login, manualClock, sessionCookie, setCookieHeader } from './app.ts'

export interface StoreFixture {
  /** Options selecting a fresh store (for the memory store, a new one per call). */
  options (): Partial<HardenedSessionOptions>
  /** Store operations so far (monotonic). */
  operations (): Promise<number>
}

export function behaviourSuite (name: string, fixture: StoreFixture): void {
  describe(`${name}: behaviour`, () => {
    const apps: FastifyInstance[] = []
    const make = async (extra: Partial<HardenedSessionOptions> = {}): Promise<FastifyInstance> => {
      const app = await buildApp({ ...fixture.options(), ...extra })
      apps.push(app)
      return app
    }
    after(async () => { await Promise.all(apps.map((a) => a.close())) })

    test('cookie: __Host-sid, HttpOnly, Secure, SameSite=Lax, Path=/, value = id + HMAC signature', async () => {
      const app = await make()
      const res = await app.inject({ method: 'POST', url: '/login' })
      const header = setCookieHeader(res) ?? ''
      assert.match(header, /^__Host-sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; /)
      assert.deepEqual(cookieAttributes(header), { 'max-age': '1800', expires: cookieAttributes(header).expires, path: '/', httponly: '', secure: '', samesite: 'Lax' })
      assert.ok(Math.abs(Date.parse(cookieAttributes(header).expires ?? '') - Date.now() - 1_800_000) < 2000, 'Expires matches Max-Age')
      const value = (sessionCookie(res) ?? '').split('=')[1] ?? ''
      const [id, sig] = value.split('.')
      assert.equal(sig, createHmac('sha256', SECRET).update(id ?? '').digest('base64url'))
      assert.equal(res.headers['cache-control'], 'no-store')
    })

    test('lifecycle: a request that sets nothing writes nothing and sends no cookie', async () => {
      const app = await make()
      const before = await fixture.operations()
      const res = await app.inject({ url: '/me' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['set-cookie'], undefined)
      assert.equal(res.headers['cache-control'], undefined)
      assert.deepEqual(res.json(), { user: null, theme: null, isNew: true })
      assert.equal(await fixture.operations(), before, 'no store operation')
    })

    test('lifecycle: data set anonymously is kept and read back on the next request', async () => {
      const app = await make()
      const res = await app.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })
      const cookie = sessionCookie(res)
      assert.ok(cookie)
      const me = await app.inject({ url: '/me', headers: { cookie } })
      assert.deepEqual(me.json(), { user: null, theme: 'dark', isNew: false })
      assert.equal(me.headers['set-cookie'], undefined, 'a read sends no cookie')
    })

    test('cookie: tampering with any part, or garbage, gives no session and no store operation', async () => {
      const app = await make()
      const cookie = await login(app)
      const value = cookie.slice('__Host-sid='.length)
      const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
      const variants = [
        flip(value, 0), flip(value, 42), flip(value, 44), flip(value, value.length - 1),
        value.replace('.', '-'), value + 'A', value.slice(0, 43), 'x'.repeat(5000), '', '.',
      ]
      // warm the valid cookie, then count operations over the tampered ones only
      await app.inject({ url: '/me', headers: { cookie } })
      const before = await fixture.operations()
      for (const v of variants) {
        const res = await app.inject({ url: '/me', headers: { cookie: `__Host-sid=${v}` } })
        assert.deepEqual(res.json(), { user: null, theme: null, isNew: true }, `variant ${v.slice(0, 20)}`)
      }
      assert.equal(await fixture.operations(), before, 'no store operation for any tampered cookie')
    })

    test('fixation: the pre-login cookie is dead after login and the id changes', async () => {
      const app = await make()
      const pre = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } }))
      assert.ok(pre)
      const res = await app.inject({ method: 'POST', url: '/login', headers: { cookie: pre } })
      const post = sessionCookie(res)
      assert.ok(post)
      assert.notEqual(post, pre)
      assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: pre } })).json(), { user: null, theme: null, isNew: true })
      assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: post } })).json(), { user: 'user-1', theme: 'dark', isNew: false })
    })

    test('lifecycle: regenerate keeps the data under a new id and kills the old one', async () => {
      const app = await make()
      const cookie = await login(app, 'u-regen', { theme: 'light' })
      const next = sessionCookie(await app.inject({ method: 'POST', url: '/regenerate', headers: { cookie } }))
      assert.ok(next)
      assert.notEqual(next, cookie)
      assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: next } })).json(), { user: 'u-regen', theme: 'light', isNew: false })
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, null)
    })

    test('lifecycle: logout kills the session, expires the cookie and sends Clear-Site-Data', async () => {
      const app = await make()
      const cookie = await login(app)
      const res = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
      assert.match(setCookieHeader(res) ?? '', /^__Host-sid=; Max-Age=0; /)
      assert.equal(res.headers['clear-site-data'], '"cache"')
      assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 401)
    })

    test('lifecycle: destroy kills the session and expires the cookie without Clear-Site-Data', async () => {
      const app = await make()
      const cookie = await login(app)
      const res = await app.inject({ method: 'POST', url: '/destroy', headers: { cookie } })
      assert.match(setCookieHeader(res) ?? '', /^__Host-sid=; Max-Age=0; /)
      assert.equal(res.headers['clear-site-data'], undefined)
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, null)
    })

    test('requireLogin: 401 FST_SESSION_UNAUTHENTICATED without login, 200 with it', async () => {
      const app = await make()
      const res = await app.inject({ url: '/private' })
      assert.equal(res.statusCode, 401)
      assert.equal(res.json().code, 'FST_SESSION_UNAUTHENTICATED')
      const cookie = await login(app, 'u-private')
      const ok = await app.inject({ url: '/private', headers: { cookie } })
      assert.deepEqual(ok.json(), { user: 'u-private' })
      assert.equal(ok.headers['cache-control'], 'no-store', 'a logged-in response is not cacheable')
    })

    test('requireFreshLogin: passes right after login, 401 FST_SESSION_REAUTH_REQUIRED once too old', async () => {
      const clock = manualClock()
      const app = await make({ clock: clock.now })
      const cookie = await login(app)
      assert.equal((await app.inject({ url: '/fresh', headers: { cookie } })).statusCode, 200)
      clock.advance(60_001)
      const res = await app.inject({ url: '/fresh', headers: { cookie } })
      assert.equal(res.statusCode, 401)
      assert.equal(res.json().code, 'FST_SESSION_REAUTH_REQUIRED')
    })

    test('concurrency: 20 concurrent requests setting different fields of one session all survive', async () => {
      const app = await make()
      const cookie = await login(app)
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { [`k${i}`]: i } })))
      for (const r of results) assert.equal(r.statusCode, 200)
      for (let i = 0; i < 20; i++) {
        const res = await app.inject({ url: `/get/k${i}`, headers: { cookie } })
        assert.deepEqual(res.json(), { value: i }, `field k${i}`)
      }
    })

    test('lifecycle: deleting a field removes it for later requests', async () => {
      const app = await make()
      const cookie = await login(app, 'u-del', { theme: 'dark' })
      await app.inject({ method: 'POST', url: '/delete/theme', headers: { cookie } })
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().theme, null)
    })

    test('lifecycle: a value mutated by a handler without set() is not saved', async () => {
      const app = await make()
      const cookie = await login(app, 'u-mut', { cart: ['a'] })
      assert.deepEqual((await app.inject({ url: '/mutate', headers: { cookie } })).json().cart, ['a', 'mutated-in-handler'])
      assert.deepEqual((await app.inject({ url: '/mutate', headers: { cookie } })).json().cart, ['a', 'mutated-in-handler'])
    })

    test('expiry: the idle timeout slides with activity and ends an idle session', async () => {
      const clock = manualClock()
      const app = await make({ idleTimeout: 1000, touchInterval: 200, absoluteTimeout: 60_000, allowShortDurations: true, clock: clock.now })
      const cookie = await login(app)
      for (let i = 0; i < 6; i++) {
        clock.advance(300)
        assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, 'user-1', `active read ${i}`)
      }
      clock.advance(999)
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, 'user-1', 'idle for just under the timeout')
      clock.advance(1001)
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, null, 'idle for the timeout')
    })

    test('expiry: a write slides the TTL and re-sends the cookie only when a touch is due', async () => {
      const clock = manualClock()
      const app = await make({ idleTimeout: 2000, touchInterval: 300, absoluteTimeout: 60_000, allowShortDurations: true, clock: clock.now })
      const cookie = await login(app)
      const early = await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { a: 1 } })
      assert.equal(early.headers['set-cookie'], undefined, 'no cookie for a write right after the last touch')
      clock.advance(350)
      const late = await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { a: 2 } })
      assert.match(setCookieHeader(late) ?? '', /^__Host-sid=[^;]+; Max-Age=2; /, 'the cookie slides with the touch')
      // Idle 2 s from the touch at 350 ms: still alive at 2.3 s after login, gone at 2.35 s.
      clock.advance(1950)
      assert.deepEqual((await app.inject({ url: '/get/a', headers: { cookie } })).json(), { value: 2 })
    })

    test('expiry: the absolute timeout ends a session however active', async () => {
      const clock = manualClock()
      const app = await make({ idleTimeout: 1000, touchInterval: 100, absoluteTimeout: 1500, allowShortDurations: true, clock: clock.now })
      const cookie = await login(app)
      for (let t = 0; t < 1400; t += 150) {
        assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, 'user-1', `at ${t} ms`)
        clock.advance(150)
      }
      // The clock is now at 1500 ms: the absolute deadline.
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, null)
    })

    test('limits: a session over maxSessionBytes is not saved and no cookie is sent', async () => {
      const app = await make({ maxSessionBytes: 1024 })
      const res = await app.inject({ method: 'POST', url: '/set', payload: { big: 'x'.repeat(2000) } })
      assert.equal(res.json().code, 'FST_SESSION_TOO_LARGE')
      assert.equal(res.headers['set-cookie'], undefined)
    })

    test('routes: config.session false has no session and performs no store operation', async () => {
      const app = await make()
      const cookie = await login(app)
      const before = await fixture.operations()
      const res = await app.inject({ url: '/public', headers: { cookie } })
      assert.deepEqual(res.json(), { hasSession: false })
      assert.equal(await fixture.operations(), before)
    })

    test('users: revokeUser ends every session of that user and returns how many', async () => {
      const app = await make()
      const a = await login(app, 'u-revoke')
      const b = await login(app, 'u-revoke')
      const other = await login(app, 'u-other')
      assert.equal(await app.session.revokeUser('u-revoke'), 2)
      assert.equal((await app.inject({ url: '/me', headers: { cookie: a } })).json().user, null)
      assert.equal((await app.inject({ url: '/me', headers: { cookie: b } })).json().user, null)
      assert.equal((await app.inject({ url: '/me', headers: { cookie: other } })).json().user, 'u-other')
      assert.equal(await app.session.revokeUser('u-revoke'), 0)
    })

    test('users: listUserSessions lists live sessions without raw ids and prunes dead ones', async () => {
      const app = await make()
      const a = await login(app, 'u-list')
      const b = await login(app, 'u-list')
      await app.inject({ method: 'POST', url: '/logout', headers: { cookie: b } })
      const list = await app.session.listUserSessions('u-list')
      assert.equal(list.length, 1)
      const [info] = list
      assert.ok(info)
      assert.ok(info.createdAt instanceof Date && info.expiresAt > info.createdAt)
      assert.ok(info.authenticatedAt instanceof Date)
      const id = a.split('=')[1]?.split('.')[0] ?? ''
      assert.ok(!JSON.stringify(list).includes(id))
      assert.ok(!JSON.stringify(list).includes(id.slice(0, 12)))
    })

    test('users: maxSessionsPerUser revokes the oldest sessions beyond the limit', async () => {
      const clock = manualClock()
      const app = await make({ maxSessionsPerUser: 2, clock: clock.now })
      const first = await login(app, 'u-max')
      clock.advance(1)
      const second = await login(app, 'u-max')
      clock.advance(1)
      const third = await login(app, 'u-max')
      assert.equal((await app.inject({ url: '/me', headers: { cookie: first } })).json().user, null)
      assert.equal((await app.inject({ url: '/me', headers: { cookie: second } })).json().user, 'u-max')
      assert.equal((await app.inject({ url: '/me', headers: { cookie: third } })).json().user, 'u-max')
    })

    test('rotation: a cookie signed with an old secret stays valid while listed and dies when removed', async () => {
      // Its own prefix: the deployment's naming key ring is made under these secrets, not the suite's.
      const base = fixture.options()
      const store = { ...base, keyPrefix: `${base.keyPrefix ?? 'sess:'}rot${Math.random().toString(36).slice(2, 8)}:` }
      const oldApp = await buildApp({ ...store, secrets: ['old-secret-0123456789-0123456789-xx'] })
      apps.push(oldApp)
      const cookie = await login(oldApp, 'u-rot')
      const rotated = await buildApp({ ...store, secrets: ['new-secret-0123456789-0123456789-xx', 'old-secret-0123456789-0123456789-xx'] })
      apps.push(rotated)
      const res = await rotated.inject({ url: '/me', headers: { cookie } })
      assert.equal(res.json().user, 'u-rot')
      const reissued = sessionCookie(res)
      assert.ok(reissued && reissued !== cookie, 'the cookie is re-issued under the new secret')
      const removed = await buildApp({ ...store, secrets: ['new-secret-0123456789-0123456789-xx'] })
      apps.push(removed)
      assert.equal((await removed.inject({ url: '/me', headers: { cookie } })).json().user, null)
      assert.equal((await removed.inject({ url: '/me', headers: { cookie: reissued } })).json().user, 'u-rot')
    })

    test('events: audit events carry a short reference, never the id or cookie', async () => {
      const events: SessionEvent[] = []
      const app = await make({ onEvent: (e) => { events.push(e) } })
      const cookie = await login(app, 'u-events')
      await app.inject({ url: '/me', headers: { cookie: '__Host-sid=forged.value' } })
      await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
      const types = events.map((e) => e.type)
      assert.deepEqual(types, ['login', 'invalid_cookie', 'logout'])
      const value = cookie.split('=')[1] ?? ''
      const id = value.split('.')[0] ?? ''
      const text = JSON.stringify(events)
      assert.ok(!text.includes(id) && !text.includes(value))
      assert.equal(events[0]?.sessionRef, events[2]?.sessionRef)
      assert.match(events[0]?.sessionRef ?? '', /^[A-Za-z0-9_-]{12}$/)
    })

    test('events: a throwing onEvent does not break the request', async () => {
      const app = await make({ onEvent: () => { throw new Error('audit sink down') } })
      const res = await app.inject({ method: 'POST', url: '/login' })
      assert.equal(res.statusCode, 200)
      assert.ok(sessionCookie(res))
    })
  })
}
