/** A small app with the routes the behaviour tests drive, and cookie helpers. */
import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import { Writable } from 'node:stream'
import hardenedSession, { type HardenedSessionOptions } from '../../lib/index.ts'
import { storageHash } from '../../lib/crypto/ids.ts'

export const SECRET = 'test-secret-0123456789-abcdefghijklmnop'

export async function buildApp (options: Partial<HardenedSessionOptions>, server: FastifyServerOptions = {}, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify(server)
  await app.register(hardenedSession, { secrets: [SECRET], ...options } as HardenedSessionOptions)
  app.post('/login', async (req) => {
    const body = (req.body ?? {}) as { user?: string, data?: object, keep?: string[] }
    await req.session.login(body.user ?? 'user-1', body.data, body.keep === undefined ? undefined : { keep: body.keep })
    return { ok: true, ref: req.session.ref }
  })
  app.get('/ref', async (req) => ({ ref: req.session.ref, user: req.session.userId ?? null }))
  app.post('/revoke-others', async (req) => ({ revoked: await req.session.revokeOthers() }))
  app.get('/me', async (req) => ({ user: req.session.userId ?? null, theme: req.session.get('theme') ?? null, isNew: req.session.isNew }))
  app.get('/get/:key', async (req) => ({ value: req.session.get((req.params as { key: string }).key) ?? null }))
  app.post('/set', async (req) => {
    for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, unknown>)) req.session.set(key, value)
    return { ok: true }
  })
  app.post('/delete/:key', async (req) => {
    req.session.delete((req.params as { key: string }).key)
    return { ok: true }
  })
  app.post('/logout', async (req) => { await req.session.logout(); return { ok: true } })
  app.post('/destroy', async (req) => { await req.session.destroy(); return { ok: true } })
  app.post('/regenerate', async (req) => { await req.session.regenerate(); return { ok: true } })
  app.get('/anon', async () => ({ ok: true }))
  app.get('/public', { config: { session: false } }, async (req) => ({ hasSession: req.session !== null }))
  app.get('/private', { preHandler: app.requireLogin }, async (req) => ({ user: req.session.userId }))
  app.get('/fresh', { preHandler: app.requireFreshLogin(60_000) }, async () => ({ ok: true }))
  app.get('/stale-ok', { preHandler: app.requireFreshLogin(0) }, async () => ({ ok: true }))
  app.get('/mutate', async (req) => {
    const cart = (req.session.get('cart') ?? []) as string[]
    cart.push('mutated-in-handler')
    return { cart }
  })
  routes?.(app)
  await app.ready()
  return app
}

/** The `name=value` pair of the session cookie set by a response, or undefined. */
export function sessionCookie (res: LightMyRequestResponse, name = '__Host-sid'): string | undefined {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const mine = all.find((c) => c.startsWith(name + '='))
  return mine?.split(';')[0]
}

/** The attributes of one Set-Cookie value, names lower-cased, in any order (`''` for flags). */
export function cookieAttributes (setCookie: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of setCookie.split(';').slice(1)) {
    const [name = '', ...rest] = part.trim().split('=')
    out[name.toLowerCase()] = rest.join('=')
  }
  return out
}

export function setCookieHeader (res: LightMyRequestResponse): string | undefined {
  const header = res.headers['set-cookie']
  return Array.isArray(header) ? header.join('\n') : header
}

export async function login (app: FastifyInstance, user = 'user-1', data?: object): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { user, data } })
  const cookie = sessionCookie(res)
  if (res.statusCode !== 200 || cookie === undefined) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return cookie
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it returns true or `ms` pass; returns the elapsed ms or throws. */
export async function eventually (check: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await check()) return Date.now() - start
    if (Date.now() - start > ms) throw new Error(`${what}: not true within ${ms} ms`)
    await sleep(5)
  }
}

/** The session id in a `name=<id>.<mac>` cookie pair. */
export function idOf (cookie: string): string {
  return cookie.split('=')[1]?.split('.')[0] ?? ''
}

/** The store key of the session a cookie names, under `prefix`. */
export function recordKey (prefix: string, cookie: string): string {
  return prefix + storageHash(idOf(cookie))
}

/** Whether `cookie` is a logged-in session on `app` (any user); the app has buildApp's routes. */
export async function works (app: FastifyInstance, cookie: string): Promise<boolean> {
  return (await app.inject({ url: '/private', headers: { cookie } })).statusCode === 200
}

/**
 * Asserts `cookie` stops working on `app` within the contract's bound: a revocation on one
 * instance is seen by every other before the call's promise resolves + 100 ms.
 */
export async function gone (app: FastifyInstance, cookie: string, what = 'revoked session'): Promise<void> {
  await eventually(async () => !(await works(app, cookie)), 100, `${what} still works`)
}

/** The session's `ref`, as the app's `/ref` route reports it. */
export async function refOf (app: FastifyInstance, cookie: string): Promise<string> {
  return (await app.inject({ url: '/ref', headers: { cookie } })).json().ref
}

/** A Fastify logger option that collects every log line (parsed) into `lines`. */
export function captureLogs (level = 'debug'): { lines: Array<Record<string, unknown>>, logger: FastifyServerOptions['logger'] } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { lines, logger: { level, stream } as FastifyServerOptions['logger'] }
}

/** A clock the test moves by hand (the plugin's `clock` option and the memory store's). */
export function manualClock (start = Date.now()): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

/** A promise the test resolves when it chooses: holds a handler at a point of the test's choosing. */
export function barrier (): { wait: () => Promise<void>, release: () => void, reached: Promise<void> } {
  let release!: () => void
  let arrive!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const reached = new Promise<void>((resolve) => { arrive = resolve })
  return { wait: async () => { arrive(); await gate }, release, reached }
}
