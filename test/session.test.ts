/** request.session edge cases that do not depend on the store (memory store here). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import hardenedSession, { createMemoryStore } from '../lib/index.ts'
import { SECRET, sessionCookie } from './helpers/app.ts'

async function app () {
  const a = Fastify()
  await a.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore() })
  a.post('/bigint', async (req) => { req.session.set('n', 10n as unknown as number); return 'unreachable' })
  a.post('/fn', async (req) => { req.session.set('f', (() => 1) as unknown as number); return 'unreachable' })
  a.post('/login-bad', async (req) => { await req.session.login('u', { n: 1n }); return 'unreachable' })
  a.post('/login-empty', async (req) => { await req.session.login(''); return 'unreachable' })
  a.post('/same', async (req) => { req.session.set('theme', 'dark'); return { isNew: req.session.isNew } })
  a.post('/destroy-then-set', async (req) => {
    await req.session.destroy()
    req.session.set('flash', 'bye')
    return { ok: true }
  })
  a.get('/flash', async (req) => ({ flash: req.session.get('flash') ?? null }))
  a.post('/set-then-regenerate', async (req) => {
    req.session.set('flash', 'kept')
    const before = req.session.id
    await req.session.regenerate()
    return { changed: req.session.id !== before, flash: req.session.get('flash') }
  })
  await a.ready()
  return a
}

test('session: set() of a value JSON cannot hold fails with FST_SESSION_NOT_SERIALIZABLE and saves nothing', async () => {
  const a = await app()
  for (const url of ['/bigint', '/fn', '/login-bad']) {
    const res = await a.inject({ method: 'POST', url })
    assert.equal(res.json().code, 'FST_SESSION_NOT_SERIALIZABLE', url)
    assert.equal(res.headers['set-cookie'], undefined)
  }
  await a.close()
})

test('session: login with an empty user id fails with FST_SESSION_INVALID_ARGUMENT (500), no session', async () => {
  const a = await app()
  const res = await a.inject({ method: 'POST', url: '/login-empty' })
  assert.equal(res.statusCode, 500)
  assert.equal(res.json().code, 'FST_SESSION_INVALID_ARGUMENT')
  assert.equal(res.headers['set-cookie'], undefined)
  await a.close()
})

test('session: setting the value already stored writes nothing and sends no cookie', async () => {
  const a = await app()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/same' }))
  assert.ok(cookie)
  const again = await a.inject({ method: 'POST', url: '/same', headers: { cookie } })
  assert.deepEqual(again.json(), { isNew: false })
  assert.equal(again.headers['set-cookie'], undefined)
  await a.close()
})

test('session: data set after destroy() starts a new session with a new cookie', async () => {
  const a = await app()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/same' }))
  const res = await a.inject({ method: 'POST', url: '/destroy-then-set', headers: { cookie } })
  const next = sessionCookie(res)
  assert.ok(next && next !== cookie)
  assert.deepEqual((await a.inject({ url: '/flash', headers: { cookie: next } })).json(), { flash: 'bye' })
  assert.deepEqual((await a.inject({ url: '/flash', headers: { cookie } })).json(), { flash: null })
  await a.close()
})

test('session: regenerate() before the session is stored keeps this request\'s data under the new id', async () => {
  const a = await app()
  const res = await a.inject({ method: 'POST', url: '/set-then-regenerate' })
  assert.deepEqual(res.json(), { changed: true, flash: 'kept' })
  const cookie = sessionCookie(res)
  assert.ok(cookie)
  assert.deepEqual((await a.inject({ url: '/flash', headers: { cookie } })).json(), { flash: 'kept' })
  await a.close()
})

test('session: a touch that fails leaves the read answered, without a cookie, and still no-store', async () => {
  const store = createMemoryStore()
  let failUpdates = false
  const failing = new Proxy(store, {
    get (target, prop, receiver) {
      if (prop === 'update' && failUpdates) return async () => { throw new Error('store down') }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  const a = Fastify()
  await a.register(hardenedSession, { secrets: [SECRET], store: failing, idleTimeout: 10_000, touchInterval: 0, allowShortDurations: true })
  a.post('/login', async (req) => { await req.session.login('u'); return 'ok' })
  a.get('/me', async (req) => ({ user: req.session.userId ?? null }))
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' }))
  failUpdates = true
  const res = await a.inject({ url: '/me', headers: { cookie } })
  assert.deepEqual(res.json(), { user: 'u' })
  assert.equal(res.headers['set-cookie'], undefined)
  assert.equal(res.headers['cache-control'], 'no-store')
  await a.close()
})

test('limits: maxSessionBytes counts UTF-8 bytes, so 60,000 × € (180 KB) is refused under the 64 KiB default', async () => {
  const b = Fastify()
  await b.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore() })
  b.post('/euro', async (req) => { req.session.set('big', '€'.repeat(60_000)); return 'saved' })
  b.post('/ascii', async (req) => { req.session.set('big', 'e'.repeat(60_000)); return 'saved' })
  const euro = await b.inject({ method: 'POST', url: '/euro' })
  assert.equal(euro.json().code, 'FST_SESSION_TOO_LARGE')
  assert.equal(euro.headers['set-cookie'], undefined)
  assert.equal((await b.inject({ method: 'POST', url: '/ascii' })).body, 'saved', '60 KB of ASCII fits')
  await b.close()
})

test('cookie: of a header stuffed with 165 forged session cookies only the first 3 are verified (the real one after them is ignored)', async () => {
  const a = await app()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/same' }))
  assert.ok(cookie)
  const forged = Array.from({ length: 165 }, (_, i) => `__Host-sid=${'A'.repeat(43)}.${String(i).padStart(43, 'B')}`)
  const stuffed = await a.inject({ method: 'POST', url: '/same', headers: { cookie: [...forged, cookie].join('; ') } })
  assert.deepEqual(stuffed.json(), { isNew: true }, 'the real cookie at position 166 was never looked at')
  const second = await a.inject({ method: 'POST', url: '/same', headers: { cookie: [forged[0], cookie].join('; ') } })
  assert.deepEqual(second.json(), { isNew: false }, 'a real cookie among the first three is found')
  await a.close()
})
