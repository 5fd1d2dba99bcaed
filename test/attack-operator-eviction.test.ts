/**
 * Operator attack: the miss's READ (record, epoch copy, index entry), the login's held-copy CREATE and
 * its cached admitted entry, under memory pressure (every policy the docs allow) with two
 * instances: logins on one, misses on the other, every kind of revocation.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from 'redis'
import type { FastifyInstance } from 'fastify'
import { buildApp, recordKey, sessionCookie, works, sleep } from './helpers/app.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

const closers: Array<() => Promise<unknown>> = []
after(async () => { for (const c of closers.reverse()) await c().catch(() => {}) })
let users = 0
const user = (): string => `rp-user-${++users}`

async function stillGone (x: FastifyInstance, cookie: string): Promise<boolean> {
  const res = await x.inject({ url: '/private', headers: { cookie } })
  return res.statusCode !== 200
}

for (const policy of ['volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl', 'noeviction']) {
  test(`memory pressure (${policy}): a session revoked (logout/revokeUser/revokeSession/revokeAll) is served by no instance, nothing revoked comes back, a login issued after revokeAll works on both unless Redis evicted it, no 500`, async () => {
    const server: RedisServer = await startRedis()
    closers.push(() => server.stop())
    const filler = createClient({ url: server.url })
    await filler.connect()
    closers.push(() => filler.close())
    const used = Number(/used_memory:(\d+)/.exec(await filler.info('memory'))?.[1])
    await filler.configSet('maxmemory', String(used + 1_500_000))
    await filler.configSet('maxmemory-policy', policy)
    const keyPrefix = 'rp:'
    const apps: FastifyInstance[] = []
    for (let i = 0; i < 2; i++) {
      const made = await buildApp({ redis: { url: server.url }, keyPrefix })
      apps.push(made)
      closers.push(() => made.close())
    }
    const [a, b] = apps as [FastifyInstance, FastifyInstance]
    let fill = 0
    const pumping = { on: true } // stopped from outside the loop
    const pump = (async () => {
      while (pumping.on) {
        try { await filler.set(`fill:${fill++}`, 'x'.repeat(2000), { PX: 60_000 + (fill % 1000) }) } catch { await sleep(5) }
        if (fill % 50 === 0) await sleep(1)
      }
    })()
    const failures: string[] = []
    const fives: string[] = []
    const revoked: string[] = []
    const count = { tries: 0, revoked: 0, after: 0, evictedOk: 0 }
    const status = (what: string, code: number): void => {
      if (code >= 500 && !(policy === 'noeviction' && code === 503)) fives.push(`${what}: ${code}`)
    }
    const tryLogin = async (x: FastifyInstance, u: string): Promise<string | undefined> => {
      const res = await x.inject({ method: 'POST', url: '/login', payload: { user: u } })
      status('login', res.statusCode)
      return res.statusCode === 200 ? sessionCookie(res) : undefined
    }
    const deadline = Date.now() + 12_000
    for (let i = 0; Date.now() < deadline; i++) {
      count.tries++
      const u = user()
      const first = i % 2 === 0 ? a : b
      const other = first === a ? b : a
      const c1 = await tryLogin(first, u)
      const c2 = await tryLogin(first, u)
      if (c1 === undefined || c2 === undefined) continue
      await works(other, c1) // a miss on the other instance (READ with the index entry)
      await works(first, c2)
      const kind = ['logout', 'revokeUser', 'revokeSession', 'revokeAll'][i % 4] as string
      let ok = true
      try {
        if (kind === 'logout') {
          const res = await other.inject({ method: 'POST', url: '/logout', headers: { cookie: c1 } })
          status('logout', res.statusCode)
          ok = res.statusCode === 200
        } else if (kind === 'revokeUser') await other.session.revokeUser(u)
        else if (kind === 'revokeSession') {
          const ref = (await first.inject({ url: '/ref', headers: { cookie: c1 } })).json().ref as string | undefined
          if (ref === undefined) ok = false
          else await other.session.revokeSession(u, ref)
        } else await other.session.revokeAll()
      } catch { ok = false }
      if (!ok) continue
      count.revoked++
      revoked.push(c1)
      if (kind !== 'logout' && kind !== 'revokeSession') revoked.push(c2)
      await sleep(100)
      for (const x of [a, b]) {
        for (const c of revoked.slice(-40)) if (!(await stillGone(x, c))) failures.push(`${i} ${kind}: revoked ${c.slice(10, 20)} served by ${x === a ? 'A' : 'B'}`)
      }
      if (kind === 'revokeAll') {
        const fresh = await tryLogin(other, user())
        if (fresh !== undefined) {
          count.after++
          for (const x of [first, other]) {
            if (!(await works(x, fresh))) {
              const key = recordKey(keyPrefix, fresh)
              const mk = await filler.hGet(key, 'm:k')
              const ref = await filler.hGet(key, 'm:r')
              const entry = mk == null || ref == null ? null : await filler.hGet(`${keyPrefix}u:${mk}`, ref)
              if (entry != null) failures.push(`${i}: login after revokeAll dead on ${x === a ? 'A' : 'B'} (record and index entry present)`)
              else count.evictedOk++
            }
          }
        }
      }
    }
    pumping.on = false
    await pump
    const info = await filler.info('stats')
    console.log(policy, JSON.stringify(count), 'evicted_keys', /evicted_keys:(\d+)/.exec(info)?.[1], 'fives', fives.length, fives.slice(0, 3))
    assert.deepEqual(failures.slice(0, 10), [])
    assert.deepEqual(fives.slice(0, 10), [])
  })
}
