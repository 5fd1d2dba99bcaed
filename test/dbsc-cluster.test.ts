import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, eventually, manualClock } from './helpers/app.ts'
import { Browser } from './helpers/dbsc-browser.ts'
import { startCluster, type RedisCluster } from './helpers/redis-cluster.ts'

let cluster: RedisCluster
const apps: FastifyInstance[] = []
before(async () => { cluster = await startCluster() })
after(async () => {
  await Promise.all(apps.map((a) => a.close().catch(() => {})))
  await cluster?.stop()
})

/** Calls of the plugin's commands on every live node (not the probes', tests' or replicas'). */
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

test('dbsc cluster: two instances on a Redis Cluster — registration on one, refresh on the other, a spent challenge refused on both, a cached bound read sends no command', async () => {
  const clock = manualClock()
  const options = { redis: { cluster: { rootNodes: cluster.rootNodes } }, clock: clock.now, allowShortDurations: true, deviceBound: { cookieMaxAge: 60_000 } }
  const a = await buildApp(options)
  const b = await buildApp(options)
  apps.push(a, b)
  const device = await Browser.open(a)
  await device.login('cluster-user')
  assert.equal((await device.register()).statusCode, 200)
  const onB = await Browser.open(b)
  for (const [k, v] of device.jar) onB.jar.set(k, v)
  onB.key = device.key
  onB.dbscId = device.dbscId
  assert.equal(await onB.user(), 'cluster-user', 'the other instance knows the binding')
  clock.advance(60_000)
  assert.equal(await onB.user(), null)
  assert.equal((await onB.refresh()).statusCode, 200, 'refreshed on the other instance')
  assert.equal(await onB.user(), 'cluster-user')
  const spent = onB.sent.at(-1) as string
  clock.advance(60_000)
  device.jar.clear()
  for (const [k, v] of onB.jar) device.jar.set(k, v)
  assert.equal((await device.send(spent)).statusCode, 403, 'a proof spent on one instance is refused on the other')
  assert.equal((await device.refresh()).statusCode, 200)
  await eventually(async () => {
    const before = await clusterCalls()
    for (let i = 0; i < 20; i++) assert.equal(await device.user(), 'cluster-user')
    return await clusterCalls() === before
  }, 5000, 'cached reads of a bound session send no command')
})
