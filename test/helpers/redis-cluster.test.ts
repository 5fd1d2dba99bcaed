/**
 * Self-test of test/helpers/redis-cluster.ts: a real 3-master / 3-replica cluster comes up,
 * key slots match the server's, node-redis reaches every master, and a killed master is
 * replaced by its replica without losing writes that were acknowledged by `WAIT`.
 * The tests share one cluster and run in order (failover, then restart, then stop).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createCluster } from 'redis'
import { crc16, keySlot, parseReply, startCluster, type ClusterNode, type RedisCluster } from './redis-cluster.ts'

let cluster: RedisCluster
let startMs = 0
before(async () => {
  const started = Date.now()
  cluster = await startCluster()
  startMs = Date.now() - started
})
after(async () => { await cluster?.stop() })

function info (reply: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)\r$`, 'm').exec(reply)?.[1]
}

/** Keys such that every current master owns at least `perMaster` of them. */
async function keysOnEveryMaster (prefix: string, perMaster: number): Promise<Map<number, string[]>> {
  const byMaster = new Map<number, string[]>(cluster.masters().map((m) => [m.port, []]))
  for (let i = 0; [...byMaster.values()].some((keys) => keys.length < perMaster); i++) {
    if (i > 10_000) throw new Error('could not spread keys over the masters')
    const key = `${prefix}:${i}`
    const owner = await cluster.masterForKey(key)
    const keys = byMaster.get(owner.port)
    assert.ok(keys !== undefined, `key ${key} is owned by ${owner.port}, not a known master`)
    if (keys.length < perMaster) keys.push(key)
  }
  return byMaster
}

const newClusterClient = () => createCluster({ rootNodes: cluster.rootNodes, RESP: 3 })

function clusterClient (): { client: ReturnType<typeof newClusterClient>, errors: Error[] } {
  const client = newClusterClient()
  const errors: Error[] = []
  client.on('error', (err: Error) => { errors.push(err) })
  return { client, errors }
}

test('redis-cluster: comes up with 3 masters and 3 replicas, each replica in sync with its own master', async (t) => {
  t.diagnostic(`startCluster took ${startMs} ms`)
  assert.equal(cluster.nodes.length, 6)
  const masters = cluster.masters()
  const replicas = cluster.nodes.filter((n) => n.role === 'replica')
  assert.equal(masters.length, 3)
  assert.equal(replicas.length, 3)
  assert.deepEqual(
    replicas.map((r) => r.masterPort).sort(),
    masters.map((m) => m.port).sort(),
    'one replica per master'
  )
  assert.equal(new Set(cluster.nodes.map((n) => n.port)).size, 6)
  for (const node of cluster.nodes) {
    process.kill(node.pid, 0) // throws if the process is gone
    assert.ok(existsSync(join(node.dir, `nodes-${node.port}.conf`)), `nodes.conf of ${node.port}`)
    const clusterInfo = await cluster.command(node.port, 'CLUSTER', 'INFO')
    assert.equal(info(clusterInfo, 'cluster_state'), 'ok')
    assert.equal(info(clusterInfo, 'cluster_known_nodes'), '6')
    assert.equal(info(clusterInfo, 'cluster_size'), '3')
    const replication = await cluster.command(node.port, 'INFO', 'replication')
    if (node.role === 'master') {
      assert.equal(info(replication, 'role'), 'master')
      assert.equal(info(replication, 'connected_slaves'), '1')
    } else {
      assert.equal(info(replication, 'role'), 'slave')
      assert.equal(info(replication, 'master_port'), String(node.masterPort))
      assert.equal(info(replication, 'master_link_status'), 'up')
    }
    const nodesText = parseReply(await cluster.command(node.port, 'CLUSTER', 'NODES')) as string
    assert.match(nodesText, new RegExp(`^${node.id} 127\\.0\\.0\\.1:${node.port}@${node.busPort}\\b.*myself`, 'm'))
  }
  assert.deepEqual(cluster.rootNodes.map((r) => r.url).sort(), cluster.nodes.map((n) => `redis://127.0.0.1:${n.port}`).sort())
})

test('redis-cluster: keySlot follows the spec (CRC16, hash tags) and matches CLUSTER KEYSLOT', async () => {
  assert.equal(crc16(Buffer.from('123456789')), 0x31c3, 'the CRC16-XMODEM check value')
  assert.equal(keySlot('foo'), 12182)
  assert.equal(keySlot('{user1000}.following'), keySlot('user1000'))
  assert.equal(keySlot('foo{}{bar}'), keySlot(Buffer.from('foo{}{bar}')))
  assert.notEqual(keySlot('foo{}{bar}'), keySlot('bar'), 'an empty tag means the whole key is hashed')
  assert.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'))
  assert.equal(keySlot('foo{bar}{zap}'), keySlot('bar'))
  const keys = [
    'foo', '', '{', '}', '{}', '}{', '{a', 'a}', '{a}', 'x{a}y', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}',
    '{user1000}.following', '{user1000}.followers', 'hs:sess:{u1}:abc', 'ключ', '{ключ}x', 'emoji-😀',
  ]
  for (let i = 0; i < 200; i++) keys.push(`k${i}:${(i * 7919).toString(36)}`)
  const port = cluster.nodes[0]?.port as number
  for (const key of keys) {
    assert.equal(keySlot(key), parseReply(await cluster.command(port, 'CLUSTER', 'KEYSLOT', key)), `slot of ${JSON.stringify(key)}`)
  }
})

test('redis-cluster: masterForKey names the master that serves the key; the others redirect to it', async () => {
  const byMaster = await keysOnEveryMaster('owner', 3)
  assert.equal(byMaster.size, 3)
  for (const [port, keys] of byMaster) {
    for (const key of keys) {
      assert.equal(await cluster.command(port, 'SET', key, 'v'), '+OK\r\n', `${key} on its master ${port}`)
      for (const other of cluster.masters()) {
        if (other.port === port) continue
        assert.equal(await cluster.command(other.port, 'GET', key), `-MOVED ${keySlot(key)} 127.0.0.1:${port}\r\n`)
      }
    }
  }
})

test('redis-cluster: a node-redis cluster client (RESP3) sets and gets keys on all three masters', async () => {
  const { client, errors } = clusterClient()
  try {
    await client.connect()
    const byMaster = await keysOnEveryMaster('client', 2)
    for (const [port, keys] of byMaster) {
      for (const key of keys) {
        assert.equal(await client.set(key, `value of ${key}`), 'OK')
        assert.equal(await client.get(key), `value of ${key}`)
        // Really stored on that master, not somewhere else:
        assert.equal(await cluster.command(port, 'GET', key), `$${`value of ${key}`.length}\r\nvalue of ${key}\r\n`)
      }
    }
    assert.deepEqual(errors, [])
  } finally {
    client.destroy()
  }
})

let failedOver: { oldMaster: number, newMaster: ClusterNode } | undefined

test('redis-cluster: after killMaster and waitForFailover the replica serves the keys written before', async (t) => {
  const { client, errors } = clusterClient()
  try {
    await client.connect()
    const byMaster = await keysOnEveryMaster('failover', 5)
    for (const keys of byMaster.values()) {
      for (const key of keys) assert.equal(await client.set(key, `before ${key}`), 'OK')
      // The replica has acknowledged every write on this master connection.
      const acked = await client.sendCommand(keys[0], false, ['WAIT', '1', '1000'])
      assert.equal(acked, 1, 'WAIT: one replica acknowledged the writes')
    }
    const victim = cluster.masters()[0] as ClusterNode
    const replica = cluster.nodes.find((n) => n.masterPort === victim.port) as ClusterNode
    const victimKeys = byMaster.get(victim.port) as string[]

    await cluster.killMaster(victim.port)
    assert.equal(cluster.node(victim.port).alive, false)
    assert.throws(() => process.kill(cluster.node(victim.port).pid, 0), { code: 'ESRCH' })
    const { newMaster, msSinceKill } = await cluster.waitForFailover(victim.port)
    t.diagnostic(`failover took ${msSinceKill} ms after SIGKILL (cluster-node-timeout 1000)`)
    assert.equal(newMaster.port, replica.port, 'the killed master\'s own replica was promoted')
    assert.equal(newMaster.role, 'master')
    assert.equal(cluster.masters().length, 3)
    assert.equal((await cluster.masterForKey(victimKeys[0] as string)).port, replica.port)
    for (const node of cluster.nodes.filter((n) => n.alive)) {
      assert.equal(info(await cluster.command(node.port, 'CLUSTER', 'INFO'), 'cluster_state'), 'ok')
    }
    const role = parseReply(await cluster.command(replica.port, 'ROLE')) as string[]
    assert.equal(role[0], 'master')

    // Every key written before the kill is still there, read through node-redis; the client
    // needs a moment to notice its old connection is dead and re-read the slots.
    const readStart = Date.now()
    const deadline = readStart + 10_000
    const readErrors: string[] = []
    for (const keys of byMaster.values()) {
      for (const key of keys) {
        for (;;) {
          try {
            assert.equal(await client.get(key), `before ${key}`)
            break
          } catch (err) {
            if (err instanceof assert.AssertionError || Date.now() > deadline) throw err
            readErrors.push(`${String(err)} after ${Date.now() - readStart} ms`)
            await new Promise((resolve) => setTimeout(resolve, 50))
          }
        }
      }
    }
    t.diagnostic(`node-redis read every key ${Date.now() - readStart} ms after the failover; ` +
      `failed reads on the way: ${readErrors.length} ${readErrors.join(' | ')}`)
    for (const key of victimKeys) {
      assert.equal(await cluster.command(replica.port, 'GET', key), `$${`before ${key}`.length}\r\nbefore ${key}\r\n`)
      assert.equal(await client.set(key, 'after'), 'OK', 'the promoted replica takes writes')
    }
    t.diagnostic(`node-redis 'error' events: ${errors.length} ${[...new Set(errors.map(String))].join(' | ')}`)
    failedOver = { oldMaster: victim.port, newMaster }
  } finally {
    client.destroy()
  }
})

test('redis-cluster: restart brings a killed master back as a replica of the node that replaced it', async () => {
  assert.ok(failedOver !== undefined, 'needs the failover test')
  const { oldMaster, newMaster } = failedOver
  const oldPid = cluster.node(oldMaster).pid
  await cluster.restart(oldMaster)
  const node = cluster.node(oldMaster)
  assert.equal(node.alive, true)
  assert.notEqual(node.pid, oldPid)
  assert.equal(node.role, 'replica')
  assert.equal(node.masterPort, newMaster.port)
  const replication = await cluster.command(oldMaster, 'INFO', 'replication')
  assert.equal(info(replication, 'role'), 'slave')
  assert.equal(info(replication, 'master_port'), String(newMaster.port))
  assert.equal(info(replication, 'master_link_status'), 'up')
})

test('redis-cluster: stop kills every node and removes the temp dirs', async () => {
  const nodes = cluster.nodes.map((n) => ({ pid: n.pid, dir: n.dir }))
  await cluster.stop()
  for (const { pid, dir } of nodes) {
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} is gone`)
    assert.equal(existsSync(dir), false, `${dir} is removed`)
  }
  await cluster.stop() // a second stop (the after hook) is harmless
})
