/**
 * Operator attack: a cluster master killed (SIGKILL) while logins (held-copy CREATE on the new master)
 * and revocations run on two instances.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { buildApp, sessionCookie, sleep } from './helpers/app.ts'
import { startCluster, type RedisCluster } from './helpers/redis-cluster.ts'

let cluster: RedisCluster
const apps: FastifyInstance[] = []
before(async () => { cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] }) })
after(async () => {
  await Promise.all(apps.map((a) => a.close().catch(() => {})))
  await cluster?.stop()
})
let users = 0
const user = (): string => `rf-user-${++users}`

test('cluster master SIGKILLed amid logins and revocations on two instances: nothing revoked (once resolved) is served, logins after revokeAll resolved work on both, no 500', async (t) => {
  const opts = { storeTimeout: 1000, redis: { cluster: { rootNodes: cluster.rootNodes } } }
  const a = await buildApp(opts); apps.push(a)
  const b = await buildApp(opts); apps.push(b)
  const fives: string[] = []
  const failures: string[] = []
  const revoked: string[] = []
  const fresh: string[] = []
  const count = { logins: 0, revocations: 0, revokeAll: 0, afterAll: 0 }
  const inject = async (x: FastifyInstance, o: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await x.inject(o)
    if (res.statusCode >= 500 && res.statusCode !== 503) fives.push(`${String(o.url)} ${res.statusCode} ${res.body.slice(0, 100)}`)
    return res
  }
  const serves = async (x: FastifyInstance, cookie: string): Promise<number> => (await inject(x, { url: '/private', headers: { cookie } })).statusCode
  const running = { on: true } // stopped from outside the loops
  let killed = false
  const worker = async (me: FastifyInstance, other: FastifyInstance, w: number): Promise<void> => {
    for (let i = 0; running.on; i++) {
      const u = user()
      const res = await inject(me, { method: 'POST', url: '/login', payload: { user: u } })
      const c = sessionCookie(res)
      if (res.statusCode !== 200 || c === undefined) { await sleep(20); continue }
      count.logins++
      await serves(other, c)
      const kind = i % 5
      try {
        if (kind === 0) {
          const r = await inject(other, { method: 'POST', url: '/logout', headers: { cookie: c } })
          if (r.statusCode !== 200) continue
        } else if (kind === 1) await other.session.revokeUser(u)
        else if (kind === 2) await other.session.revokeSession(u, (await inject(me, { url: '/ref', headers: { cookie: c } })).json().ref)
        else if (kind === 3 && w === 0) {
          await other.session.revokeAll()
          count.revokeAll++
          const r2 = await inject(me, { method: 'POST', url: '/login', payload: { user: user() } })
          const c2 = sessionCookie(r2)
          if (r2.statusCode === 200 && c2 !== undefined) {
            count.afterAll++
            for (const x of [me, other]) {
              const code = await serves(x, c2)
              if (code !== 200) failures.push(`login after revokeAll ${c2.slice(10, 22)}: ${code} on ${x === a ? 'A' : 'B'} (kill ${killed ? 'done' : 'not yet'})`)
            }
          }
        } else continue
      } catch { continue }
      count.revocations++
      revoked.push(c)
    }
  }
  const workers = [worker(a, b, 0), worker(b, a, 1), worker(a, b, 2)]
  await sleep(1500)
  const victim = await cluster.masterForKey('sess:epoch')
  await cluster.killMaster(victim.port)
  killed = true
  const { msSinceKill } = await cluster.waitForFailover(victim.port)
  await sleep(4000)
  running.on = false
  await Promise.all(workers)
  await sleep(150)
  for (const x of [a, b]) {
    for (const c of revoked) {
      const code = await serves(x, c)
      if (code === 200) failures.push(`revoked ${c.slice(10, 22)} served by ${x === a ? 'A' : 'B'}`)
    }
  }
  t.diagnostic(`failover ${msSinceKill} ms; ${JSON.stringify(count)}; revoked checked ${revoked.length}, fresh ${fresh.length}`)
  await cluster.restart(victim.port)
  assert.deepEqual(fives.slice(0, 10), [], `${fives.length} 5xx other than 503`)
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`)
})
