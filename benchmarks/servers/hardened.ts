/**
 * This plugin, on the shared route shape.
 *
 *   node --import tsx benchmarks/servers/hardened.ts --redis-url redis://127.0.0.1:PORT [--encryption]
 *   node --import tsx benchmarks/servers/hardened.ts --store memory
 *
 * `GET /__bench/stats` (no session) answers `fastify.session.stats()` so the harness can report
 * client-side cache hits and misses during a run.
 */
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import hardenedSession, { createMemoryStore, generateEncryptionKey } from '../../lib/index.ts'
import type { HardenedSessionOptions, Session } from '../../lib/index.ts'
import { argValue, SECRET, serve, THEME, USER, writtenNumber } from './common.ts'

const options: HardenedSessionOptions = { secrets: [SECRET] }
if (argValue('store') === 'memory') options.store = createMemoryStore()
else options.redis = { url: argValue('redis-url') ?? 'redis://127.0.0.1:6379' }
if (process.argv.includes('--encryption')) {
  options.encryption = { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: '*' }
}

/**
 * `request.session` with string keys: `SessionData` is merged program-wide (examples/ declares
 * its own keys), and the benchmark must compile whatever an application merges in.
 */
type BenchSession = Pick<Session, 'userId' | 'login' | 'logout'> & {
  get (key: string): unknown
  set (key: string, value: unknown): void
}
const session = (req: FastifyRequest): BenchSession => req.session as unknown as BenchSession

const app = Fastify({ logger: false })
await app.register(hardenedSession, options)

app.post('/login', async (req) => {
  await session(req).login(USER, { theme: THEME })
  return { ok: true }
})
app.get('/me', async (req) => ({ user: session(req).userId, theme: session(req).get('theme') }))
app.post('/write', async (req) => {
  session(req).set('n', writtenNumber(req.body))
  return { ok: true }
})
app.get('/n', async (req) => ({ n: session(req).get('n') }))
app.post('/logout', async (req) => {
  await session(req).logout()
  return { ok: true }
})
app.get('/__bench/stats', { config: { session: false } }, async () => app.session.stats())

await serve(app)
