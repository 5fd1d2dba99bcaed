/**
 * Operator attack: Redis restarted without persistence under two instances; logins, misses (READ with
 * the index entry), revocations and revokeAll right after.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, sessionCookie, sleep, works } from './helpers/app.ts'
import { startRedis } from './helpers/redis-server.ts'

const closers: Array<() => Promise<unknown>> = []
after(async () => { for (const c of closers.reverse()) await c().catch(() => {}) })

test('after a Redis restart without persistence (two instances, held copies and entries): logins work on both, revocations made after it stay in force on both, logins after revokeAll work on both, no 500', async (t) => {
  const server = await startRedis()
  closers.push(() => server.stop())
  const keyPrefix = 'rr:'
  const a = await buildApp({ redis: { url: server.url }, keyPrefix, storeTimeout: 500 })
  const b = await buildApp({ redis: { url: server.url }, keyPrefix, storeTimeout: 500 })
  closers.push(() => a.close(), () => b.close())
  let users = 0
  const failures: string[] = []
  const tally = { rounds: 0, logins: 0, revoked: 0, afterAll: 0 }
  const loginOn = async (x: FastifyInstance, u: string): Promise<string | undefined> => {
    const res = await x.inject({ method: 'POST', url: '/login', payload: { user: u } })
    if (res.statusCode >= 500 && res.statusCode !== 503) failures.push(`login ${res.statusCode}`)
    return res.statusCode === 200 ? sessionCookie(res) : undefined
  }
  for (let round = 0; round < 4; round++) {
    // Both instances hold epoch copies and admitted entries for the same users.
    const held: string[] = []
    for (let i = 0; i < 6; i++) { const c = await loginOn(i % 2 ? a : b, `rr-${i}`); if (c) { held.push(c); await works(a, c); await works(b, c) } }
    if (round % 2 === 1) await a.session.revokeAll()
    await server.kill()
    await server.restart()
    tally.rounds++
    for (let i = 0; i < 12; i++) {
      const x = i % 2 ? a : b
      const y = x === a ? b : a
      const u = i < 6 ? `rr-${i}` : `rr-new-${++users}`
      const c = await loginOn(x, u)
      if (c === undefined) { await sleep(50); continue }
      tally.logins++
      if (!(await works(y, c))) failures.push(`${round}/${i}: new login dead on the other instance`)
      if (!(await works(x, c))) failures.push(`${round}/${i}: new login dead on its own instance`)
      const kind = i % 3
      try {
        if (kind === 0) await y.session.revokeUser(u)
        else if (kind === 1) await y.inject({ method: 'POST', url: '/logout', headers: { cookie: c } })
        else {
          await y.session.revokeAll()
          const c2 = await loginOn(x, `rr-new-${++users}`)
          if (c2 !== undefined) {
            tally.afterAll++
            if (!(await works(y, c2)) || !(await works(x, c2))) failures.push(`${round}/${i}: login after revokeAll dead`)
          }
        }
      } catch { continue }
      tally.revoked++
      await sleep(100)
      if (await works(a, c) || await works(b, c)) failures.push(`${round}/${i} kind ${kind}: revoked session served`)
    }
    for (const c of held) if (await works(a, c) || await works(b, c)) failures.push(`${round}: a session from before the restart is served`)
  }
  t.diagnostic(JSON.stringify(tally))
  assert.deepEqual(failures.slice(0, 10), [])
})
