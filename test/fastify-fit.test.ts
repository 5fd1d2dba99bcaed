/**
 * How the plugin fits into a Fastify application: `@fastify/cookie` as the cookie layer (with and
 * without the application registering it first), hooks in Fastify's registration order, routes
 * that opt out, the built-in origin check against request forgery, and the
 * `@fastify/csrf-protection` recipe for applications that want tokens too.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyCsrf from '@fastify/csrf-protection'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions, type SessionEvent, type SessionStore } from '../lib/index.ts'
import { SECRET, captureLogs, cookieAttributes, sessionCookie } from './helpers/app.ts'

/** A real memory store whose calls are counted (instrumentation, not a stand-in). */
function counted (): { store: SessionStore, calls: () => number } {
  const store = createMemoryStore()
  let calls = 0
  const proxy = new Proxy(store, {
    get (target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'stats' || prop === 'close') return value
      return (...args: unknown[]) => { calls++; return (value as (...a: unknown[]) => unknown).apply(target, args) }
    },
  })
  return { store: proxy, calls: () => calls }
}

async function app (options: Partial<HardenedSessionOptions> = {}, before?: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const a = Fastify()
  await before?.(a)
  await a.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore(), ...options })
  a.post('/login', async (req) => { await req.session.login('u-fit'); return { ok: true } })
  a.post('/write', async (req) => { req.session.set('n', 1); return { ok: true } })
  a.get('/me', async (req) => ({ user: req.session.userId ?? null }))
  return a
}

function setCookies (res: { headers: Record<string, unknown> }): string[] {
  const header = res.headers['set-cookie']
  return header === undefined ? [] : Array.isArray(header) ? header as string[] : [header as string]
}

test('@fastify/cookie: registered by the plugin when the app has not; the app\'s reply.setCookie and the session cookie share one response', async () => {
  const a = await app()
  a.post('/both', async (req, reply) => {
    reply.setCookie('theme', 'dark', { path: '/', httpOnly: true })
    await req.session.login('u-both')
    return { cookies: Object.keys(req.cookies) }
  })
  await a.ready()
  assert.ok(a.hasDecorator('parseCookie'), 'the cookie layer is there')
  const res = await a.inject({ method: 'POST', url: '/both', headers: { cookie: 'other=1' } })
  const names = setCookies(res).map((c) => c.split('=')[0]).sort()
  assert.deepEqual(names, ['__Host-sid', 'theme'])
  assert.deepEqual(res.json(), { cookies: ['other'] }, 'request.cookies is parsed by @fastify/cookie')
  const cookie = sessionCookie(res)
  assert.ok(cookie)
  assert.deepEqual((await a.inject({ url: '/me', headers: { cookie: `theme=dark; ${cookie}` } })).json(), { user: 'u-both' })
  await a.close()
})

test('@fastify/cookie: an app that registered it first keeps its own options (signed cookies) and the session works', async () => {
  const a = await app({}, async (f) => { await f.register(fastifyCookie, { secret: 'cookie-signing-secret-of-the-app-0123456789' }) })
  a.post('/signed', async (_req, reply) => {
    reply.setCookie('pref', 'v1', { signed: true, path: '/' })
    return { ok: true }
  })
  a.get('/pref', async (req) => ({ pref: req.unsignCookie(req.cookies['pref'] ?? '').value }))
  await a.ready()
  const res = await a.inject({ method: 'POST', url: '/signed' })
  const pref = setCookies(res)[0]?.split(';')[0] ?? ''
  assert.deepEqual((await a.inject({ url: '/pref', headers: { cookie: pref } })).json(), { pref: 'v1' })
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' }))
  assert.ok(cookie)
  assert.deepEqual((await a.inject({ url: '/me', headers: { cookie } })).json(), { user: 'u-fit' })
  await a.close()
})

test('cookie: custom attributes reach Set-Cookie (domain, SameSite=Strict, Partitioned, path) and HttpOnly is always on', async () => {
  const a = await app({ cookie: { name: 'sid', domain: 'example.com', sameSite: 'strict', partitioned: true, path: '/app' } })
  await a.ready()
  const res = await a.inject({ method: 'POST', url: '/login' })
  const set = setCookies(res).find((c) => c.startsWith('sid=')) ?? ''
  const attributes = cookieAttributes(set)
  assert.equal(attributes['domain'], 'example.com')
  assert.equal(attributes['path'], '/app')
  assert.equal(attributes['samesite'], 'Strict')
  assert.equal(attributes['partitioned'], '')
  assert.equal(attributes['httponly'], '')
  assert.equal(attributes['secure'], '')
  await a.close()
})

test('cookie: the session cookie is found when another cookie of the same name shadows it', async () => {
  const a = await app()
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' }))
  assert.ok(cookie)
  const shadowed = `__Host-sid=${'A'.repeat(43)}.${'B'.repeat(43)}; ${cookie}`
  assert.deepEqual((await a.inject({ url: '/me', headers: { cookie: shadowed } })).json(), { user: 'u-fit' })
  await a.close()
})

test('hooks: an onRequest hook added after the plugin sees the session; one added before sees null (Fastify\'s order)', async () => {
  const seen: Array<[string, unknown]> = []
  const a = await app({}, async (f) => {
    f.addHook('onRequest', async (req) => { seen.push(['before', req.session]) })
  })
  a.addHook('onRequest', async (req) => { seen.push(['after', req.session?.userId ?? 'anonymous']) })
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' }))
  seen.length = 0
  await a.inject({ url: '/me', headers: { cookie: cookie ?? '' } })
  assert.deepEqual(seen, [['before', null], ['after', 'u-fit']])
  await a.close()
})

test('hooks: a route with config.session false has no session and touches no store, even with instance hooks reading it', async () => {
  const { store, calls } = counted()
  const a = await app({ store })
  a.addHook('onRequest', async (req) => { req.log.trace({ hasSession: req.session !== null }) })
  a.get('/health', { config: { session: false } }, async (req) => ({ session: req.session }))
  a.post('/hook', { config: { session: false } }, async () => 'ok')
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' }))
  const before = calls()
  assert.deepEqual((await a.inject({ url: '/health', headers: { cookie: cookie ?? '' } })).json(), { session: null })
  assert.equal((await a.inject({ method: 'POST', url: '/hook', headers: { cookie: cookie ?? '', origin: 'https://evil.example' } })).statusCode, 200, 'no origin check either')
  assert.equal(calls(), before)
  await a.close()
})

test('csrf: an unsafe request carrying the session cookie from a foreign Origin is refused with 403 FST_SESSION_CSRF, without a store call', async () => {
  const { store, calls } = counted()
  const events: SessionEvent[] = []
  const a = await app({ store, onEvent: (e) => { events.push(e) } })
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' })) ?? ''
  const before = calls()
  for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'http://localhost:80.evil.example' }]) {
    const res = await a.inject({ method: 'POST', url: '/write', headers: { cookie, host: 'localhost:80', ...headers } })
    assert.equal(res.statusCode, 403, JSON.stringify(headers))
    assert.equal(res.json().code, 'FST_SESSION_CSRF')
    assert.equal(res.headers['set-cookie'], undefined)
  }
  assert.equal(calls(), before, 'no store access for a refused request')
  assert.deepEqual(events.filter((e) => e.type === 'csrf').length, 4)
  await a.close()
})

test('csrf: same origin, a trusted origin, same-site fetch metadata, non-browser clients and safe methods pass', async () => {
  const a = await app({ csrf: { trustedOrigins: ['https://App.Example.com'] } })
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' })) ?? ''
  const ok = async (method: 'GET' | 'POST', headers: Record<string, string>): Promise<number> =>
    (await a.inject({ method, url: method === 'GET' ? '/me' : '/write', headers: { host: 'api.example.com', ...headers } })).statusCode
  assert.equal(await ok('POST', { cookie, origin: 'http://api.example.com' }), 200, 'own origin')
  assert.equal(await ok('POST', { cookie, origin: 'https://app.example.com' }), 200, 'trusted origin, any case')
  assert.equal(await ok('POST', { cookie, 'sec-fetch-site': 'same-site' }), 200, 'same-site fetch metadata without Origin')
  assert.equal(await ok('POST', { cookie }), 200, 'a non-browser client without the headers')
  assert.equal(await ok('GET', { cookie, origin: 'https://evil.example' }), 200, 'a safe method')
  await a.close()
})

test('csrf: false turns the check off; a scheme-only mismatch logs one trustProxy hint', async () => {
  const off = await app({ csrf: false })
  await off.ready()
  const cookie = sessionCookie(await off.inject({ method: 'POST', url: '/login' })) ?? ''
  assert.equal((await off.inject({ method: 'POST', url: '/write', headers: { cookie, origin: 'https://evil.example' } })).statusCode, 200)
  await off.close()

  const { lines, logger } = captureLogs('warn')
  const proxied = Fastify({ logger })
  await proxied.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore() })
  proxied.post('/login', async (req) => { await req.session.login('u'); return 'ok' })
  proxied.post('/write', async (req) => { req.session.set('n', 1); return 'ok' })
  const c2 = sessionCookie(await proxied.inject({ method: 'POST', url: '/login' })) ?? ''
  for (let i = 0; i < 2; i++) {
    const res = await proxied.inject({ method: 'POST', url: '/write', headers: { cookie: c2, host: 'app.example.com', origin: 'https://app.example.com' } })
    assert.equal(res.statusCode, 403)
  }
  assert.equal(lines.filter((l) => String(l.msg).includes('trustProxy')).length, 1)
  await proxied.close()
})

test('recipe: @fastify/csrf-protection tokens stored in request.session, checked by an instance onRequest hook on unsafe methods', async () => {
  const a = Fastify()
  await a.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore() })
  await a.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' })
  a.addHook('onRequest', (req, reply, done) => {
    if (req.method === 'GET' || req.method === 'HEAD') done()
    else a.csrfProtection(req, reply, done)
  })
  a.get('/form', async (_req, reply) => ({ token: reply.generateCsrf() }))
  a.post('/transfer', async () => ({ done: true }))
  await a.ready()
  const form = await a.inject({ url: '/form' })
  const cookie = sessionCookie(form) ?? ''
  const { token } = form.json()
  assert.equal((await a.inject({ method: 'POST', url: '/transfer', headers: { cookie } })).statusCode, 403, 'no token')
  assert.equal((await a.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'csrf-token': 'forged' } })).statusCode, 403, 'a forged token')
  const ok = await a.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'csrf-token': token } })
  assert.deepEqual(ok.json(), { done: true })
  await a.close()
})

test('recipe: @fastify/csrf-protection tokens for signed-in sessions only create no anonymous session per GET, and a logout, revokeUser or revokeAll ends the token with the session', async () => {
  const store = createMemoryStore()
  const a = Fastify()
  await a.register(hardenedSession, { secrets: [SECRET], store })
  await a.register(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' })
  a.addHook('onRequest', (req, reply, done) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.url === '/login') done()
    else a.csrfProtection(req, reply, done)
  })
  a.get('/csrf', { preHandler: a.requireLogin }, async (_req, reply) => ({ token: reply.generateCsrf() }))
  a.post('/login', async (req) => { await req.session.login((req.body as { user: string }).user); return { ok: true } })
  a.post('/logout', async (req) => { await req.session.logout(); return { ok: true } })
  a.post('/transfer', async () => ({ done: true }))
  await a.ready()
  const anonymous = await a.inject({ url: '/csrf' })
  assert.equal(anonymous.statusCode, 401)
  assert.equal(anonymous.headers['set-cookie'], undefined, 'no session for a visitor who only asked for a token')
  const signedIn = async (user: string): Promise<{ cookie: string, token: string }> => {
    const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login', payload: { user } })) ?? ''
    return { cookie, token: (await a.inject({ url: '/csrf', headers: { cookie } })).json().token }
  }
  const transfer = async (cookie: string, token: string): Promise<number> =>
    (await a.inject({ method: 'POST', url: '/transfer', headers: { cookie, 'csrf-token': token } })).statusCode
  const alice = await signedIn('alice')
  assert.equal(await transfer(alice.cookie, alice.token), 200)
  // Logout: the session, and the token secret in it, are gone; a new session does not take the old token.
  await a.inject({ method: 'POST', url: '/logout', headers: { cookie: alice.cookie, 'csrf-token': alice.token } })
  const again = await signedIn('alice')
  assert.equal(await transfer(again.cookie, alice.token), 403, 'a token of the ended session')
  assert.equal(await transfer(again.cookie, again.token), 200)
  // revokeUser: the same.
  await a.session.revokeUser('alice')
  const fresh = await signedIn('alice')
  assert.equal(await transfer(fresh.cookie, again.token), 403, 'a token of a revoked session')
  assert.equal(await transfer(fresh.cookie, fresh.token), 200)
  // revokeAll: the same.
  await a.session.revokeAll()
  const after = await signedIn('alice')
  assert.equal(await transfer(after.cookie, fresh.token), 403, 'a token of a session revokeAll ended')
  await a.close()
})

test('csrf: a cross-site unsafe request without the session cookie runs, but is never given a session (no planted cookie, no login)', async () => {
  const a = await app()
  let ran = 0
  a.post('/count', async () => { ran++; return { ok: true } })
  await a.ready()
  const foreign = { origin: 'https://evil.example', host: 'app.example.com' }
  assert.equal((await a.inject({ method: 'POST', url: '/count', headers: foreign })).statusCode, 200, 'a request that sets nothing passes')
  assert.equal(ran, 1)
  const write = await a.inject({ method: 'POST', url: '/write', headers: foreign })
  assert.equal(write.statusCode, 403)
  assert.equal(write.json().code, 'FST_SESSION_CSRF')
  assert.equal(write.headers['set-cookie'], undefined, 'no session cookie for a foreign page to plant')
  const login = await a.inject({ method: 'POST', url: '/login', headers: { 'sec-fetch-site': 'cross-site' } })
  assert.equal(login.statusCode, 403)
  assert.equal(login.headers['set-cookie'], undefined)
  await a.close()
})

test('csrf: Sec-Fetch-Site same-origin is trusted even when Origin is null (Referrer-Policy: no-referrer forms)', async () => {
  const a = await app()
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' })) ?? ''
  const res = await a.inject({ method: 'POST', url: '/write', headers: { cookie, origin: 'null', 'sec-fetch-site': 'same-origin' } })
  assert.equal(res.statusCode, 200)
  await a.close()
})

test('csrf: a GET route marked config.session.stateChanging is origin-checked like an unsafe request (403 before the handler, no store call); other GETs are not', async () => {
  const { store, calls } = counted()
  const a = await app({ store })
  let confirmed = 0
  a.get('/confirm', { config: { session: { stateChanging: true } } }, async (req) => { confirmed++; req.session.set('confirmed', true); return { ok: true } })
  await a.ready()
  const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/login' })) ?? ''
  const before = calls()
  for (const method of ['GET', 'HEAD'] as const) {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'https://sibling.example.com', 'sec-fetch-site': 'same-site' }]) {
      const res = await a.inject({ method, url: '/confirm', headers: { cookie, host: 'app.example.com', ...headers } })
      assert.equal(res.statusCode, 403, `${method} ${JSON.stringify(headers)}`)
    }
  }
  assert.equal(confirmed, 0)
  assert.equal(calls(), before, 'no store access for a refused request')
  assert.equal((await a.inject({ url: '/me', headers: { cookie, host: 'app.example.com', origin: 'https://evil.example' } })).statusCode, 200, 'an unmarked GET')
  const own = await a.inject({ url: '/confirm', headers: { cookie, host: 'app.example.com', origin: 'http://app.example.com', 'sec-fetch-site': 'same-origin' } })
  assert.deepEqual(own.json(), { ok: true })
  const planted = await a.inject({ url: '/confirm', headers: { host: 'app.example.com', 'sec-fetch-site': 'cross-site' } })
  assert.equal(planted.statusCode, 403, 'without the cookie it runs, but a foreign page gets no session to write')
  assert.equal(planted.headers['set-cookie'], undefined)
  await a.close()
})

test('routes: a malformed config.session fails at route registration with FST_SESSION_INVALID_OPTION, naming the key', async () => {
  for (const [config, detail] of [[{ session: { stateChanginG: true } }, /did you mean 'route GET \/x: config\.session\.stateChanging'/], [{ session: 'yes' }, /config\.session must be false, true or \{ stateChanging: boolean \}/], [{ session: { stateChanging: 1 } }, /stateChanging must be a boolean/]] as const) {
    const a = await app()
    assert.throws(() => a.get('/x', { config: config as never }, async () => 'x'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_SESSION_INVALID_OPTION')
      assert.match(err.message, detail)
      return true
    })
    await a.close()
  }
})
