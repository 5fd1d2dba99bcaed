import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('bhv')

behaviourSuite('redis store', {
  options: () => ({ redis: { url: fx.redis.url } }),
  operations: () => fx.redis.totalCalls(),
})

lifecycleSuite('redis store', {
  pair: () => [{ redis: { url: fx.redis.url } }, { redis: { url: fx.redis.url } }],
})
