/**
 * A node-redis Sentinel client as the `redis` option: real redis-servers (a master, a replica)
 * and a real Sentinel, started here. The behavioural and two-instance lifecycle suites pass on
 * it; every read goes to the master (no local cache, see lib/store/sentinel.ts); after a Sentinel
 * failover the plugin serves from the new master by itself, and a logout there is final.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSentinel } from 'redis'
import type { HardenedSessionOptions } from '../lib/index.ts'
import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { storageHash } from '../lib/crypto/ids.ts'
import { buildApp, captureLogs, eventually, login } from './helpers/app.ts'
import { freePort, rawCommand, redisServerBinary, startRedis, type RedisServer } from './helpers/redis-server.ts'

interface Sentinel { port: number, stop: () => Promise<void> }

/** One Sentinel (quorum 1) watching `masterPort` as `mymaster`; its config lives in a temp dir. */
async function startSentinel (masterPort: number): Promise<Sentinel> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-'))
  const conf = join(dir, 'sentinel.conf')
  await writeFile(conf, [
    `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
    // The failover test asks for its failover (SENTINEL FAILOVER); a master that is merely slow on
    // a loaded machine must never be failed over in the middle of another test.
    'sentinel down-after-milliseconds mymaster 60000',
    'sentinel failover-timeout mymaster 5000', '',
  ].join('\n'))
  const child: ChildProcess = spawn(redisServerBinary(), [conf, '--sentinel'], { stdio: 'ignore' })
  await eventually(async () => (await rawCommand(port, ['PING'], 200).catch(() => '')).startsWith('+PONG'), 10_000, 'sentinel answers PING')
  return {
    port,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}

let master: RedisServer
let replica: RedisServer
let sentinel: Sentinel
const clients: Array<{ readonly isOpen: boolean, destroy (): Promise<void> }> = []

/** A fresh Sentinel client, as an application would make it (closed by the test, never the plugin). */
function sentinelClient (): object {
  const client = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: sentinel.port }], RESP: 3 })
  client.on('error', () => {})
  clients.push(client)
  return client
}

// Revocations wait for the replica's acknowledgement (durability 'replica'): on a loaded machine
// that can take longer than a short storeTimeout, and the plugin then rightly answers 503.
const options = (): Partial<HardenedSessionOptions> => ({ redis: sentinelClient() as never, storeTimeout: 3000 })

let dataDir: string
before(async () => {
  // A replica writes the RDB it receives to its working directory, and a server started later
  // in the same directory would load it: each server gets a temp dir of its own.
  dataDir = await mkdtemp(join(tmpdir(), 'sentinel-data-'))
  await Promise.all([mkdir(join(dataDir, 'master')), mkdir(join(dataDir, 'replica'))])
  master = await startRedis(['--dir', join(dataDir, 'master')])
  replica = await startRedis(['--dir', join(dataDir, 'replica'), '--replicaof', '127.0.0.1', String(master.port)])
  sentinel = await startSentinel(master.port)
  // The replica must be in sync before the first revocation waits for its acknowledgement.
  await eventually(async () => /slave0:.*state=online/.test(await master.command('INFO', 'replication')), 10_000, 'the replica is online')
})
after(async () => {
  await Promise.all(clients.map((c) => c.isOpen ? c.destroy() : undefined))
  await sentinel?.stop()
  await replica?.stop()
  await master?.stop()
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
})

behaviourSuite('redis store on a Sentinel client', {
  options,
  // Not counted: the replica's and the sentinel's own traffic to the master (REPLCONF ACK every
  // second, the sentinel's hello PUBLISH, its INFO and PING), which runs whatever the plugin does.
  operations: () => master.totalCalls(['info', 'ping', 'role', 'replconf', 'publish', 'subscribe', 'client|setname']),
})

lifecycleSuite('redis store on a Sentinel client', {
  pair: () => [options(), options()],
})

describe('sentinel: reads and failover', () => {
  test('sentinel: every authenticated read asks the master (no local cache), and the choice is logged at info', async () => {
    const { lines, logger } = captureLogs('info')
    const app = await buildApp(options(), { logger })
    try {
      assert.ok(lines.some((l) => l.level === 30 && String(l.msg).includes('Sentinel client: no local cache')))
      const cookie = await login(app, 'u-sentinel')
      await app.inject({ url: '/me', headers: { cookie } })
      const reads = async (server: RedisServer): Promise<number> => {
        const stats = await server.commandStats()
        return ['hgetall', 'hget', 'get'].reduce((n, name) => n + (stats.get(name) ?? 0), 0)
      }
      const [masterBefore, replicaBefore] = [await reads(master), await reads(replica)]
      await app.inject({ url: '/me', headers: { cookie } })
      assert.equal(await reads(master) - masterBefore, 3, 'record, epoch and index entry read from the master')
      assert.equal(await reads(replica), replicaBefore, 'nothing read from the replica')
    } finally {
      await app.close()
    }
  })

  test('sentinel: after a failover the plugin serves from the new master by itself; a logout there is final on both instances', async () => {
    const a = await buildApp(options())
    const b = await buildApp(options())
    try {
      const cookie = await login(a, 'u-failover', { theme: 'dark' })
      assert.equal((await b.inject({ url: '/me', headers: { cookie } })).json().theme, 'dark')
      // The replica must have the session before it is promoted (replication is asynchronous).
      assert.match(await rawCommand(master.port, ['WAIT', '1', '5000'], 8000), /^:1/)
      await eventually(async () => (await rawCommand(sentinel.port, ['SENTINEL', 'REPLICAS', 'mymaster'])).includes(String(replica.port)), 15_000, 'the sentinel knows the replica')
      assert.match(await rawCommand(sentinel.port, ['SENTINEL', 'FAILOVER', 'mymaster']), /^\+OK/)
      // The sentinel ends the promoted server's normal client connections (CLIENT KILL TYPE
      // normal), ours included: a call cut that way is simply asked again.
      await eventually(async () => /role:master/.test(await replica.command('INFO', 'replication').catch(() => '')), 10_000, 'the replica is promoted')
      for (const app of [a, b]) {
        await eventually(async () => (await app.inject({ url: '/me', headers: { cookie } })).json().theme === 'dark', 10_000, 'served from the new master')
      }
      // The old master still answers (as a master) until the sentinel converts it, so serving is
      // no proof of the move: each instance must write to the new master before the logout.
      const key = 'sess:' + storageHash(cookie.split('=')[1]?.split('.')[0] as string)
      for (const [i, app] of [a, b].entries()) {
        let mark = 0
        await eventually(async () => {
          const value = `${i}-${++mark}`
          await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { marker: value } })
          return (await replica.command('HGET', key, 'd:marker').catch(() => '')).includes(`"${value}"`)
        }, 20_000, 'the instance writes to the new master')
      }
      await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
      for (const app of [a, b]) assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 401)
      assert.equal((await b.inject({ url: '/me', headers: { cookie } })).json().user, null)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
