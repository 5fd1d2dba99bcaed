/**
 * A RedisStore on a tracking connection of its own, and a plain client (no tracking: a writer
 * the store is not), both on a test's Redis and closed with it.
 */
import { createClient } from 'redis'
import { RedisStore } from '../../lib/store/redis.ts'
import { TrackingOnlyCache } from '../../lib/store/tracking.ts'
import type { RedisFixture } from './redis-fixture.ts'

export async function trackedStore (fx: RedisFixture, cacheSize = 100) {
  const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
  await client.connect()
  const store = new RedisStore(client as never, { cacheSize, cacheBytes: cacheSize << 12, storeTimeout: 2000, probeInterval: 1000 })
  fx.closers.push(async () => { await store.close(); await client.close() })
  return { client, store }
}

export async function plainClient (fx: RedisFixture) {
  const other = createClient({ url: fx.redis.url })
  await other.connect()
  fx.closers.push(() => other.close())
  return other
}
