/**
 * Alternative: @fastify/session with connect-redis (node-redis), on the shared route shape.
 * Library defaults except `saveUninitialized: false` (no session for anonymous requests) and
 * `cookie.secure: false` (the benchmark speaks plain HTTP on loopback; with `secure: true`
 * @fastify/session would not send the cookie at all). `rolling` stays at its default (true).
 *
 *   node --import tsx benchmarks/servers/fastify-session.ts --redis-url redis://127.0.0.1:PORT
 */
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import { createClient } from 'redis'
import { argValue, importUntyped, SECRET, serve, PROFILE, THEME, USER, cartFor, cartNumber } from './common.ts'
import type { LegacySession } from './common.ts'

const { default: fastifyCookie } = await importUntyped('@fastify/cookie')
const { default: fastifySession } = await importUntyped('@fastify/session')
const { RedisStore } = await importUntyped('connect-redis')

interface FastifySessionObject extends LegacySession {
  regenerate (): Promise<void>
  destroy (): Promise<void>
}
const session = (req: FastifyRequest): FastifySessionObject => (req as unknown as { session: FastifySessionObject }).session

const client = createClient({ url: argValue('redis-url') ?? 'redis://127.0.0.1:6379' })
await client.connect()

const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: SECRET,
  store: new RedisStore({ client }),
  saveUninitialized: false,
  cookie: { secure: false, httpOnly: true, sameSite: 'lax', maxAge: 30 * 60_000 },
})
app.addHook('onClose', async () => { await client.close() })

app.post('/login', async (req) => {
  await session(req).regenerate()
  session(req).set('userId', USER)
  session(req).set('theme', THEME)
  session(req).set('profile', PROFILE)
  return { ok: true }
})
app.get('/me', async (req) => ({ user: session(req).get('userId'), theme: session(req).get('theme') }))
app.post('/write', async (req) => {
  session(req).set('cart', cartFor(req.body))
  return { ok: true }
})
app.get('/n', async (req) => ({ n: cartNumber(session(req).get('cart')) }))
app.post('/logout', async (req) => {
  await session(req).destroy()
  return { ok: true }
})

await serve(app)
