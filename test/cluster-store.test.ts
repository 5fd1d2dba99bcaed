/**
 * The Redis store on a real Redis Cluster (3 masters, 3 replicas, test/helpers/redis-cluster.ts)
 * through the plugin: cached reads send no command to any node, a logout on one instance is not
 * served by another, and a master killed and failed over to its replica never lets a session
 * revoked around the failover be served, while the other shards keep serving and everything
 * recovers; requests for the dead shard fail fast and each node's outage is logged once.
 * The tests share one cluster and run in order (the failover test last but one).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createCluster } from 'redis'
import { storageHash } from '../lib/crypto/ids.ts'
import type { HardenedSessionOptions } from '../lib/index.ts'
import { buildApp, captureLogs, eventually, login } from './helpers/app.ts'
import { keySlot, parseReply, startCluster, type ClusterNode, type RedisCluster } from './helpers/redis-cluster.ts'
import { startProxy } from './helpers/tcp-proxy.ts'

let cluster: RedisCluster
const apps: FastifyInstance[] = []
before(async () => {
  // Recommended for production (docs/scaling.md): the shards that are up keep answering while
  // another one fails over.
  cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] })
})
after(async () => {
  await Promise.all(apps.map((a) => a.close().catch(() => {})))
  await cluster?.stop()
})

async function make (extra: Partial<HardenedSessionOptions> = {}, logger?: ReturnType<typeof captureLogs>['logger']): Promise<FastifyInstance> {
  const app = await buildApp({ redis: { cluster: { rootNodes: cluster.rootNodes } }, ...extra }, { logger })
  apps.push(app)
  return app
}

/**
 * Calls of every command on every live node, except the ones the health probes (PING), the
 * tests (INFO, CLUSTER) and the replicas' once-a-second acknowledgements (REPLCONF) send.
 */
async function clusterCalls (): Promise<number> {
  let total = 0
  for (const node of cluster.nodes.filter((n) => n.alive)) {
    const text = await cluster.command(node.port, 'INFO', 'commandstats')
    for (const m of text.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
      if (!['info', 'ping', 'role', 'cluster', 'replconf'].includes(m[1] as string)) total += Number(m[2])
    }
  }
  return total
}

async function status (app: FastifyInstance, cookie: string): Promise<number> {
  return (await app.inject({ url: '/private', headers: { cookie } })).statusCode
}

/** Reads on `app` until it serves the session from its local cache. */
async function cached (app: FastifyInstance, cookie: string): Promise<void> {
  await eventually(async () => {
    const hits = app.session.stats().cacheHits
    assert.equal(await status(app, cookie), 200)
    return app.session.stats().cacheHits > hits
  }, 2000, 'served from the local cache')
}

/** A session's record and user index keys. */
async function keysOf (cookie: string): Promise<[string, string]> {
  const key = 'sess:' + storageHash(cookie.slice(cookie.indexOf('=') + 1, cookie.indexOf('.')))
  const owner = await cluster.masterForKey(key)
  const reply = await cluster.command(owner.port, 'HGET', key, 'm:k')
  return [key, `sess:u:${reply.split('\r\n')[1] as string}`]
}

/** The masters holding a session's record and its user index. */
async function homes (cookie: string): Promise<number[]> {
  return await Promise.all((await keysOf(cookie)).map(async (key) => (await cluster.masterForKey(key)).port))
}

test('cluster: cached reads send no command to any node', async () => {
  const a = await make()
  const b = await make()
  const cookies = await Promise.all(Array.from({ length: 30 }, (_, i) => login(a, `u-zero-${i}`)))
  const spread = new Set((await Promise.all(cookies.map(homes))).flat())
  assert.equal(spread.size, 3, 'records and indexes on all three masters')
  for (const cookie of cookies) await cached(b, cookie)
  const before = await clusterCalls()
  const hits = b.session.stats().cacheHits
  for (let round = 0; round < 5; round++) {
    for (const cookie of cookies) assert.equal(await status(b, cookie), 200)
  }
  assert.equal(await clusterCalls(), before, 'no command on any node during 150 cached reads')
  assert.equal(b.session.stats().cacheHits - hits, 150)
})

test('cluster: a logout on instance A is not served by instance B after 100 ms, whichever node holds it', async () => {
  const a = await make()
  const b = await make()
  const cookies = await Promise.all(Array.from({ length: 30 }, (_, i) => login(a, `u-logout-${i}`)))
  for (const cookie of cookies) await cached(b, cookie)
  for (const cookie of cookies) {
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    await eventually(async () => (await status(b, cookie)) === 401, 100, 'B rejects the session logged out on A')
  }
})

test('cluster: a client the application made is used with its cache (no warning); without one, every read goes to Redis and a warning says so', async () => {
  const withCache = createCluster({ rootNodes: cluster.rootNodes, RESP: 3, clientSideCache: { maxEntries: 100 } })
  const without = createCluster({ rootNodes: cluster.rootNodes, RESP: 3 })
  for (const c of [withCache, without]) c.on('error', () => {})
  try {
    const logsWith = captureLogs('warn')
    const a = await make()
    const b = await make({ redis: withCache as never }, logsWith.logger)
    assert.deepEqual(logsWith.lines.filter((l) => String(l.msg).includes('clientSideCache')), [])
    const cookie = await login(a, 'u-own-cluster')
    await cached(b, cookie)
    const before = await clusterCalls()
    assert.equal(await status(b, cookie), 200)
    assert.equal(await clusterCalls(), before, 'cached read on the application cluster client')
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    await eventually(async () => (await status(b, cookie)) === 401, 100, 'its invalidations are honoured')

    const logsWithout = captureLogs('warn')
    const c = await make({ redis: without as never }, logsWithout.logger)
    assert.equal(logsWithout.lines.filter((l) => String(l.msg).includes('no clientSideCache')).length, 1)
    const other = await login(a, 'u-own-cluster-2')
    assert.equal(await status(c, other), 200)
    const calls = await clusterCalls()
    assert.equal(await status(c, other), 200)
    assert.ok(await clusterCalls() > calls, 'without a cache, reads go to Redis')
  } finally {
    withCache.destroy()
    without.destroy()
  }
})

test('cluster: a slot moved to another master (MIGRATE, SETSLOT) never leaves a revoked session served', async () => {
  const a = await make()
  const b = await make()
  const cookie = await login(a, 'u-moved')
  const other = await login(a, 'u-moved-other')
  for (const c of [cookie, other]) await cached(b, c)
  const [, indexKey] = await keysOf(cookie)
  const slot = String(keySlot(indexKey))
  const source = await cluster.masterForKey(indexKey)
  const target = cluster.masters().find((m) => m.port !== source.port) as ClusterNode
  await cluster.command(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id)
  await cluster.command(source.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id)
  const keys = parseReply(await cluster.command(source.port, 'CLUSTER', 'GETKEYSINSLOT', slot, '100')) as string[]
  assert.ok(keys.includes(indexKey))
  assert.match(await cluster.command(source.port, 'MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys), /^\+OK/)
  for (const m of cluster.masters()) await cluster.command(m.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id)
  await eventually(async () => (await cluster.masterForKey(indexKey)).port === target.port, 5000, 'the slot is served by its new master')

  await cached(b, cookie) // read again, through a MOVED redirection
  await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  await eventually(async () => (await status(b, cookie)) === 401, 100, 'B rejects the session logged out on the new master')
  assert.equal(await status(b, other), 200)
})

test('cluster: a stalled connection to one master is noticed by its probe: a session revoked behind it stops being served, one log line each way', async () => {
  const target = cluster.masters()[0] as ClusterNode
  const proxy = await startProxy(target.port)
  const { lines, logger } = captureLogs('info')
  // B reaches `target` through the proxy (and is closed before the proxy).
  const b = await buildApp({ storeTimeout: 300, redis: { cluster: { rootNodes: cluster.rootNodes, nodeAddressMap: { [`127.0.0.1:${target.port}`]: { host: '127.0.0.1', port: proxy.port } } } } }, { logger })
  try {
    const a = await make()
    // Sessions until at least one has its record and its index both behind the stalled link (no
    // other node pushes anything about it); each does with probability about 1/9.
    const cookies: string[] = []
    const onTarget: string[] = []
    while (onTarget.length === 0 && cookies.length < 600) {
      const batch = await Promise.all(Array.from({ length: 60 }, (_, i) => login(a, `u-stall-${cookies.length + i}`)))
      const where = await Promise.all(batch.map(homes))
      cookies.push(...batch)
      onTarget.push(...batch.filter((_c, i) => where[i]?.every((port) => port === target.port)))
    }
    assert.ok(onTarget.length > 0)
    for (const c of cookies) await cached(b, c)
    proxy.stall()
    const stalledAt = Date.now()
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie: onTarget[0] as string } })
    const ms = await eventually(async () => (await status(b, onTarget[0] as string)) !== 200, 3000, 'B stops serving the session revoked behind the stalled link')
    assert.ok(Date.now() - stalledAt < 3000, `noticed after ${ms} ms`)
    proxy.resume()
    await eventually(async () => (await status(b, onTarget[0] as string)) === 401, 3000, 'B sees the revocation once the link answers')
    for (const c of cookies.slice(1).filter((c) => c !== onTarget[0])) assert.equal(await status(b, c), 200)
    const storeLines = lines.filter((l) => String(l.msg).startsWith('session store'))
    assert.deepEqual(storeLines.map((l) => [l.msg, (l.store as { node?: string }).node]), [
      ['session store node unavailable; requests for its keys get 503 until it recovers', `127.0.0.1:${target.port}`],
      ['session store node recovered', `127.0.0.1:${target.port}`],
    ])
  } finally {
    proxy.resume()
    await b.close()
    await proxy.close()
  }
})

test('cluster: after a master is killed and fails over, no session revoked around the failover is served by B, other shards keep serving, requests for the dead shard fail fast, one log line per node per outage', async (t) => {
  const { lines, logger } = captureLogs('info')
  const a = await make()
  // B learns the new topology later than A (node-redis's default delay, not the plugin's 1 s), so
  // A revokes on the promoted replica while B still has no connection to it.
  const b = await make({ storeTimeout: 2000, redis: { cluster: { rootNodes: cluster.rootNodes, topologyRefreshOnReconnectionAttemptStrategy: 5000 } } }, logger)
  const epochHome = (await cluster.masterForKey('sess:epoch')).port
  // The global epoch must stay readable for the other shards to keep serving (docs/scaling.md).
  const victim = cluster.masters().find((m) => m.port !== epochHome) as ClusterNode
  const cookies = await Promise.all(Array.from({ length: 48 }, (_, i) => login(a, `u-failover-${i}`)))
  const where = await Promise.all(cookies.map(homes))
  const onVictim = cookies.filter((_c, i) => where[i]?.includes(victim.port))
  const elsewhere = cookies.filter((_c, i) => !where[i]?.includes(victim.port))
  assert.ok(onVictim.length >= 9 && elsewhere.length >= 6, `${onVictim.length} sessions touch the victim, ${elsewhere.length} do not`)
  for (const cookie of cookies) await cached(b, cookie)

  // Revoked on A at `revokedAt`; B must never serve it later than 100 ms after.
  const revokedAt = new Map<string, number>()
  const violations: string[] = []
  const watching = { on: true }
  /** When the last completed pass of the watcher began. */
  let lastPass = 0
  const watcher = (async () => {
    while (watching.on) {
      const began = Date.now()
      const checked = [...revokedAt]
      const codes = await Promise.all(checked.map(([cookie]) => status(b, cookie)))
      const now = Date.now()
      checked.forEach(([cookie, at], i) => {
        if (codes[i] === 200 && now > at + 100) violations.push(`${cookies.indexOf(cookie)} served ${now - at} ms after its revocation`)
      })
      lastPass = began
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  const revoke = async (cookie: string): Promise<void> => {
    const res = await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    assert.equal(res.statusCode, 200)
    revokedAt.set(cookie, Date.now())
  }
  /** Retries until the revocation succeeds (A gets 503 while the victim's shard has no master). */
  const revokeEventually = (cookie: string): Promise<number> => eventually(async () => {
    try {
      await revoke(cookie)
      return true
    } catch {
      return false
    }
  }, 20_000, 'revocation succeeds on A')

  try {
    for (const cookie of onVictim.slice(0, 3)) await revoke(cookie) // just before the kill
    await cluster.killMaster(victim.port)
    const duringOutage = Promise.all(onVictim.slice(3, 6).map(revokeEventually)) // during the failover
    // The dead shard's sessions fail fast on B; the others are served all along.
    await eventually(async () => (await status(b, onVictim[6] as string)) === 503, 2000, 'B notices the dead node')
    const started = Date.now()
    for (const cookie of onVictim.slice(6, 9)) assert.equal(await status(b, cookie), 503)
    assert.ok(Date.now() - started < 1000, `3 requests for the dead shard took ${Date.now() - started} ms, storeTimeout is 2000`)
    for (const cookie of elsewhere) assert.equal(await status(b, cookie), 200, 'a session on the other shards is still served')

    const { msSinceKill } = await cluster.waitForFailover(victim.port)
    t.diagnostic(`failover ${msSinceKill} ms after SIGKILL`)
    await duringOutage
    for (const cookie of [...onVictim.slice(9, 12), ...elsewhere.slice(0, 3)]) await revoke(cookie) // just after
    const live = cookies.filter((c) => !revokedAt.has(c))
    const recovered = await eventually(async () => (await Promise.all(live.map((c) => status(b, c)))).every((code) => code === 200), 15_000, 'every session not revoked is served by B again')
    t.diagnostic(`B served every live session again ${recovered} ms after the failover was complete`)
    // The watcher checks every revocation once more, in a pass that began after the last one's 100 ms.
    const graceEnds = Math.max(...revokedAt.values()) + 100
    await eventually(async () => lastPass > graceEnds, 5000, 'a watcher pass after the last revocation\'s 100 ms')
  } finally {
    watching.on = false
    await watcher
  }
  assert.deepEqual(violations, [], 'no revoked session was served')
  for (const cookie of revokedAt.keys()) assert.equal(await status(b, cookie), 401)

  // The plugin's own lines (Fastify logs each 503 response itself, with its request id).
  const storeLines = lines.filter((l) => String(l.msg).startsWith('session store'))
  t.diagnostic(storeLines.map((l) => `${String(l.msg)} ${JSON.stringify(l.store)}`).join(' | '))
  assert.deepEqual(storeLines.map((l) => [l.level, (l.store as { node?: string }).node]), [
    [50, `127.0.0.1:${victim.port}`],
    [30, `127.0.0.1:${victim.port}`],
  ], 'one error line for the victim when it went down, one info line when its slots were served again')
})
