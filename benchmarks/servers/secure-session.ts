/**
 * Alternative: @fastify/secure-session, the stateless encrypted-cookie session (libsodium
 * secretbox): nothing on the server, so it cannot be revoked before the cookie expires.
 *
 *   node --import tsx benchmarks/servers/secure-session.ts
 */
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import { importUntyped, serve, PROFILE, THEME, USER, cartFor, cartNumber } from './common.ts'
import type { LegacySession } from './common.ts'

const { default: fastifySecureSession } = await importUntyped('@fastify/secure-session')

interface SecureSessionObject extends LegacySession {
  regenerate (): void
  delete (): void
}
const session = (req: FastifyRequest): SecureSessionObject => (req as unknown as { session: SecureSessionObject }).session

const app = Fastify({ logger: false })
await app.register(fastifySecureSession, {
  key: randomBytes(32),
  cookieName: 'session',
  cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false },
})

app.post('/login', async (req) => {
  session(req).regenerate()
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
  session(req).delete()
  return { ok: true }
})

await serve(app)
