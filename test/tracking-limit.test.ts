/**
 * Invalidations when Redis's tracking table is full. With per-key tracking, more keys read than
 * `tracking-table-max-keys` make Redis evict tracking entries, and it does not tell a NOLOOP
 * client whose own command caused the eviction: that instance kept serving sessions logged out
 * elsewhere. The plugin tracks by broadcast (store/tracking.ts), which keeps no table: here the
 * limit is 100 keys while thousands of sessions are cached on instance B, and every logout on
 * instance A must be seen by B within 100 ms.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, eventually, login } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const SESSIONS = 2000
const BATCH = 100

const fx = useRedis('trk', ['--tracking-table-max-keys', '100'])
const apps = fx.apps

function info (reply: string, field: string): number {
  return Number(new RegExp(`^${field}:(\\d+)\r$`, 'm').exec(reply)?.[1])
}

async function status (app: FastifyInstance, cookie: string): Promise<number> {
  return (await app.inject({ url: '/private', headers: { cookie } })).statusCode
}

/** Runs `fn` over `items` in parallel batches. */
async function batches<T, R> (items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += BATCH) out.push(...await Promise.all(items.slice(i, i + BATCH).map(fn)))
  return out
}

test('tracking limit: with tracking-table-max-keys 100 and 2000 sessions cached on B, every logout on A is seen by B within 100 ms', async (t) => {
  const a = await buildApp({ redis: { url: fx.redis.url } })
  const b = await buildApp({ redis: { url: fx.redis.url } })
  apps.push(a, b)
  assert.match(await fx.redis.command('CONFIG', 'GET', 'tracking-table-max-keys'), /\r\n100\r\n/)

  const users = Array.from({ length: SESSIONS }, (_, i) => `u-limit-${i}`)
  const cookies = await batches(users, (user) => login(a, user))
  // B reads every session until it serves it from its cache (a first read may race the
  // broadcast of A's login writes and is then not cached).
  await batches(cookies, async (cookie) => {
    await eventually(async () => {
      const hits = b.session.stats().cacheHits
      assert.equal(await status(b, cookie), 200)
      return b.session.stats().cacheHits > hits
    }, 2000, 'B caches the session')
  })
  // Replayed cookies of sessions that no longer exist are looked up too.
  const gone = await batches(users.slice(0, BATCH), (user) => login(a, `${user}-gone`))
  await batches(gone, (cookie) => a.inject({ method: 'POST', url: '/logout', headers: { cookie } }))
  for (const cookie of gone) assert.equal(await status(b, cookie), 401)

  const stats = await fx.redis.command('INFO', 'stats')
  t.diagnostic(`tracking_total_keys ${info(stats, 'tracking_total_keys')}, tracking_total_items ${info(stats, 'tracking_total_items')}, tracking_total_prefixes ${info(stats, 'tracking_total_prefixes')}`)
  assert.equal(info(stats, 'tracking_total_keys'), 0, 'no key is tracked per reader: nothing to evict, no lookup remembered')

  // Just before the logouts, B serves the sessions from its cache: no command reaches Redis.
  const before = b.session.stats()
  const calls = await fx.redis.totalCalls()
  for (const cookie of cookies.slice(0, 50)) assert.equal(await status(b, cookie), 200)
  assert.equal(b.session.stats().cacheHits - before.cacheHits, 50, 'B was serving from its cache')
  assert.equal(await fx.redis.totalCalls(), calls, 'without a command to Redis')
  for (let i = 0; i < cookies.length; i += BATCH) {
    const batch = cookies.slice(i, i + BATCH)
    await Promise.all(batch.map((cookie) => a.inject({ method: 'POST', url: '/logout', headers: { cookie } })))
    await eventually(async () => {
      const codes = await Promise.all(batch.map((cookie) => status(b, cookie)))
      return codes.every((code) => code === 401)
    }, 100, `B rejects sessions ${i}–${i + batch.length - 1}, logged out on A`)
  }
})
