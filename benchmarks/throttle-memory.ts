/**
 * Redis memory per login-throttle counter: makes BENCH_COUNTERS counters (default 64,000, one per
 * account name, as failed logins of that many names would) through the Redis store on a
 * throw-away redis-server, and prints the sum of `MEMORY USAGE` of the 64 buckets per counter.
 *
 *   npx tsx benchmarks/throttle-memory.ts
 */
import { createClient } from 'redis'
import { KeyNames } from '../lib/key-names.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { startRedis } from '../test/helpers/redis-server.ts'

const COUNTERS = Number(process.env['BENCH_COUNTERS'] ?? 64_000)

const redis = await startRedis()
const client = createClient({ url: redis.url, RESP: 3 })
await client.connect()
const store = new RedisStore(client as never, { cacheSize: 10, cacheBytes: 1 << 20, storeTimeout: 5000, probeInterval: 1000 })
try {
  const keys = new KeyNames('sess:', Buffer.alloc(32, 1))
  for (let i = 0; i < COUNTERS; i++) {
    const counter = keys.throttle('a', `user-${i}@example.com`)
    await store.hit(counter.key, counter.field, 15 * 60_000)
  }
  const buckets = await client.keys('sess:t:*')
  let bytes = 0
  for (const key of buckets) bytes += Number(await client.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']))
  const version = /redis_version:(\S+)/.exec(String(await client.sendCommand(['INFO', 'server'])))?.[1]
  console.log(`Redis ${version}: ${COUNTERS} counters in ${buckets.length} buckets, ${bytes} bytes, ${(bytes / COUNTERS).toFixed(1)} bytes per counter`)
} finally {
  await store.close()
  await client.close()
  await redis.stop()
}
