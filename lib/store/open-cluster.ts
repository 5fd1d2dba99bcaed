/**
 * Makes, connects and owns the cluster client for the `redis` option `{ cluster: { rootNodes,
 * ... } }` (node-redis `createCluster` options): RESP3, the broadcast-tracking provider on every
 * node connection (tracking.ts), no offline queue (a command for a node that is reconnecting
 * fails at once), no per-command timer (`storeTimeout` is enforced per store call), and a
 * topology refresh one second after a node starts reconnecting, so that a failed-over master's
 * slots are read from its promoted replica soon after the cluster promoted it.
 */
import { createCluster } from 'redis'
import { sessionError } from '../errors.ts'
import type { Config } from '../config.ts'
import type { RedisClusterConnectOptions, RedisConnection } from '../public-types.ts'
import type { ClusterConnection } from './cluster.ts'
import { closeConnection, durableConnection } from './durable.ts'
import { RedisStore, type RedisStoreOptions } from './redis.ts'
import { TrackingOnlyPooledCache } from './tracking.ts'

export function isClusterOptions (value: object): value is { cluster: RedisClusterConnectOptions } {
  return 'cluster' in value && typeof (value as { connect?: unknown }).connect !== 'function'
}

export async function openRedisCluster (
  options: RedisClusterConnectOptions,
  config: Config,
  connectTimeout: number,
  storeOptions: (durable: unknown) => RedisStoreOptions
): Promise<{ store: RedisStore, close: () => Promise<void>, client: RedisConnection }> {
  const keyPrefix = config.keyPrefix
  if (typeof options !== 'object' || options === null || !Array.isArray(options.rootNodes) ||
    options.rootNodes.length === 0) {
    throw sessionError('FST_SESSION_STORE_OPTION', 'redis.cluster needs a non-empty rootNodes array')
  }
  const defaults = options.defaults ?? {}
  const cluster = createCluster({
    ...options,
    RESP: 3,
    clientSideCache: new TrackingOnlyPooledCache(keyPrefix),
    commandOptions: { timeout: 0 },
    topologyRefreshOnReconnectionAttemptStrategy: options.topologyRefreshOnReconnectionAttemptStrategy ?? 1000,
    defaults: {
      ...defaults,
      disableOfflineQueue: true,
      maintNotifications: 'disabled',
      socket: {
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
        ...defaults.socket,
      },
    },
  } as Parameters<typeof createCluster>[0])
  const durable = durableConnection(cluster, config)
  const store = new RedisStore(cluster as unknown as ClusterConnection, storeOptions(durable))
  // Node errors reach the store as `node-error`; this listener keeps cluster-level errors
  // (discovery, topology refresh) from becoming uncaught exceptions.
  cluster.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      Promise.all([cluster.connect(), durable?.connect()]),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('connect timed out')), connectTimeout)
      }),
    ])
  } catch (err) {
    await store.close()
    cluster.destroy()
    await closeConnection(durable).catch(() => {})
    throw sessionError('FST_SESSION_STORE_UNAVAILABLE', 'could not connect to the Redis cluster at register time', err)
  } finally {
    clearTimeout(timer)
  }
  return {
    store,
    client: cluster as unknown as RedisConnection,
    close: async () => {
      if (cluster.isOpen) await cluster.close()
      await closeConnection(durable)
      await store.close()
    },
  }
}
