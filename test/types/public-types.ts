/**
 * Type tests of the public surface, checked by `npm run typecheck` (tsc over test/).
 * Each `@ts-expect-error` line fails the type-check if it ever stops being an error.
 */
import Fastify, { type FastifyInstance, type preHandlerHookHandler } from 'fastify'
import { createClient, createCluster, createSentinel } from 'redis'
import hardenedSession, {
  createMemoryStore, hashPassword, verifyPassword, needsRehash, generateEncryptionKey,
  SessionError, type SessionErrorCode, type SessionEvent, type SessionInfo, type HardenedSessionOptions,
  type SessionStore,
} from '../../lib/index.ts'

declare module '../../lib/index.ts' {
  interface SessionData {
    theme: 'light' | 'dark'
    cart: string[]
  }
}

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(hardenedSession, { secrets: ['x'.repeat(32)], store: createMemoryStore() })
await app.register(hardenedSession, { secrets: [Buffer.alloc(32)], redis: { url: 'redis://127.0.0.1:6379' } })
await app.register(hardenedSession, { secrets: [Buffer.alloc(32)], redis: { cluster: { rootNodes: [{ url: 'redis://127.0.0.1:7000' }] } } })
// redis: keys node-redis does not read are type errors that name the key ('host' does not exist in type …)
// @ts-expect-error host/port are not connection options (url or socket: { host, port })
await app.register(hardenedSession, { secrets: ['x'], redis: { host: '127.0.0.1', port: 6379 } })
// @ts-expect-error a misspelt key
await app.register(hardenedSession, { secrets: ['x'], redis: { url: 'redis://h', pasword: 'p' } })
// @ts-expect-error keys the plugin sets itself are not options
await app.register(hardenedSession, { secrets: ['x'], redis: { url: 'redis://h', RESP: 2 } })
// Clients the application made: a client, a cluster client, a Sentinel client.
await app.register(hardenedSession, { secrets: ['x'], redis: createClient({ url: 'redis://h', RESP: 3, clientSideCache: { maxEntries: 100 } }) })
await app.register(hardenedSession, { secrets: ['x'], redis: createClient() })
await app.register(hardenedSession, { secrets: ['x'], redis: createCluster({ rootNodes: [{ url: 'redis://h' }], RESP: 3 }) })
await app.register(hardenedSession, { secrets: ['x'], redis: createSentinel({ name: 'm', sentinelRootNodes: [{ host: 'h', port: 26379 }], RESP: 3 }) })
await app.register(hardenedSession, { secrets: ['x'], store: createMemoryStore(), idleTimeout: undefined, decorator: 'session', allowShortDurations: false })
// @ts-expect-error secrets is required
await app.register(hardenedSession, { store: createMemoryStore() })
// @ts-expect-error cookie.sameSite is a closed set
const badCookie: HardenedSessionOptions = { secrets: ['x'], store: createMemoryStore(), cookie: { sameSite: 'loose' } }
expectType<unknown>(badCookie)

app.get('/', async (request) => {
  // request.session, typed by declaration merging of SessionData
  expectType<'light' | 'dark' | undefined>(request.session.get('theme'))
  expectType<string[] | undefined>(request.session.get('cart'))
  request.session.set('theme', 'dark')
  // @ts-expect-error 'blue' is not a theme
  request.session.set('theme', 'blue')
  // @ts-expect-error unknown keys are rejected once SessionData is merged
  request.session.get('nope')
  expectType<string>(request.session.id)
  expectType<boolean>(request.session.isNew)
  expectType<string | undefined>(request.session.userId)
  expectType<Date>(request.session.createdAt)
  expectType<Date>(request.session.expiresAt)
  expectType<Date | undefined>(request.session.authenticatedAt)
  expectType<Promise<void>>(request.session.login('u', { theme: 'light' }))
  expectType<Promise<void>>(request.session.logout())
  expectType<Promise<void>>(request.session.regenerate())
  expectType<Promise<void>>(request.session.destroy())
  return 'ok'
})

// fastify.session, requireLogin, requireFreshLogin, passwords decorators
expectType<Promise<number>>(app.session.revokeUser('u'))
expectType<Promise<SessionInfo[]>>(app.session.listUserSessions('u'))
expectType<{ cacheHits: number, cacheMisses: number }>(app.session.stats())
expectType<preHandlerHookHandler>(app.requireLogin)
expectType<preHandlerHookHandler>(app.requireFreshLogin(60_000))
expectType<Promise<string>>(app.passwords.hash('pw'))
expectType<Promise<boolean>>(app.passwords.verify(null, 'pw'))
expectType<boolean>(app.passwords.needsRehash('$argon2id$...'))
app.get('/public', { config: { session: false } }, async () => 'ok')
app.get('/confirm', { config: { session: { stateChanging: true } } }, async () => 'ok')
// @ts-expect-error config.session.stateChanging is a boolean
app.get('/confirm-2', { config: { session: { stateChanging: 'yes' } } }, async () => 'ok')

// standalone helpers
expectType<Promise<string>>(hashPassword('pw'))
expectType<Promise<boolean>>(verifyPassword(undefined, 'pw'))
expectType<boolean>(needsRehash('h'))
expectType<string>(generateEncryptionKey())
const store: SessionStore = createMemoryStore({ maxEntries: 10 })
expectType<unknown>(store)

// errors: a closed union TypeScript can switch on
function describeError (err: SessionError): string {
  const code: SessionErrorCode = err.code
  switch (code) {
    case 'FST_SESSION_STORE_UNAVAILABLE': return 'retry later'
    case 'FST_SESSION_UNAUTHENTICATED': return 'log in'
    default: return code
  }
}
expectType<unknown>(describeError)
// @ts-expect-error not a code of the table
const badCode: SessionErrorCode = 'FST_SESSION_NOPE'
expectType<unknown>(badCode)

// events
const onEvent = (event: SessionEvent): void => {
  expectType<string | undefined>(event.sessionRef)
  // @ts-expect-error events never carry the id
  expectType<unknown>(event.id)
}
expectType<unknown>(onEvent)

// An event's code is a code of the error table.
export const eventCode = (e: SessionEvent): SessionErrorCode | undefined => e.code

// Session members of the lifecycle contract.
export async function lifecycle (app: FastifyInstance): Promise<[boolean, string | undefined, boolean | undefined, HardenedSessionOptions['deviceBound']]> {
  app.post('/x', async (req) => {
    const ref: string = req.session.ref
    await req.session.login('u', { a: 1 }, { keep: ['a'] })
    const n: number = await req.session.revokeOthers()
    return { ref, n }
  })
  const ok: boolean = await app.session.revokeSession('u', 'ref')
  await app.session.revokeAll()
  const [info] = await app.session.listUserSessions('u')
  const ua: string | undefined = info?.userAgent
  const bound: boolean | undefined = info?.deviceBound
  const device: HardenedSessionOptions['deviceBound'] = { registrationPath: '/r', refreshPath: '/f', cookieMaxAge: 600_000 }
  return [ok, ua, bound, device]
}
