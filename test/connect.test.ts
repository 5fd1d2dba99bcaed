/**
 * Store connection at register time (lib/store/connect.ts): register never hangs, errors that
 * retrying cannot fix end it at once, the real first error is the `cause` and is logged without
 * credentials, plaintext across the network is refused in production, and the plugin's own
 * client reconnects by itself forever once it has started. Real redis-servers (plain, with ACL
 * users, TLS and mTLS), started here; a name lookup is answered by a test function, never DNS.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { LookupFunction } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createClient } from 'redis'
import hardenedSession, { type HardenedSessionOptions } from '../lib/index.ts'
import { checkTransport, classify, isLoopback, scrub, targetOf } from '../lib/store/connect-errors.ts'
import { captureLogs, eventually, login, SECRET, buildApp } from './helpers/app.ts'
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.ts'
import { startTlsRedis, type TlsRedisServer } from './helpers/tls.ts'

const PASSWORD = 'pw-never-logged-7f3a9c'
let redis: RedisServer // ACL user `app` with PASSWORD; the default user stays open for the test's admin commands
let tls: TlsRedisServer // client certificate required
before(async () => {
  ;[redis, tls] = await Promise.all([startRedis(), startTlsRedis({ requireClientCert: true })])
  await redis.command('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all')
})
after(async () => {
  await redis?.stop()
  await tls?.stop()
})

interface Outcome {
  error: (Error & { code?: string, cause?: unknown }) | undefined
  ms: number
  lines: Array<Record<string, unknown>>
  app: FastifyInstance
}

/** Registers the plugin with these options; the error (if any), how long it took, the log lines. */
async function register (options: Partial<HardenedSessionOptions>, server: FastifyServerOptions = {}): Promise<Outcome> {
  const { lines, logger } = captureLogs('debug')
  const app = Fastify({ ...server, logger })
  const start = Date.now()
  let error: Outcome['error']
  try {
    await app.register(hardenedSession, { secrets: [SECRET], ...options } as HardenedSessionOptions)
    await app.ready()
  } catch (err) {
    error = err as Outcome['error']
  }
  return { error, ms: Date.now() - start, lines, app }
}

/** The log lines as one text, to search for what must never be there. */
function text (lines: Array<Record<string, unknown>>): string {
  return lines.map((l) => JSON.stringify(l)).join('\n')
}

function codeOf (err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code
}

async function closedPort (): Promise<number> {
  return await freePort() // nothing listens there once freePort has closed its probe
}

describe('connect: register fails with the real cause', () => {
  test('register: a refused port fails with FST_SESSION_STORE_UNAVAILABLE within connectTimeout, cause ECONNREFUSED, logged with host:port', async () => {
    const port = await closedPort()
    const { error, ms, lines, app } = await register({ redis: { url: `redis://app:${PASSWORD}@127.0.0.1:${port}` }, connectTimeout: 1000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(codeOf(error?.cause), 'ECONNREFUSED')
    assert.ok(ms < 3000, `failed after ${ms} ms`)
    const logged = text(lines)
    assert.match(logged, new RegExp(`127\\.0\\.0\\.1:${port}`))
    assert.match(logged, /ECONNREFUSED/)
    assert.ok(!logged.includes(PASSWORD), 'no password in any log line')
    assert.ok(!error?.message.includes(PASSWORD))
  })

  test('register: a wrong password fails at once (long before connectTimeout) with the WRONGPASS reply as cause, the password in no log line', async () => {
    const { error, ms, lines, app } = await register({ redis: { url: `redis://app:wrong-${PASSWORD}@127.0.0.1:${redis.port}` }, connectTimeout: 8000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.match(String((error?.cause as Error | undefined)?.message), /^WRONGPASS/)
    assert.match(error?.message ?? '', /refused the credentials/)
    assert.ok(ms < 2000, `failed after ${ms} ms, not at once`)
    assert.equal(lines.filter((l) => l.level === 50).length, 1, 'one error line')
    assert.ok(!text(lines).includes(PASSWORD))
  })

  test('register: no password where the server needs one fails at once with NOAUTH as cause', async () => {
    const server = await startRedis()
    try {
      await server.command('CONFIG', 'SET', 'requirepass', PASSWORD)
      const { error, ms, app } = await register({ redis: { url: server.url }, connectTimeout: 8000 })
      await app.close()
      assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
      assert.match(String((error?.cause as Error | undefined)?.message), /^NOAUTH/)
      assert.ok(ms < 2000, `failed after ${ms} ms, not at once`)
    } finally {
      await server.stop()
    }
  })

  test('register: an unknown host fails within connectTimeout with ENOTFOUND as cause and a hint', async () => {
    const notFound: LookupFunction = (hostname, _options, callback) => {
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4)
    }
    const { error, ms, lines, app } = await register({ redis: { url: 'redis://sessions.example:6379', socket: { lookup: notFound } as never }, connectTimeout: 1000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(codeOf(error?.cause), 'ENOTFOUND')
    assert.ok(ms < 3000, `failed after ${ms} ms`)
    assert.match(text(lines), /does not resolve/)
  })

  test('register: TLS to a plaintext port fails within connectTimeout with the real error as cause', async () => {
    const { error, ms, lines, app } = await register({ redis: { url: `rediss://127.0.0.1:${redis.port}` }, connectTimeout: 1000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.ok(error?.cause instanceof Error, 'a real error, not just a timer')
    assert.ok(ms < 3000, `failed after ${ms} ms`)
    assert.ok(lines.some((l) => l.level === 50))
  })

  test('register: plaintext to a TLS port fails within connectTimeout, cause ECONNRESET, with a hint to use rediss://', async () => {
    const { error, ms, lines, app } = await register({ redis: { url: `redis://127.0.0.1:${tls.tlsPort}` }, connectTimeout: 1000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(codeOf(error?.cause), 'ECONNRESET')
    assert.ok(ms < 3000, `failed after ${ms} ms`)
    assert.match(text(lines), /rediss:\/\//)
  })

  test('register: the TLS handshake refused for a missing client certificate fails at once (it used to hang), cause ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', async () => {
    const { error, ms, lines, app } = await register({ redis: { socket: tls.socketOptions('none') }, connectTimeout: 8000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(codeOf(error?.cause), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    assert.match(error?.message ?? '', /TLS handshake/)
    assert.ok(ms < 2000, `failed after ${ms} ms, not at once`)
    assert.match(text(lines), /client certificate/)
  })

  test('register: an untrusted server certificate and a client certificate from another CA fail at once', async () => {
    const untrusted = await register({ redis: { socket: { ...tls.socketOptions('client'), ca: undefined } as never }, connectTimeout: 8000 })
    const otherCa = await register({ redis: { socket: tls.socketOptions('otherClient') }, connectTimeout: 8000 })
    await untrusted.app.close()
    await otherCa.app.close()
    assert.equal(codeOf(untrusted.error?.cause), 'SELF_SIGNED_CERT_IN_CHAIN')
    assert.equal(codeOf(otherCa.error?.cause), 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')
    for (const o of [untrusted, otherCa]) {
      assert.equal(o.error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
      assert.ok(o.ms < 2000, `failed after ${o.ms} ms, not at once`)
    }
  })

  test('register: with the default connectTimeout (10 s) and a shorter Fastify pluginTimeout, the error is ours (with its cause), not Fastify\'s timeout', async () => {
    const port = await closedPort()
    const { error, ms, lines, app } = await register({ redis: { url: `redis://127.0.0.1:${port}` } }, { pluginTimeout: 4000 })
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(codeOf(error?.cause), 'ECONNREFUSED')
    assert.ok(ms < 4000, `failed after ${ms} ms`) // 4000 less a quarter: gives up after 3000 ms, well before the 10 s connectTimeout
    assert.match(text(lines), /pluginTimeout/)
  })

  test('register: a bad redis.url fails with FST_SESSION_STORE_OPTION and never repeats the URL', async () => {
    const urls = [`http://app:${PASSWORD}@localhost:6379`, `redis//app:${PASSWORD}@localhost`, `redis://app:${PASSWORD}@localhost:6379/db`]
    for (const url of urls) {
      const { error, app } = await register({ redis: { url } })
      await app.close()
      assert.equal(error?.code, 'FST_SESSION_STORE_OPTION', url)
      assert.ok(!error?.message.includes(PASSWORD), 'no password in the message')
      assert.equal(error?.cause, undefined, 'no cause that could quote the URL')
    }
    const mismatch = await register({ redis: { url: `redis://app:${PASSWORD}@127.0.0.1:${redis.port}`, socket: { tls: true } as never } })
    await mismatch.app.close()
    assert.equal(mismatch.error?.code, 'FST_SESSION_STORE_OPTION')
    assert.ok(!mismatch.error?.message.includes(PASSWORD))
  })
})

describe('connect: a client the application made', () => {
  test('client: wrong credentials on a client that is not open fail register at once; the plugin does not close the client', async () => {
    const client = createClient({ url: `redis://app:wrong@127.0.0.1:${redis.port}`, RESP: 3, clientSideCache: { maxEntries: 10 } })
    const seen: unknown[] = []
    client.on('error', (err) => { seen.push(err) }) // the application's own listener
    try {
      const { error, ms, app } = await register({ redis: client as never, connectTimeout: 8000 })
      await app.close()
      assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
      assert.match(String((error?.cause as Error | undefined)?.message), /^WRONGPASS/)
      assert.ok(ms < 2000, `failed after ${ms} ms, not at once`)
      assert.equal(client.isOpen, true, 'still the application\'s: open (retrying with its own strategy), not closed by the plugin')
    } finally {
      client.destroy()
    }
  })

  test('client: an unreachable server fails register within connectTimeout without closing the client', async () => {
    const port = await closedPort()
    const client = createClient({ url: `redis://127.0.0.1:${port}`, RESP: 3, clientSideCache: { maxEntries: 10 } })
    client.on('error', () => {})
    try {
      const { error, ms, app } = await register({ redis: client as never, connectTimeout: 1000 })
      await app.close()
      assert.equal(error?.code, 'FST_SESSION_STORE_UNAVAILABLE')
      assert.equal(codeOf(error?.cause), 'ECONNREFUSED')
      assert.ok(ms < 3000, `failed after ${ms} ms`)
      assert.equal(client.isOpen, true)
    } finally {
      client.destroy()
    }
  })
})

describe('connect: transport in production', () => {
  // A lookup that answers 127.0.0.1 for any name: the host is "not loopback" by name, yet no
  // packet leaves this machine whatever the code under test does.
  const local: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all === true) (callback as unknown as (e: null, a: Array<{ address: string, family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }])
    else callback(null, '127.0.0.1', 4)
  }
  const withEnv = async <T>(value: string, body: () => Promise<T>): Promise<T> => {
    const saved = process.env.NODE_ENV
    process.env.NODE_ENV = value
    try {
      return await body()
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV
      else process.env.NODE_ENV = saved
    }
  }

  test('transport: NODE_ENV=production and plaintext to a non-loopback host fails with FST_SESSION_INSECURE_TRANSPORT before any connection', async () => {
    const before = await redis.totalCalls()
    const { error, app } = await withEnv('production', () => register({ redis: { url: `redis://app:${PASSWORD}@sessions.example:${redis.port}`, socket: { lookup: local } as never } }))
    await app.close()
    assert.equal(error?.code, 'FST_SESSION_INSECURE_TRANSPORT')
    assert.match(error?.message ?? '', /rediss:\/\/|allowPlaintext/)
    assert.equal(await redis.totalCalls(), before, 'no command reached Redis')
  })

  test('transport: redis.allowPlaintext: true, loopback hosts, and other NODE_ENVs connect in plaintext', async () => {
    const remote = { url: `redis://app:${PASSWORD}@sessions.example:${redis.port}`, socket: { lookup: local } as never }
    const cases = [
      await withEnv('production', () => register({ redis: { ...remote, allowPlaintext: true } })),
      await withEnv('production', () => register({ redis: { url: `redis://app:${PASSWORD}@127.0.0.1:${redis.port}` } })),
      await withEnv('production', () => register({ redis: { url: `redis://app:${PASSWORD}@localhost:${redis.port}` } })),
      await withEnv('development', () => register({ redis: remote })),
    ]
    for (const { error, app } of cases) {
      assert.equal(error, undefined)
      await app.session.revokeAll() // a store call: the connection works
      await app.close()
    }
  })

  test('transport: the production refusal says once what is refused, then why and what to do', () => {
    const err = (() => {
      try {
        checkTransport(targetOf({ url: 'redis://10.0.0.5:6379' }), false, 'production')
      } catch (e) {
        return e as Error
      }
      throw new Error('accepted')
    })()
    assert.equal(err.message, 'Refusing a plaintext Redis connection across the network in production: the host is not loopback and NODE_ENV is production; ' +
      'use rediss:// or socket.tls (TLS), or set redis.allowPlaintext: true for a private network you trust')
    for (const word of ['plaintext', 'in production', 'non-loopback']) assert.ok(err.message.split(word).length <= 2, `"${word}" at most once`)
  })

  test('transport: the rule as a function — TLS, unix sockets and loopback pass; plaintext elsewhere only with allowPlaintext', () => {
    const remote = targetOf({ url: 'redis://10.0.0.5:6379' })
    assert.throws(() => checkTransport(remote, false, 'production'), { code: 'FST_SESSION_INSECURE_TRANSPORT' })
    checkTransport(remote, true, 'production')
    checkTransport(remote, false, 'development')
    checkTransport(remote, false, undefined)
    checkTransport(targetOf({ url: 'rediss://10.0.0.5:6379' }), false, 'production')
    checkTransport(targetOf({ socket: { host: 'cache.internal', tls: true } }), false, 'production')
    checkTransport(targetOf({ socket: { path: '/run/redis.sock' } }), false, 'production')
    checkTransport(targetOf({ url: 'unix:///run/redis.sock' }), false, 'production')
    for (const host of ['localhost', '127.0.0.1', '127.8.9.10', '::1', '[::1]', '::ffff:127.0.0.1', 'api.localhost']) assert.ok(isLoopback(host), host)
    for (const host of ['10.0.0.1', '192.168.1.1', 'redis', 'localhost.example.com', '::ffff:10.0.0.1', '128.0.0.1']) assert.ok(!isLoopback(host), host)
  })
})

describe('connect: after the first ready', () => {
  test('recovery: once started, the plugin\'s client keeps reconnecting through auth errors and recovers by itself', async () => {
    const server = await startRedis()
    try {
      await server.command('ACL', 'SETUSER', 'app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all')
      const app = await buildApp({ redis: { url: `redis://app:${PASSWORD}@127.0.0.1:${server.port}` }, storeTimeout: 300 })
      try {
        const cookie = await login(app, 'u-recover')
        await app.inject({ url: '/me', headers: { cookie } })
        // The password changes under the running app and its connection drops.
        await server.command('ACL', 'SETUSER', 'app', 'resetpass', '>another-password')
        await server.command('CLIENT', 'KILL', 'USER', 'app')
        await eventually(async () => (await app.inject({ url: '/me', headers: { cookie } })).statusCode === 503, 2000, '503 while Redis refuses the credentials')
        // It goes on trying (and being refused) instead of giving up as it would before its first ready.
        const refused = async (): Promise<number> => Number(/errorstat_WRONGPASS:count=(\d+)/.exec(await server.command('INFO', 'errorstats'))?.[1] ?? 0)
        await eventually(async () => await refused() >= 3, 5000, 'three refused reconnect attempts')
        await server.command('ACL', 'SETUSER', 'app', 'resetpass', `>${PASSWORD}`)
        await eventually(async () => (await app.inject({ url: '/me', headers: { cookie } })).json().user === 'u-recover', 5000, 'serves the session again')
      } finally {
        await app.close()
      }
    } finally {
      await server.stop()
    }
  })
})

describe('connect: classification and scrubbing', () => {
  test('classify: credentials, permissions and TLS are final; network errors and a loading server are retried', async () => {
    const { ErrorReply, ConnectionTimeoutError } = await import('redis')
    assert.equal(classify(new ErrorReply('WRONGPASS invalid username-password pair')), 'auth')
    assert.equal(classify(new ErrorReply('NOAUTH HELLO must be called with the client already authenticated')), 'auth')
    assert.equal(classify(new ErrorReply('NOPERM this user has no permissions to run the \'client|tracking\' command')), 'permission')
    assert.equal(classify(new ErrorReply('LOADING Redis is loading the dataset in memory')), 'retry')
    assert.equal(classify(new ErrorReply('ERR unknown subcommand \'TRACKING\'')), 'handshake')
    assert.equal(classify(new ConnectionTimeoutError()), 'retry')
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH']) {
      assert.equal(classify(Object.assign(new Error(code), { code })), 'retry', code)
    }
    for (const code of ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
      assert.equal(classify(Object.assign(new Error(code), { code })), 'tls', code)
    }
  })

  test('scrub: credentials in URLs and AUTH arguments are masked in logged messages', () => {
    assert.equal(scrub('cannot reach redis://app:s3cret@cache:6379/0'), 'cannot reach redis://***@cache:6379/0')
    assert.equal(scrub('rediss://:s3cret@cache'), 'rediss://***@cache')
    assert.ok(!scrub('AUTH app s3cret failed').includes('s3cret'))
  })
})
