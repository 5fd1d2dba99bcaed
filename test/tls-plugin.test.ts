/**
 * The plugin over TLS and mutual TLS, end to end: the behavioural suite and the two-instance
 * lifecycle suite against a redis-server that only speaks TLS and requires a client certificate;
 * a TLS-only server without client certificates; a `rediss://` URL; recovery after a restart over
 * TLS; and refusals (no or wrong client certificate, wrong server name) that fail register at
 * once with the real cause.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import hardenedSession from '../lib/index.ts'
import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { buildApp, eventually, login, SECRET } from './helpers/app.ts'
import { startTlsRedis, type TlsRedisServer } from './helpers/tls.ts'

let mtls: TlsRedisServer // TLS only, client certificate required
let tlsOnly: TlsRedisServer // TLS only, no client certificate needed
before(async () => {
  ;[mtls, tlsOnly] = await Promise.all([
    startTlsRedis({ requireClientCert: true }),
    startTlsRedis({ requireClientCert: false }),
  ])
})
after(async () => {
  await mtls?.stop()
  await tlsOnly?.stop()
})

/** Calls of every command but INFO and PING, over TLS. */
async function totalCalls (server: TlsRedisServer): Promise<number> {
  const reply = await server.command('INFO', 'commandstats')
  let total = 0
  for (const m of reply.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) if (m[1] !== 'info' && m[1] !== 'ping' && m[1] !== 'role') total += Number(m[2])
  return total
}

behaviourSuite('redis store over mTLS', {
  options: () => ({ redis: { socket: mtls.socketOptions('client') } }),
  operations: () => totalCalls(mtls),
})

lifecycleSuite('redis store over mTLS', {
  pair: () => [{ redis: { socket: mtls.socketOptions('client') } }, { redis: { socket: mtls.socketOptions('client') } }],
})

describe('tls: the plugin over TLS', () => {
  test('tls: a rediss:// URL with only the CA works on a TLS server without client certificates; a cached read sends no command', async () => {
    const { ca } = tlsOnly.socketOptions('none')
    const app = await buildApp({ redis: { url: tlsOnly.tlsUrl, socket: { ca } as never } })
    try {
      const cookie = await login(app, 'u-tls', { theme: 'dark' })
      await app.inject({ url: '/me', headers: { cookie } })
      const before = await totalCalls(tlsOnly)
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().theme, 'dark')
      assert.equal(await totalCalls(tlsOnly), before, 'cached read over TLS: no command')
      await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
      assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 401)
    } finally {
      await app.close()
    }
  })

  test('tls: after a restart of the mTLS server the plugin reconnects by itself (with its certificate) and serves again', async () => {
    const server = await startTlsRedis({ requireClientCert: true })
    const app = await buildApp({ redis: { socket: server.socketOptions('client') }, storeTimeout: 300 })
    try {
      const cookie = await login(app, 'u-tls-restart')
      await server.kill()
      await eventually(async () => (await app.inject({ url: '/me', headers: { cookie } })).statusCode === 503, 2000, '503 while down')
      await server.restart()
      // The data went with the process (no persistence): a new login works over the new connection.
      await eventually(async () => (await app.inject({ method: 'POST', url: '/login', payload: { user: 'u-after' } })).statusCode === 200, 5000, 'login works again')
    } finally {
      await app.close()
      await server.stop()
    }
  })
})

describe('tls: refusals fail register at once with the real cause', () => {
  const attempt = async (socket: Record<string, unknown>): Promise<{ code?: string, cause?: { code?: string }, ms: number }> => {
    const app = Fastify()
    const start = Date.now()
    try {
      await app.register(hardenedSession, { secrets: [SECRET], redis: { socket: socket as never }, connectTimeout: 8000 })
      await app.ready()
      throw new Error('register succeeded')
    } catch (err) {
      const e = err as { code?: string, cause?: { code?: string } }
      return { code: e.code, cause: e.cause, ms: Date.now() - start }
    } finally {
      await app.close()
    }
  }

  test('mtls: no client certificate, or one from another CA, fails register within 2 s (connectTimeout 8 s) with the TLS alert as cause', async () => {
    const none = await attempt({ ...mtls.socketOptions('none') })
    const other = await attempt({ ...mtls.socketOptions('otherClient') })
    assert.equal(none.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(none.cause?.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    assert.equal(other.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(other.cause?.code, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')
    assert.ok(none.ms < 2000 && other.ms < 2000, `${none.ms} ms, ${other.ms} ms`)
  })

  test('tls: a server certificate for another name fails register at once with ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const wrongName = await attempt({ ...mtls.socketOptions('client'), servername: 'sessions.example' })
    assert.equal(wrongName.code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.equal(wrongName.cause?.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
    assert.ok(wrongName.ms < 2000, `${wrongName.ms} ms`)
  })
})
