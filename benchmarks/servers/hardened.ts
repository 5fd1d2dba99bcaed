/**
 * This plugin, on the shared route shape.
 *
 *   node --import tsx benchmarks/servers/hardened.ts --redis-url redis://127.0.0.1:PORT [--encryption] [--cache-size N] [--lib DIR]
 *   node --import tsx benchmarks/servers/hardened.ts --redis-urls redis://127.0.0.1:P1,redis://… (a Redis Cluster)
 *   node --import tsx benchmarks/servers/hardened.ts --store memory
 *
 * `GET /__bench/stats` (no session) answers `fastify.session.stats()` so the harness can report
 * client-side cache hits and misses during a run. `POST /__bench/sessions` with `{ count }`
 * logs in `count` sessions, one user each, and answers their cookies (for working-set loads).
 */
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { compiledLib } from '../harness/compiled-lib.ts'
import type * as Lib from '../../lib/index.ts'
import type { HardenedSessionOptions, Session } from '../../lib/index.ts'
import { argValue, cartFor, cartNumber, PROFILE, SECRET, serve, THEME, USER } from './common.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

// The plugin compiled as published (harness/compiled-lib.ts): of this checkout, or with
// `--lib DIR` of another one (the harness's `--against`), same routes.
const libDir = argValue('lib')
const compiled = compiledLib(libDir === undefined ? REPO_ROOT : resolve(libDir), REPO_ROOT)
const lib = (await import(pathToFileURL(join(compiled, 'index.js')).href)) as typeof Lib
const { default: hardenedSession, createMemoryStore, generateEncryptionKey } = lib

// storeTimeout 5 s instead of 1 s: on a shared, overloaded machine a store call can stall past
// 1 s and answer 503, which fails the run; the timeout changes no per-request work.
const options: HardenedSessionOptions = { secrets: [SECRET], storeTimeout: 5000 }
const clusterUrls = argValue('redis-urls')
if (argValue('store') === 'memory') options.store = createMemoryStore()
else if (clusterUrls !== undefined) options.redis = { cluster: { rootNodes: clusterUrls.split(',').map((url) => ({ url })) } }
else options.redis = { url: argValue('redis-url') ?? 'redis://127.0.0.1:6379' }
const cacheSize = argValue('cache-size')
if (cacheSize !== undefined) options.cacheSize = Number(cacheSize)
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
  await session(req).login(USER, { theme: THEME, profile: PROFILE })
  return { ok: true }
})
app.get('/me', async (req) => ({ user: session(req).userId, theme: session(req).get('theme') }))
app.post('/write', async (req) => {
  session(req).set('cart', cartFor(req.body))
  return { ok: true }
})
app.get('/n', async (req) => ({ n: cartNumber(session(req).get('cart')) }))
app.post('/logout', async (req) => {
  await session(req).logout()
  return { ok: true }
})
app.get('/__bench/stats', { config: { session: false } }, async () => app.session.stats())
app.post('/__bench/login-as', async (req) => {
  await session(req).login((req.body as { user: string }).user, { theme: THEME, profile: PROFILE })
  return { ok: true }
})
app.post('/__bench/sessions', { config: { session: false } }, async (req) => {
  const count = Number((req.body as { count?: unknown } | null)?.count ?? 0)
  const cookies: string[] = []
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) =>
      app.inject({ method: 'POST', url: '/__bench/login-as', payload: { user: `ws-${i + j}` } })))
    for (const res of batch) {
      const header = res.headers['set-cookie']
      const line = (Array.isArray(header) ? header : [header ?? '']).find((c) => c.startsWith('__Host-sid='))
      if (res.statusCode !== 200 || line === undefined) throw new Error(`bulk login failed: ${res.statusCode}`)
      cookies.push(line.split(';')[0] as string)
    }
  }
  return { cookies }
})

await serve(app)
