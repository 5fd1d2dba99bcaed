/**
 * A Redis Cluster master failing over (3 masters with a replica each, `cluster-require-full-
 * coverage no`, as docs/scaling.md recommends): sessions whose keys live on the other shards are
 * served all along, with the plugin's own cluster client and with one the application made; the
 * main epoch copy's shard is no single point of failure (each record's epoch copy lives in the
 * record's own slot); and a revocation resolved just before the kill survives it (WAIT).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createCluster } from 'redis'
import { storageHash } from '../lib/crypto/ids.ts'
import type { HardenedSessionOptions } from '../lib/index.ts'
import { buildApp, eventually, idOf, login, sessionCookie } from './helpers/app.ts'
import { startCluster, type ClusterNode, type RedisCluster } from './helpers/redis-cluster.ts'

let cluster: RedisCluster
const apps: FastifyInstance[] = []
const clients: Array<{ destroy (): void }> = []
before(async () => { cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] }) })
after(async () => {
  await Promise.all(apps.map((a) => a.close().catch(() => {})))
  for (const c of clients) c.destroy()
  await cluster?.stop()
})

async function make (extra: Partial<HardenedSessionOptions>): Promise<FastifyInstance> {
  const app = await buildApp({ storeTimeout: 1000, ...extra })
  apps.push(app)
  return app
}

/** The masters a session's keys live on: its record (and its epoch copy, same slot) and, logged in, its user index. */
async function homes (cookie: string): Promise<number[]> {
  const key = 'sess:' + storageHash(idOf(cookie))
  const owner = await cluster.masterForKey(key)
  const userKey = (await cluster.command(owner.port, 'HGET', key, 'm:k')).split('\r\n')[1]
  const ports = [owner.port]
  if (userKey !== undefined && userKey !== '' && !userKey.startsWith('$')) ports.push((await cluster.masterForKey(`sess:u:${userKey}`)).port)
  return ports
}

test('cluster failover: killing the master of the main epoch copy never makes sessions on the other shards answer 5xx, with the plugin\'s client and the application\'s', async (t) => {
  const own = await make({ redis: { cluster: { rootNodes: cluster.rootNodes } } })
  const appClient = createCluster({ rootNodes: cluster.rootNodes, RESP: 3, clientSideCache: { maxEntries: 10_000 } })
  appClient.on('error', () => {})
  clients.push(appClient)
  const theirs = await make({ redis: appClient as never })
  const victim = await cluster.masterForKey('sess:epoch') as ClusterNode

  const cookies: string[] = []
  for (let i = 0; i < 24; i++) cookies.push(await login(own, `u-shard-${i}`))
  for (let i = 0; i < 24; i++) cookies.push(sessionCookie(await own.inject({ method: 'POST', url: '/set', payload: { theme: `t${i}` } })) as string)
  const where = await Promise.all(cookies.map(homes))
  const elsewhere = cookies.filter((_c, i) => !where[i]?.includes(victim.port))
  const onVictim = cookies.filter((_c, i) => where[i]?.includes(victim.port))
  assert.ok(elsewhere.length >= 10 && onVictim.length >= 5, `${elsewhere.length} sessions away from the victim, ${onVictim.length} on it`)
  // Half of them read once (cached), half never read by these instances (each read is a miss).
  for (const app of [own, theirs]) for (const cookie of elsewhere.filter((_c, i) => i % 2 === 0)) await app.inject({ url: '/me', headers: { cookie } })

  const failures: string[] = []
  let served = 0
  const hammering = { on: true }
  const hammer = (async () => {
    while (hammering.on) {
      for (const [name, app] of [['plugin client', own], ['application client', theirs]] as const) {
        const codes = await Promise.all(elsewhere.map(async (cookie) => (await app.inject({ url: '/me', headers: { cookie } })).statusCode))
        codes.forEach((code, i) => {
          if (code >= 500) failures.push(`${name}: session ${i} got ${code}`)
          else served++
        })
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  try {
    await cluster.killMaster(victim.port)
    const { msSinceKill } = await cluster.waitForFailover(victim.port)
    t.diagnostic(`failover ${msSinceKill} ms after SIGKILL; ${served} requests served meanwhile`)
    // Every session, the victim's too, is served again once its shard has a master.
    await eventually(async () => (await Promise.all(onVictim.map(async (cookie) => (await theirs.inject({ url: '/me', headers: { cookie } })).statusCode))).every((c) => c === 200), 15_000, 'the victim\'s sessions are served again')
  } finally {
    hammering.on = false
    await hammer
  }
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} requests for sessions on healthy shards failed`)
  assert.ok(served > elsewhere.length * 4, 'the healthy shards were asked throughout')
  await cluster.restart(victim.port)
})

test('cluster failover: a revocation resolved just before its master is killed is still in force after the failover (durability \'replica\')', async () => {
  const a = await make({ redis: { cluster: { rootNodes: cluster.rootNodes } } })
  await eventually(async () => cluster.masters().length === 3, 10_000, 'three masters')
  const cookies = await Promise.all(Array.from({ length: 12 }, (_, i) => login(a, `u-durable-${i}`)))
  const target = cookies[0] as string
  const [recordHome, indexHome] = await homes(target)
  const victim = cluster.masters().find((m) => m.port === indexHome) as ClusterNode
  await a.inject({ method: 'POST', url: '/logout', headers: { cookie: target } }) // WAITs on the index's and the record's masters
  await cluster.killMaster(victim.port) // at once: no time for asynchronous replication to catch up
  await cluster.waitForFailover(victim.port)
  const b = await make({ redis: { cluster: { rootNodes: cluster.rootNodes.filter((n) => !n.url?.endsWith(`:${victim.port}`)) } } })
  await eventually(async () => (await b.inject({ url: '/private', headers: { cookie: cookies[1] as string } })).statusCode !== 503, 15_000, 'the cluster serves again')
  assert.equal((await b.inject({ url: '/private', headers: { cookie: target } })).statusCode, 401, `the logout survived (record on ${String(recordHome)}, index on ${String(indexHome)})`)
  await cluster.restart(victim.port)
})
