/**
 * Attacks on maxSessionBytes under concurrent writes, against real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { captureLogs, sessionCookie } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('sessio', ['--enable-debug-command', 'yes'])

describe('maxSessionBytes', () => {
  // Fixed defect: a write the UPDATE script refuses as too large (parallel writes adding up) reaches the guard as a non-store error: the client gets 503 FST_SESSION_STORE_UNAVAILABLE instead of 500 FST_SESSION_TOO_LARGE, and a store outage is logged and reported (store_error) although Redis is fine.
  test('maxSessionBytes: a write refused by the store for the combined size answers 500 FST_SESSION_TOO_LARGE and reports no store outage', async (t) => {
    const { lines, logger } = captureLogs('trace')
    const events: SessionEvent[] = []
    const a = await fx.app({ maxSessionBytes: 1000, onEvent: (e) => { events.push(e) } } as Partial<HardenedSessionOptions>, undefined, { logger })
    const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { seed: 1 } })) as string
    const results = await Promise.all([0, 1, 2, 3].map((i) => a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { [`k${i}`]: 'x'.repeat(450) } })))
    const refused = results.filter((r) => r.statusCode !== 200)
    assert.ok(refused.length >= 2, `${refused.length} refused`)
    t.diagnostic(`events ${events.map((e) => e.type).join(',')}; lines ${lines.filter((l) => l.level as number >= 50).map((l) => String(l.msg)).join(' | ')}`)
    for (const r of refused) assert.deepEqual([r.statusCode, r.json().code], [500, 'FST_SESSION_TOO_LARGE'])
    assert.deepEqual(events.filter((e) => e.type === 'store_error'), [], 'a store_error event for a healthy store')
    assert.deepEqual(lines.filter((l) => String(l.msg).includes('store unavailable')).map((l) => l.msg), [], 'an outage logged for a healthy store')
  })
})
