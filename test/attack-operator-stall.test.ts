/**
 * Operator attack: B's link stalled or cut at a random point of a login (CREATE with the held epoch
 * copy, ADMIT with its pipelined PEXPIRE … GT), while A revokes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp, login, sessionCookie, sleep, works } from './helpers/app.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('rst')

test('a link stalled or cut mid-login (CREATE/ADMIT) while the other instance revokes: revoked sessions stay dead on both, the login\'s session is served by both or neither (and only when listed), no 500', async (t) => {
  const proxy = await startProxy(fx.redis.port)
  fx.closers.push(async () => { proxy.resume(); await proxy.close() })
  const keyPrefix = fx.freshPrefix()
  const a = await buildApp({ redis: { url: fx.redis.url }, keyPrefix, storeTimeout: 300 })
  const b = await buildApp({ redis: { url: proxy.url }, keyPrefix, storeTimeout: 300 })
  fx.apps.push(a, b)
  const failures: string[] = []
  const codes = new Map<number, number>()
  const N = 60
  for (let i = 0; i < N; i++) {
    const u = fx.user()
    let old: string
    try { old = await login(b, u) } catch { await sleep(100); continue }
    await works(b, old)
    const kind = ['revokeUser', 'revokeAll', 'cut'][i % 3] as string
    const pending = b.inject({ method: 'POST', url: '/login', headers: { cookie: old }, payload: { user: u } })
    for (let k = 0; k < (i * 7) % 5; k++) await new Promise((resolve) => setImmediate(resolve))
    if (kind === 'cut') proxy.cut()
    else {
      proxy.stall()
      try { if (kind === 'revokeUser') await a.session.revokeUser(u); else await a.session.revokeAll() } catch (err) { failures.push(`${i} ${kind} rejected: ${String(err)}`) }
      await sleep(20)
      proxy.resume()
    }
    const res = await pending
    codes.set(res.statusCode, (codes.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500 && res.statusCode !== 503) failures.push(`${i} ${kind}: login ${res.statusCode} ${res.body.slice(0, 80)}`)
    await sleep(120)
    if (kind !== 'cut') {
      if (await works(a, old)) failures.push(`${i} ${kind}: revoked old served by A`)
      if (await works(b, old)) failures.push(`${i} ${kind}: revoked old served by B`)
    }
    const next = sessionCookie(res)
    if (res.statusCode === 200 && next !== undefined) {
      const onA = await works(a, next)
      const onB = await works(b, next)
      const ref = (await a.inject({ url: '/ref', headers: { cookie: next } })).json().ref as string | undefined
      const listed = (await a.session.listUserSessions(u)).some((s: { ref: string }) => s.ref === ref)
      if (onA !== onB || (onA && !listed)) failures.push(`${i} ${kind}: new session A ${onA} B ${onB} listed ${listed}`)
    }
  }
  t.diagnostic(`status codes ${JSON.stringify([...codes])}`)
  assert.deepEqual(failures.slice(0, 10), [])
})
