/**
 * Opens the Redis store from the `redis` option: either connection options (the plugin makes
 * and owns a RESP3 client with client-side caching) or a client/cluster the application made
 * (used as given, connected if needed, never closed by the plugin).
 */
import type { FastifyBaseLogger } from 'fastify'
import { createClient } from 'redis'
import { sessionError } from '../errors.ts'
import type { Config } from '../options.ts'
import type { RedisClusterConnectOptions, RedisConnectOptions, RedisConnection } from '../types.ts'
import { isClusterOptions, openRedisCluster } from './open-cluster.ts'
import { RedisStore, type RedisStoreOptions } from './redis.ts'
import { TrackingOnlyCache } from './tracking.ts'

type OnStatus = (up: boolean, err?: unknown, node?: string) => void

function storeOptions (config: Config, onStatus: OnStatus): RedisStoreOptions {
  return {
    cacheSize: config.cacheSize,
    cacheBytes: config.cacheBytes,
    storeTimeout: config.storeTimeout,
    // An idle link is probed often enough that a stall is noticed within about storeTimeout.
    probeInterval: Math.max(50, Math.min(1000, config.storeTimeout)),
    onStatus,
  }
}

function isConnection (value: object): value is RedisConnection {
  return typeof (value as { connect?: unknown }).connect === 'function' &&
    typeof (value as { sendCommand?: unknown }).sendCommand === 'function'
}

export async function openRedisStore (
  redis: RedisConnectOptions | { cluster: RedisClusterConnectOptions } | RedisConnection,
  config: Config,
  log: FastifyBaseLogger,
  onStatus: OnStatus
): Promise<{ store: RedisStore, close: () => Promise<void> }> {
  if (typeof redis !== 'object' || redis === null) throw sessionError('FST_SESSION_STORE_OPTION', 'redis must be connection options or a node-redis client')
  // A Redis Cluster the plugin makes: see store/open-cluster.ts.
  if (isClusterOptions(redis)) return await openRedisCluster(redis.cluster, config.keyPrefix, config.connectTimeout, storeOptions(config, onStatus))
  if (isConnection(redis)) {
    const conn = redis as any
    const store = new RedisStore(conn, storeOptions(config, onStatus))
    if (!store.caching) log.warn('session redis client has no clientSideCache: every authenticated request will read from Redis')
    if (conn.isOpen !== true) await conn.connect()
    return { store, close: () => store.close() }
  }
  const client = createClient({
    ...redis,
    RESP: 3,
    clientSideCache: new TrackingOnlyCache(config.keyPrefix),
    // Fail fast while disconnected instead of queueing writes that would land after a 503.
    disableOfflineQueue: true,
    // No per-command AbortSignal: `storeTimeout` is enforced by one timer per store call.
    commandOptions: { ...redis.commandOptions, timeout: 0 },
    maintNotifications: 'disabled',
    socket: {
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      ...redis.socket,
    },
  } as Parameters<typeof createClient>[0])
  const store = new RedisStore(client as any, storeOptions(config, onStatus))
  // The store reports errors; this listener only guarantees one exists until the client is
  // gone, so an error while closing can never become an uncaught exception.
  client.on('error', () => {})
  try {
    await connectWithin(client, config.connectTimeout)
  } catch (err) {
    await store.close()
    client.destroy()
    throw sessionError('FST_SESSION_STORE_UNAVAILABLE', 'could not connect to Redis at register time', err)
  }
  return {
    store,
    close: async () => {
      if (client.isOpen) await client.close()
      await store.close()
    },
  }
}

async function connectWithin (client: { connect (): Promise<unknown> }, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('connect timed out')), ms) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
