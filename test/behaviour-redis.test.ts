import { after, before } from 'node:test'
import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

behaviourSuite('redis store', {
  options: () => ({ redis: { url: redis.url } }),
  operations: () => redis.totalCalls(),
})

lifecycleSuite('redis store', {
  pair: () => [{ redis: { url: redis.url } }, { redis: { url: redis.url } }],
})
