/**
 * A Redis link that stalls without closing (a TCP proxy the test controls holds every byte):
 * instance B reaches Redis through the proxy, instance A directly. A session revoked on A while
 * B's link is stalled must stop being served by B — at once after one of B's calls times out,
 * and within a bounded time when B is idle — and B must recover by itself when the link resumes.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, captureLogs, eventually, login } from './helpers/app.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'
import { startProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

const STORE_TIMEOUT = 300

let redis: RedisServer
let proxy: TcpProxy
const apps: FastifyInstance[] = []
before(async () => {
  redis = await startRedis()
  proxy = await startProxy(redis.port)
})
after(async () => {
  proxy.resume()
  await Promise.all(apps.map((a) => a.close()))
  await proxy.close()
  await redis.stop()
})

async function pair (logger?: ReturnType<typeof captureLogs>['logger']): Promise<[FastifyInstance, FastifyInstance]> {
  const a = await buildApp({ redis: { url: redis.url }, storeTimeout: STORE_TIMEOUT })
  const b = await buildApp({ redis: { url: proxy.url }, storeTimeout: STORE_TIMEOUT }, { logger })
  apps.push(a, b)
  return [a, b]
}

async function status (app: FastifyInstance, cookie: string): Promise<number> {
  return (await app.inject({ url: '/private', headers: { cookie } })).statusCode
}

test('stall: once a call on the stalled instance timed out, a session revoked elsewhere is not served from its cache', async () => {
  const [a, b] = await pair()
  const cookie = await login(a, 'u-stall-call')
  const other = await login(a, 'u-stall-other')
  assert.equal(await status(b, cookie), 200) // now cached on B
  proxy.stall()
  try {
    assert.equal(await a.session.revokeUser('u-stall-call'), 1)
    // A request B cannot serve from its cache: its store call times out.
    const timedOut = await b.inject({ url: '/private', headers: { cookie: other } })
    assert.equal(timedOut.statusCode, 503)
    assert.equal(timedOut.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    assert.notEqual(await status(b, cookie), 200, 'the revoked session is no longer served from the cache')
  } finally {
    proxy.resume()
  }
  await eventually(async () => (await status(b, cookie)) === 401, 2000, 'B recovers and sees the revocation')
  assert.equal(await status(b, other), 200, 'sessions that were not revoked work again')
})

test('stall: an idle instance notices the stall by its own probe and stops serving its cache within a bound', async () => {
  const { lines, logger } = captureLogs('info')
  const [a, b] = await pair(logger)
  const cookie = await login(a, 'u-stall-idle')
  assert.equal(await status(b, cookie), 200)
  proxy.stall()
  const stalledAt = Date.now()
  try {
    await a.session.revokeUser('u-stall-idle')
    // Only cache hits on B from here on, until its probe marks the link stalled.
    const ms = await eventually(async () => (await status(b, cookie)) !== 200, 3000, 'B stops serving the revoked session')
    assert.ok(Date.now() - stalledAt < 3000, `noticed after ${ms} ms`)
  } finally {
    proxy.resume()
  }
  await eventually(async () => (await status(b, cookie)) === 401, 2000, 'B recovers and sees the revocation')
  const unavailable = lines.filter((l) => String(l.msg).startsWith('session store unavailable'))
  assert.equal(unavailable.length, 1, 'one error line for the outage')
  await eventually(async () => lines.some((l) => l.msg === 'session store recovered'), 2000, 'one line on recovery')
})
