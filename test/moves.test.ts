/**
 * Attacks on moves of a session (login, regenerate) racing each other, against real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type HardenedSessionOptions } from '../lib/index.ts'
import { barrier, login, sessionCookie, works } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('moves', ['--enable-debug-command', 'yes'])

describe('moves', () => {
  // Fixed defect: a regenerate whose carried delta (a concurrent write on the old id) pushes the new record over maxSessionBytes fails after TAKE: the old session is deleted, the other request's accepted write is lost, and an unreachable session stays in the user's index (listed, counted by maxSessionsPerUser).
  test('move: a regenerate whose carried concurrent write would exceed maxSessionBytes leaves the user a working session or nothing listed', async () => {
    const gate = barrier()
    const a = await fx.app({ maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/slow-regen', async (req) => {
        req.session.set('mine', 'm'.repeat(450))
        await gate.wait()
        await req.session.regenerate()
        return { ok: true }
      })
    })
    const who = fx.user()
    const cookie = await login(a, who)
    const slow = a.inject({ method: 'POST', url: '/slow-regen', headers: { cookie } })
    await gate.reached
    const other = await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theirs: 't'.repeat(450) } })
    assert.equal(other.statusCode, 200)
    gate.release()
    const res = await slow
    const issued = sessionCookie(res)
    const listed = await a.session.listUserSessions(who)
    const working = [cookie, ...(issued === undefined ? [] : [issued])].filter((c) => c !== undefined)
    const alive: string[] = []
    for (const c of working) if (await works(a, c)) alive.push(c)
    assert.equal(listed.length, alive.length, `status ${res.statusCode}: ${listed.length} session(s) listed, ${alive.length} reachable by any cookie the user holds`)
  })
})
