/**
 * Redis-specific behaviour: client-side caching (zero commands on a hit, cross-instance
 * invalidation), the key layout, TTLs, outages and recovery. Real redis-server, started here.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import Fastify from 'fastify'
import { createClient } from 'redis'
import hardenedSession, { type HardenedSessionOptions } from '../lib/index.ts'
import { buildApp, captureLogs, eventually, idOf, login, SECRET, sessionCookie } from './helpers/app.ts'
import { rawCommand, startRedis } from './helpers/redis-server.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('rds')
const apps = fx.apps

async function make (extra: Partial<HardenedSessionOptions> = {}, server = {}): Promise<FastifyInstance> {
  const app = await buildApp({ redis: { url: fx.redis.url }, ...extra }, server)
  apps.push(app)
  return app
}

async function keys (): Promise<string[]> {
  const reply = await fx.redis.command('KEYS', '*')
  return [...reply.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
}

describe('redis: client-side caching', () => {
  test('cache: a burst of authenticated reads sends zero commands to Redis (INFO commandstats)', async () => {
    const app = await make()
    const cookie = await login(app, 'u-zero', { theme: 'dark' })
    await app.inject({ url: '/me', headers: { cookie } }) // first read after the write: a miss
    const statsBefore = app.session.stats()
    const before = await fx.redis.totalCalls()
    for (let i = 0; i < 200; i++) {
      const res = await app.inject({ url: '/me', headers: { cookie } })
      assert.equal(res.json().theme, 'dark')
    }
    assert.equal(await fx.redis.totalCalls(), before, 'no Redis command during 200 cached reads')
    const stats = app.session.stats()
    assert.equal(stats.cacheHits - statsBefore.cacheHits, 200)
    assert.equal(stats.cacheMisses, statsBefore.cacheMisses)
  })

  test('cache: a logout on instance A is seen on instance B within 100 ms', async () => {
    const a = await make()
    const b = await make()
    const cookie = await login(a, 'u-two')
    // B's first read may not be cached: Redis broadcasts A's login writes to B, and a read in
    // flight when an invalidation of its key arrives is not cached (it may predate the write).
    await eventually(async () => {
      const before = b.session.stats().cacheHits
      assert.equal((await b.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
      return b.session.stats().cacheHits > before
    }, 1000, 'B serves the session from its local cache')
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    const elapsed = await eventually(async () => (await b.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 100, 'B rejects the logged-out session')
    assert.ok(elapsed <= 100)
  })

  test('cache: a write on instance A is read on instance B within 100 ms', async () => {
    const a = await make()
    const b = await make()
    const cookie = await login(a, 'u-write', { theme: 'light' })
    assert.equal((await b.inject({ url: '/me', headers: { cookie } })).json().theme, 'light')
    await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theme: 'dark' } })
    await eventually(async () => (await b.inject({ url: '/me', headers: { cookie } })).json().theme === 'dark', 100, 'B reads the new value')
  })

  test('cache: interleaved writes of one session on two instances leave both caches equal to Redis', async () => {
    const a = await make()
    const b = await make()
    const cookie = await login(a, 'u-race')
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < 60; i++) {
      const app = i % 2 === 0 ? a : b
      writes.push(app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { shared: i, [`own${i % 2}`]: i } }))
      writes.push(app.inject({ url: '/me', headers: { cookie } })) // reads in between keep refilling the caches
    }
    await Promise.all(writes)
    const key = `sess:${createHash('sha256').update(idOf(cookie)).digest('base64url')}`
    const truth = async (field: string): Promise<unknown> => {
      const reply = await fx.redis.command('HGET', key, `d:${field}`)
      return JSON.parse(reply.split('\r\n')[1] ?? 'null')
    }
    for (const field of ['shared', 'own0', 'own1']) {
      const expected = await truth(field)
      for (const app of [a, b]) {
        await eventually(async () => (await app.inject({ url: `/get/${field}`, headers: { cookie } })).json().value === expected, 100, `${field} on ${app === a ? 'A' : 'B'}`)
      }
    }
  })

  test('cache: revokeUser on instance A is seen on instance B within 100 ms', async () => {
    const a = await make()
    const b = await make()
    const cookie = await login(a, 'u-revoke-x')
    assert.equal((await b.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
    assert.equal(await a.session.revokeUser('u-revoke-x'), 1)
    await eventually(async () => (await b.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 100, 'B rejects the revoked session')
  })
})

describe('redis: layout', () => {
  test('layout: one key per session named by SHA-256 of the id; the raw id appears nowhere', async () => {
    const app = await make({ keyPrefix: 'layout:' })
    const cookie = await login(app, 'u-layout@example.com', { theme: 'dark' })
    const id = idOf(cookie)
    const hash = createHash('sha256').update(id).digest('base64url')
    const mine = (await keys()).filter((k) => k.startsWith('layout:'))
    assert.ok(mine.includes(`layout:${hash}`))
    assert.deepEqual(mine.map((k) => k === `layout:${hash}` ? 'session' : k.startsWith('layout:u:') ? 'index' : k.slice('layout:'.length)).sort(), ['epoch', 'index', 'keyring', 'session'])
    for (const key of mine) {
      assert.ok(!key.includes(id) && !key.includes('u-layout@example.com'), 'no raw id or user id in key names')
      const type = (await fx.redis.command('TYPE', key)).trim().slice(1)
      const dump = type === 'hash' ? await fx.redis.command('HGETALL', key) : await fx.redis.command('GET', key)
      assert.ok(!dump.includes(id), `no raw id in ${type} values`)
    }
  })

  test('layout: the key TTL never exceeds idleTimeout nor the absolute deadline', async () => {
    const app = await make({ keyPrefix: 'ttl:', idleTimeout: 60_000, absoluteTimeout: 90_000 })
    const cookie = await login(app)
    const key = `ttl:${createHash('sha256').update(idOf(cookie)).digest('base64url')}`
    const ttl = Number((await fx.redis.command('PTTL', key)).slice(1))
    assert.ok(ttl > 0 && ttl <= 60_000, `pttl ${ttl}`)
    const app2 = await make({ keyPrefix: 'ttl2:', idleTimeout: 60_000, absoluteTimeout: 60_000 })
    const cookie2 = await login(app2)
    const key2 = `ttl2:${createHash('sha256').update(idOf(cookie2)).digest('base64url')}`
    assert.ok(Number((await fx.redis.command('PTTL', key2)).slice(1)) <= 60_000)
  })

  test('layout: a write sends only the changed fields (a field written elsewhere survives)', async () => {
    const app = await make({ keyPrefix: 'dirty:' })
    const cookie = await login(app, 'u-dirty', { a: 1 })
    const key = `dirty:${createHash('sha256').update(idOf(cookie)).digest('base64url')}`
    await fx.redis.command('HSET', key, 'd:external', '"kept"')
    await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { b: 2 } })
    assert.deepEqual((await app.inject({ url: '/get/external', headers: { cookie } })).json(), { value: 'kept' })
    assert.deepEqual((await app.inject({ url: '/get/b', headers: { cookie } })).json(), { value: 2 })
  })

  test('layout: a write is one Redis round trip and the read after it none', async () => {
    const app = await make()
    const cookie = await login(app)
    await app.inject({ url: '/me', headers: { cookie } })
    const before = await fx.redis.commandStats()
    await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theme: 'x' } })
    const afterWrite = await fx.redis.commandStats()
    await app.inject({ url: '/me', headers: { cookie } })
    const afterRead = await fx.redis.commandStats()
    const delta = (a: Map<string, number>, b: Map<string, number>): Record<string, number> => {
      const out: Record<string, number> = {}
      // PING: the idle-link probe (store/health.ts), on its own timer.
      for (const [name, calls] of b) if (name !== 'info' && name !== 'ping' && name !== 'role' && calls !== (a.get(name) ?? 0)) out[name] = calls - (a.get(name) ?? 0)
      return out
    }
    // One round trip: EVALSHA, whose script reads the session once (HGETALL: existence, the size
    // check and the reply), then writes the dirty fields (HSET; the deadline slides at most once
    // per touchInterval, and the login just set it) and returns the session as written, which
    // stays in the local cache; pipelined with it, the PEXPIRE that keeps Redis from echoing the
    // script's write back to this instance (store/redis.ts).
    assert.deepEqual(delta(before, afterWrite), { evalsha: 1, hset: 1, hgetall: 1, pexpire: 1 })
    assert.deepEqual(delta(afterWrite, afterRead), {}, 'the read after the write is a cache hit')
  })
})

describe('redis: commands per lifecycle', () => {
  test('commands: a login + logout cycle (login without a session, the logout request after it) runs at most 15 Redis commands, counting those inside scripts (INFO commandstats)', async () => {
    const app = await make()
    // Scripts loaded first (a script's first EVALSHA is answered NOSCRIPT, then sent as EVAL).
    const warm = await login(app, 'u-cycle-warm')
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: warm } })
    const calls = async (): Promise<Map<string, number>> => new Map([...await fx.redis.commandStats()].filter(([name]) => !['info', 'ping', 'role'].includes(name)))
    const delta = (a: Map<string, number>, b: Map<string, number>): Record<string, number> => {
      const out: Record<string, number> = {}
      for (const [name, n] of b) if (n !== (a.get(name) ?? 0)) out[name] = n - (a.get(name) ?? 0)
      return out
    }
    const total = (d: Record<string, number>): number => Object.values(d).reduce((x, y) => x + y, 0)
    const before = await calls()
    const cookie = await login(app, 'u-cycle')
    const afterLogin = await calls()
    assert.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })).statusCode, 200)
    const afterLogout = await calls()
    // Login: 3 scripts (epoch copy, create, admit) and the PEXPIRE behind the create; inside them
    // GET, HSET ×2, PEXPIRE ×2, HLEN. Logout: the index entry (HGET: not cached after a login),
    // the dismiss script (HGET, HDEL inside) and DEL.
    const login1 = delta(before, afterLogin)
    const logout1 = delta(afterLogin, afterLogout)
    assert.ok(total(login1) <= 10, `login: ${JSON.stringify(login1)}`)
    assert.ok(total(logout1) <= 5, `logout: ${JSON.stringify(logout1)}`)
    assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, null, 'the session is gone')
  })
})

describe('redis: failure and recovery', () => {
  test('outage: Redis killed → 503 within storeTimeout + slack, /public and cookieless requests still 200, one log line; restart → recovers and serves nothing stale', async () => {
    const server = await startRedis()
    const { lines, logger } = captureLogs('info')
    const app = await buildApp({ redis: { url: server.url }, storeTimeout: 300 }, { logger })
    const cookie = await login(app, 'u-outage', { theme: 'dark' })
    assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
    try {
      await server.kill()
      await eventually(async () => !((await app.inject({ url: '/private', headers: { cookie } })).statusCode === 200), 2000, 'the cached session stops being served')
      for (let i = 0; i < 5; i++) {
        const start = Date.now()
        const res = await app.inject({ url: '/private', headers: { cookie } })
        assert.equal(res.statusCode, 503)
        assert.equal(res.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
        assert.ok(Date.now() - start < 300 + 700, 'within storeTimeout + slack')
      }
      const write = await app.inject({ method: 'POST', url: '/set', payload: { theme: 'x' } })
      assert.equal(write.statusCode, 503)
      assert.equal(write.headers['set-cookie'], undefined, 'an unsaved session is not announced')
      assert.equal((await app.inject({ url: '/public', headers: { cookie } })).statusCode, 200)
      assert.equal((await app.inject({ url: '/anon' })).statusCode, 200)
      const outageLines = lines.filter((l) => l.msg === 'session store unavailable; requests that need a session get 503 until it recovers')
      assert.equal(outageLines.length, 1, 'one error line per outage')
      assert.ok(!JSON.stringify(lines).includes(idOf(cookie)), 'no session id in any log line')

      await server.restart()
      // The restarted Redis is empty: the old session must not be served from any cache.
      await eventually(async () => (await app.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 5000, 'recovered without restarting the app')
      const fresh = await login(app, 'u-outage')
      assert.equal((await app.inject({ url: '/private', headers: { cookie: fresh } })).statusCode, 200)
      assert.ok(lines.some((l) => l.msg === 'session store recovered'))
    } finally {
      await app.close()
      await server.stop()
    }
  })

  test('outage: a stalled Redis (DEBUG SLEEP) fails uncached requests with 503 within storeTimeout + slack', async () => {
    const server = await startRedis(['--enable-debug-command', 'yes'])
    const app = await buildApp({ redis: { url: server.url }, storeTimeout: 200 })
    const other = await buildApp({ redis: { url: server.url } })
    try {
      const cookie = await login(other, 'u-stall')
      const sleeping = server.command('DEBUG', 'SLEEP', '1.5').catch(() => '')
      // Synchronise on the stall itself: a PING that gets no answer within 100 ms.
      await eventually(async () => {
        try {
          await rawCommand(server.port, ['PING'], 100)
          return false
        } catch {
          return true
        }
      }, 1000, 'Redis is stalled')
      const start = Date.now()
      const res = await app.inject({ url: '/private', headers: { cookie } })
      assert.equal(res.statusCode, 503)
      assert.ok(Date.now() - start < 200 + 600)
      await sleeping
      await eventually(async () => (await app.inject({ url: '/private', headers: { cookie } })).statusCode === 200, 3000, 'serves again after the stall')
    } finally {
      await app.close()
      await other.close()
      await server.stop()
    }
  })

  test('register: an unreachable Redis fails register with FST_SESSION_STORE_UNAVAILABLE', async () => {
    const server = await startRedis()
    const url = server.url
    await server.stop()
    const app = Fastify()
    await assert.rejects(async () => {
      await app.register(hardenedSession, { secrets: [SECRET], redis: { url, socket: { connectTimeout: 200, reconnectStrategy: false } } })
      await app.ready()
    }, { code: 'FST_SESSION_STORE_UNAVAILABLE' })
    await app.close()
  })
})

describe('redis: a client the application made', () => {
  test('client: connected by the plugin when not open, used with its cache, never closed by it', async () => {
    const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: { maxEntries: 100 } })
    const app = await buildApp({ redis: client as never })
    try {
      assert.equal(client.isOpen, true)
      const cookie = await login(app, 'u-own')
      await app.inject({ url: '/me', headers: { cookie } })
      const before = await fx.redis.totalCalls()
      await app.inject({ url: '/me', headers: { cookie } })
      assert.equal(await fx.redis.totalCalls(), before, 'cached read on the user client')
      await app.close()
      assert.equal(client.isOpen, true, 'still open after app.close()')
    } finally {
      await client.close()
    }
  })

  test('client: without clientSideCache it works, warns once, and reads from Redis every time (record, epoch, index entry)', async () => {
    const client = createClient({ url: fx.redis.url })
    const { lines, logger } = captureLogs('warn')
    const app = await buildApp({ redis: client as never }, { logger })
    try {
      assert.equal(lines.filter((l) => String(l.msg).includes('no clientSideCache')).length, 1)
      const cookie = await login(app, 'u-nocache')
      const before = await fx.redis.totalCalls()
      await app.inject({ url: '/me', headers: { cookie } })
      await app.inject({ url: '/me', headers: { cookie } })
      assert.equal(await fx.redis.totalCalls() - before, 8, 'per read: one script (EVALSHA) that runs HGETALL, GET (the epoch) and HGET (the index entry)')
      assert.equal((await app.inject({ url: '/me', headers: { cookie } })).json().user, 'u-nocache')
    } finally {
      await app.close()
      await client.close()
    }
  })

  test('cookie: a login followed by a write answers exactly one Set-Cookie', async () => {
    const app = await make()
    const res = await app.inject({ method: 'POST', url: '/login', payload: { data: { theme: 'x' } } })
    const header = res.headers['set-cookie']
    assert.equal(Array.isArray(header) ? header.length : 1, 1)
    assert.ok(sessionCookie(res))
  })
})
