/**
 * The store options checked at register (lib/store/option-check.ts): every key inside `redis`
 * (and `redis.socket`, `redis.cluster`, its nodes and defaults) is refused by name unless
 * node-redis or the plugin reads it, with a hint; a store of express-session (connect-redis) is
 * refused with the way to migrate. Register-level cases point `url` at a TCP listener that
 * counts connections: a refused option must fail before any connection is tried (and a run of
 * these tests against a plugin that ignored the key could never reach another Redis).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import Fastify from 'fastify'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions } from '../lib/index.ts'
import { checkRedisOption, checkStoreOption } from '../lib/store/option-check.ts'
import { SECRET } from './helpers/app.ts'

const PASSWORD = 'redis-password-never-echoed-5d1e'

let listener: Server
let connections = 0
const sockets: Socket[] = []
let url: string
before(async () => {
  listener = createServer((socket) => { connections++; sockets.push(socket) })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  url = `redis://127.0.0.1:${(listener.address() as { port: number }).port}`
})
after(async () => {
  for (const s of sockets) s.destroy()
  await new Promise((resolve) => listener.close(resolve))
})

async function registerError (options: Partial<HardenedSessionOptions>): Promise<{ code?: string, message: string }> {
  const app = Fastify()
  try {
    await app.register(hardenedSession, { secrets: [SECRET], connectTimeout: 1000, ...options } as HardenedSessionOptions)
    await app.ready()
  } catch (err) {
    return err as { code?: string, message: string }
  } finally {
    await app.close()
  }
  throw new Error('register succeeded')
}

/** The message `checkRedisOption` refuses `redis` with (throws if it accepts it). */
function refusal (redis: unknown): string {
  try {
    checkRedisOption(redis)
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'FST_SESSION_STORE_OPTION')
    return (err as Error).message
  }
  throw new Error('accepted')
}

describe('store options: the keys inside redis', () => {
  test('store options: redis { host, port } (an ioredis habit) is refused naming host, pointing to url or socket', () => {
    assert.match(refusal({ host: '127.0.0.1', port: 6380 }), /unknown option 'redis\.host' \(use url: 'redis:\/\/host:port', 'rediss:\/\/…' for TLS, or socket: \{ host, port \}\)/)
    assert.match(refusal({ port: 6380 }), /unknown option 'redis\.port' \(use url: /)
    assert.match(refusal({ url: 'redis://x', tls: true }), /'redis\.tls' \(use a rediss:\/\/ url, or socket: \{ tls: true/)
    assert.match(refusal({ url: 'redis://x', db: 2 }), /'redis\.db' \(use 'database'\)/)
  })

  test('store options: a misspelt key in redis, redis.socket, the cluster, a node or its defaults is refused with did-you-mean', () => {
    assert.match(refusal({ url: 'redis://x', pasword: PASSWORD }), /unknown option 'redis\.pasword' \(did you mean 'password'\?\)/)
    assert.match(refusal({ url: 'redis://x', usename: 'app' }), /'redis\.usename' \(did you mean 'username'\?\)/)
    assert.match(refusal({ socket: { host: 'h', rejectUnauthorised: false } }), /'redis\.socket\.rejectUnauthorised' \(did you mean 'rejectUnauthorized'\?\)/)
    assert.match(refusal({ socket: { tls: true, servrname: 'h' } }), /'redis\.socket\.servrname' \(did you mean 'servername'\?\)/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }], useReplica: true } }), /'redis\.cluster\.useReplica' \(did you mean 'useReplicas'\?\)/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }, { host: 'h', port: 1 }] } }), /'redis\.cluster\.rootNodes\[1\]\.host' \(use url: /)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }], defaults: { pasword: PASSWORD } } }), /'redis\.cluster\.defaults\.pasword' \(did you mean 'password'\?\)/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }], defaults: { socket: { tls: true, ca: 'x', kye: 'y' } } } }), /'redis\.cluster\.defaults\.socket\.kye' \(did you mean 'key'\?\)/)
    assert.match(refusal({ url: 'redis://x', cluster: { rootNodes: [{ url: 'redis://x' }] } }), /move 'url' into redis\.cluster/)
  })

  test('store options: keys the plugin sets itself (RESP, clientSideCache, keyPrefix, commandOptions, …) are refused with the reason', () => {
    assert.match(refusal({ url: 'redis://x', RESP: 2 }), /'redis\.RESP' is set by the plugin: the plugin always speaks RESP3.*make the client and pass it as redis/)
    assert.match(refusal({ url: 'redis://x', keyPrefix: 'app:' }), /'redis\.keyPrefix' is set by the plugin: use the plugin's top-level 'keyPrefix'/)
    assert.match(refusal({ url: 'redis://x', clientSideCache: { ttl: 0 } }), /'redis\.clientSideCache' is set by the plugin/)
    assert.match(refusal({ url: 'redis://x', commandOptions: { timeout: 5 } }), /'redis\.commandOptions' is set by the plugin: the plugin bounds each store call by 'storeTimeout'/)
    assert.match(refusal({ url: 'redis://x', disableOfflineQueue: false }), /'redis\.disableOfflineQueue' is set by the plugin/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }], RESP: 2 } }), /'redis\.cluster\.RESP' is set by the plugin/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: 'redis://x' }], defaults: { disableOfflineQueue: false } } }), /'redis\.cluster\.defaults\.disableOfflineQueue' is set by the plugin/)
  })

  test('store options: url: undefined (REDIS_URL unset) is refused instead of falling back to localhost:6379', () => {
    assert.match(refusal({ url: undefined }), /redis\.url is missing \(is REDIS_URL set\?\): give a redis:\/\/ or rediss:\/\/ URL, or leave url out and give socket: \{ host, port \}/)
    assert.match(refusal({ url: '' }), /redis\.url is empty/)
    assert.match(refusal({ cluster: { rootNodes: [{ url: undefined }] } }), /redis\.cluster\.rootNodes\[0\]\.url is missing/)
  })

  test('store options: every option node-redis documents, the plugin\'s own (allowPlaintext, allowEviction) and clients are accepted', () => {
    checkRedisOption({
      url: 'rediss://x',
      username: 'u',
      password: PASSWORD,
      name: 'app',
      database: 1,
      pingInterval: 1000,
      disableClientInfo: true,
      allowPlaintext: false,
      allowEviction: false,
      socket: { tls: true, ca: 'x', cert: 'y', key: 'z', servername: 'h', rejectUnauthorized: true, connectTimeout: 100, reconnectStrategy: false, keepAlive: true, noDelay: true, family: 4 },
    })
    checkRedisOption({ socket: { path: '/run/redis.sock' } })
    checkRedisOption({ cluster: { rootNodes: [{ url: 'redis://x' }], defaults: { password: PASSWORD, socket: { tls: true } }, useReplicas: false, nodeAddressMap: {}, allowPlaintext: true, allowEviction: true } })
    // Root nodes as node-redis leaves them after a cluster client of the application used them.
    checkRedisOption({ cluster: { rootNodes: [{ url: 'redis://x', socket: { reconnectStrategy: false }, RESP: 3, commandOptions: undefined, maintNotifications: 'disabled' }] } })
    // A client the application made is its maker's business: not looked into.
    checkRedisOption(createClient({ url: 'redis://127.0.0.1:1' }))
  })

  test('store options: an ioredis-like client (connect and sendCommand, no isOpen) is refused, naming node-redis', () => {
    const ioredisLike = { status: 'wait', connect: async () => {}, sendCommand: async () => {}, duplicate: () => {} }
    assert.match(refusal(ioredisLike), /a client this plugin cannot drive \(an ioredis client\?\): pass a node-redis client/)
  })

  test('store options: register fails with FST_SESSION_STORE_OPTION before any connection; no value (password, URL) is repeated', async () => {
    const before = connections
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ url, pasword: PASSWORD }, /unknown option 'redis\.pasword' \(did you mean 'password'\?\)/],
      [{ url, host: '127.0.0.1', port: 6380 }, /unknown option 'redis\.host' \(use url: /],
      [{ url, socket: { rejectUnauthorised: false } }, /did you mean 'rejectUnauthorized'/],
      [{ url, keyPrefix: 'app:' }, /'redis\.keyPrefix' is set by the plugin/],
      [{ cluster: { rootNodes: [{ url, pasword: PASSWORD }] } }, /'redis\.cluster\.rootNodes\[0\]\.pasword'/],
    ]
    for (const [redis, message] of cases) {
      const err = await registerError({ redis: redis as HardenedSessionOptions['redis'] })
      assert.equal(err.code, 'FST_SESSION_STORE_OPTION', err.message)
      assert.match(err.message, message)
      assert.ok(!err.message.includes(PASSWORD) && !err.message.includes(url), 'no value in the message')
    }
    const unset = await registerError({ redis: { url: undefined as unknown as string } })
    assert.match(unset.message, /redis\.url is missing \(is REDIS_URL set\?\)/)
    assert.equal(connections, before, 'no connection was tried')
  })
})

describe('store options: the store option', () => {
  test('store options: a connect-redis store given as store fails register with FST_SESSION_STORE_OPTION and the migration hint', async () => {
    const client = createClient({ url: 'redis://127.0.0.1:1' }) // never connected
    const err = await registerError({ store: new RedisStore({ client }) as never })
    assert.equal(err.code, 'FST_SESSION_STORE_OPTION')
    assert.match(err.message, /store is an express-session store \(connect-redis or similar\), whose callback API this plugin does not use: give the plugin its Redis instead — redis: \{ url \} or redis: client .*see docs\/migration\.md/)
  })

  test('store options: an object that is not a SessionStore is refused naming what it lacks; the memory store passes', () => {
    assert.throws(() => checkStoreOption({ peek () {}, get () {} }), /store is not a SessionStore: it lacks read, create, update, …/)
    assert.throws(() => checkStoreOption('memory'), /store must be a SessionStore such as createMemoryStore\(\)/)
    checkStoreOption(createMemoryStore())
  })
})
