/**
 * docs/migration.md's side-by-side switch, run as written: the page's TypeScript block is
 * extracted to a scratch file inside the package (so that `fastify-hardened-session/side-by-side`
 * resolves to the built package through its `exports` map) and imported. Both plugins run on one
 * real Redis: `@fastify/session` with `connect-redis` (devDependencies), and this one under the
 * decorator name `hardenedSession`. (Its types are checked with the other documentation blocks
 * by test/docs.test.ts; this file loads `@fastify/session` untyped, since both plugins' types of
 * `request.session` cannot share this test program.)
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { ensureBuilt, codeBlocks, root, scratchDir } from './helpers/build.ts'
import { SECRET, sessionCookie } from './helpers/app.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

const LEGACY_SECRET = 'the-old-fastify-session-secret-of-32-chars'

interface MigrationOptions {
  redisUrl: string
  legacySecret: string
  secrets: string[]
  checkPassword: (username: string, password: string) => Promise<string | undefined>
}
/** @fastify/session's request.session, as far as this test uses it. */
interface LegacySession { set (key: string, value: unknown): void, get (key: string): unknown }

let redis: RedisServer
let app: FastifyInstance
before(async () => {
  ensureBuilt()
  redis = await startRedis()
  const page = readFileSync(`${root}docs/migration.md`, 'utf8')
  const blocks = codeBlocks(page, 'ts').filter((b) => b.heading === 'A side-by-side switch')
  assert.equal(blocks.length, 1, 'one TypeScript block under "A side-by-side switch"')
  const file = `${scratchDir('migration')}example.ts`
  writeFileSync(file, (blocks[0] as { code: string }).code)
  const example = await import(file) as { buildApp: (options: MigrationOptions) => Promise<FastifyInstance> }
  app = await example.buildApp({
    redisUrl: redis.url,
    legacySecret: LEGACY_SECRET,
    secrets: [SECRET],
    checkPassword: async (username, password) => username === 'alice' && password === 'correct horse' ? 'u-alice' : undefined,
  })
  // Stands for the application before the switch: how its sessions were made.
  app.post('/before-the-switch/login', async (req) => {
    const legacy = (req as unknown as { session: LegacySession }).session
    legacy.set('userId', (req.body as { userId: string }).userId)
    return { ok: true }
  })
  await app.ready()
})
after(async () => {
  await app?.close()
  await redis?.stop()
})

/** The `name=value` pairs of every cookie a response sets. */
function cookies (res: LightMyRequestResponse): string[] {
  const header = res.headers['set-cookie']
  return (header === undefined ? [] : Array.isArray(header) ? header : [header]).map((c) => c.split(';')[0] as string)
}

async function keys (pattern: string): Promise<string[]> {
  return (await redis.command('KEYS', pattern)).split('\r\n').filter((l) => l.startsWith(pattern.slice(0, -1)))
}

test('migration: the side-by-side example of docs/migration.md runs both plugins on one Redis; old sessions keep working, new logins use this plugin', async () => {
  // A session from before the switch (connect-redis, keys under sess:).
  const before = await app.inject({ method: 'POST', url: '/before-the-switch/login', payload: { userId: 'u-bob' } })
  const legacyCookie = cookies(before).find((c) => c.startsWith('sessionId='))
  assert.ok(legacyCookie !== undefined, 'the old plugin set its cookie')
  assert.equal((await keys('sess:*')).length, 1, 'connect-redis stored the old session')
  assert.deepEqual((await app.inject({ url: '/me', headers: { cookie: legacyCookie } })).json(), { userId: 'u-bob' }, 'an old session still signs its user in')
  assert.equal((await app.inject({ url: '/me' })).statusCode, 401)

  // A new login: this plugin's session, the old one of that browser ended.
  assert.equal((await app.inject({ method: 'POST', url: '/login', payload: { username: 'alice', password: 'wrong' } })).statusCode, 401)
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: legacyCookie }, payload: { username: 'alice', password: 'correct horse' } })
  assert.equal(login.statusCode, 200, login.body)
  const cookie = sessionCookie(login)
  assert.ok(cookie !== undefined, 'this plugin set __Host-sid')
  assert.deepEqual((await app.inject({ url: '/me', headers: { cookie } })).json(), { userId: 'u-alice' })
  assert.equal((await app.inject({ url: '/me', headers: { cookie: legacyCookie } })).statusCode, 401, 'the old session ended at the new login')
  assert.deepEqual(await keys('sess:*'), [], 'and left connect-redis')
  assert.ok((await keys('hsess:*')).length >= 2, 'this plugin writes under its own prefix (record, user index)')
  assert.equal((await app.session.listUserSessions('u-alice')).length, 1)

  // Logout ends both.
  const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  assert.equal(out.statusCode, 200)
  assert.equal((await app.inject({ url: '/me', headers: { cookie } })).statusCode, 401)
  assert.equal((await app.session.listUserSessions('u-alice')).length, 0)
})

test('migration: beside @fastify/session, registering with the default decorator fails with FST_SESSION_INVALID_OPTION naming the decorator option', async () => {
  const load = async (name: string): Promise<{ default: unknown }> => await import(name) as { default: unknown }
  const { default: fastifySession } = await load('@fastify/session')
  const { default: hardenedSession } = await load('fastify-hardened-session/side-by-side')
  const other = Fastify()
  await other.register((await load('@fastify/cookie')).default as never)
  await other.register(fastifySession as never, { secret: LEGACY_SECRET })
  await assert.rejects(async () => {
    await other.register(hardenedSession as never, { secrets: [SECRET], redis: { url: redis.url } })
    await other.ready()
  }, (err: { code?: string, message: string }) => {
    assert.equal(err.code, 'FST_SESSION_INVALID_OPTION')
    assert.match(err.message, /request\.session is already decorated \(by @fastify\/session\?\): to run beside it, give this plugin another name, e\.g\. decorator: 'hardenedSession' \(docs\/migration\.md\)/)
    return true
  })
  await other.close()
})
