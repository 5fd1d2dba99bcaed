/**
 * Opens the Redis store from the `redis` option: either connection options (the plugin makes
 * and owns a RESP3 client with client-side caching) or a client, cluster or Sentinel client the
 * application made (used as given, connected if needed, never closed by the plugin; `{ client,
 * allowEviction }` to pass the eviction opt-in with it). Once connected, Redis's eviction
 * policy is checked (eviction.ts) on every node that holds the plugin's keys.
 *
 * `register` never hangs and never fails in silence. Until the first `ready`, an error retrying
 * cannot fix (credentials, permissions, TLS) ends the attempt at once; anything else (refused,
 * unknown host, a server still loading) is retried until `connectTimeout`. Either way `register`
 * fails with FST_SESSION_STORE_UNAVAILABLE whose `cause` is the real error, logged once without
 * credentials. After the first `ready` the plugin's own client reconnects by itself forever.
 */
import type { FastifyBaseLogger } from 'fastify'
import { createClient } from 'redis'
import { sessionError } from '../errors.ts'
import type { Config } from '../config.ts'
import type { RedisClusterConnectOptions, RedisConnectOptions, RedisConnection } from '../public-types.ts'
import {
  checkTransport, classify, describeError, FAILURE_PHRASE, targetOf, whereOf, type RedisTarget,
} from './connect-errors.ts'
import { isCluster } from './cluster.ts'
import { checkEvictionPolicy, type PolicyNode } from './eviction.ts'
import { isClusterOptions, openRedisCluster } from './open-cluster.ts'
import { RedisStore, type RedisStoreOptions } from './redis.ts'
import { isSentinel, sentinelConnection } from './sentinel.ts'
import { closeConnection, durableConnection } from './durable.ts'
import { TrackingOnlyCache } from './tracking.ts'

type Status = (up: boolean, err?: unknown, node?: string) => void

function storeOptions (
  config: Config, onStatus: Status, durable?: unknown, log?: FastifyBaseLogger
): RedisStoreOptions {
  return {
    durable: durable as RedisStoreOptions['durable'],
    onNotice: (message) => log?.warn(message),
    cacheSize: config.cacheSize,
    cacheBytes: config.cacheBytes,
    storeTimeout: config.storeTimeout,
    // An idle link is probed every storeTimeout / 2 (at most 1 s): a stall is noticed within 1.5 × storeTimeout.
    probeInterval: Math.max(50, Math.min(1000, Math.floor(config.storeTimeout / 2))),
    onStatus,
  }
}

function isConnection (value: object): value is RedisConnection {
  return typeof (value as { connect?: unknown }).connect === 'function' &&
    typeof (value as { sendCommand?: unknown }).sendCommand === 'function'
}

/** Backoff of the plugin's own client after it was ready once: quick, capped at 1 s, forever. */
function backoff (retries: number): number {
  return Math.min(50 * 2 ** retries, 1000)
}

/**
 * How long `register` may wait: `connectTimeout`, but always short of Fastify's `pluginTimeout`
 * (10 s by default, like `connectTimeout`), so that the error that ends `register` is this one,
 * with its cause, and not Fastify's anonymous plugin timeout.
 */
function budgetOf (connectTimeout: number, pluginTimeout: number | undefined): number {
  if (pluginTimeout === undefined || pluginTimeout <= 0) return connectTimeout
  // The margin covers what runs before the connect starts and a busy event loop (a loaded CI).
  return Math.max(1, Math.min(connectTimeout, pluginTimeout - Math.min(1000, Math.ceil(pluginTimeout / 4))))
}

/** The nodes whose eviction policy matters: the one server (a Sentinel's master), or every master of a cluster. */
function policyNodes (conn: object): PolicyNode[] {
  const c = conn as any
  if (isCluster(conn)) {
    return c.masters.map((master: unknown) => ({
      send: async (args: string[]) => (await c.nodeClient(master)).sendCommand(args),
    }))
  }
  if (isSentinel(conn)) return [{ send: (args: string[]) => c.sendCommand(false, args) }]
  return [{ send: (args: string[]) => c.sendCommand(args) }]
}

/** Refuses an evicting `maxmemory-policy` (store/eviction.ts); closes what was opened when it does. */
async function checkedPolicy<T extends { close: () => Promise<void> }> (
  opened: T, conn: object, allow: boolean, log: FastifyBaseLogger, config: Config
): Promise<T> {
  try {
    await checkEvictionPolicy(policyNodes(conn), allow, log, config.storeTimeout)
  } catch (err) {
    await opened.close()
    throw err
  }
  return opened
}

export async function openRedisStore (
  option: RedisConnectOptions | { cluster: RedisClusterConnectOptions }
    | { client: RedisConnection, allowEviction?: boolean } | RedisConnection,
  config: Config,
  log: FastifyBaseLogger,
  onStatus: Status,
  pluginTimeout?: number
): Promise<{ store: RedisStore, close: () => Promise<void>, client?: RedisConnection }> {
  if (typeof option !== 'object' || option === null) {
    throw sessionError('FST_SESSION_STORE_OPTION', 'redis must be connection options or a node-redis client')
  }
  // `{ client, allowEviction }`: a client the application made, with the eviction opt-in.
  const wrapped = !isConnection(option) && 'client' in option && typeof option.client === 'object' &&
    option.client !== null && isConnection(option.client)
  const redis = wrapped
    ? (option as { client: RedisConnection }).client
    : option as Exclude<typeof option, { client: RedisConnection }>
  // Beside url/socket, inside `cluster` (like allowPlaintext), or beside an app-made `client`.
  const allowEviction: unknown = isConnection(option)
    ? undefined
    : isClusterOptions(option)
      ? (option.cluster as { allowEviction?: unknown }).allowEviction
      : (option as { allowEviction?: unknown }).allowEviction
  if (allowEviction !== undefined && typeof allowEviction !== 'boolean') {
    throw sessionError('FST_SESSION_STORE_OPTION', 'redis.allowEviction must be a boolean')
  }
  const allow = allowEviction === true
  const budget = budgetOf(config.connectTimeout, pluginTimeout)
  // A Redis Cluster the plugin makes: see store/open-cluster.ts. The transport rule holds for
  // every root node.
  if (isClusterOptions(redis)) {
    const { allowPlaintext, ...cluster } = redis.cluster as RedisClusterConnectOptions & { allowPlaintext?: boolean }
    for (const node of cluster.rootNodes ?? []) {
      checkTransport(targetOf(node as { url?: unknown, socket?: unknown }), allowPlaintext === true)
    }
    const opened = await openRedisCluster(cluster, config, budget,
      (durable) => storeOptions(config, onStatus, durable, log))
    return await checkedPolicy(opened, opened.client, allow, log, config)
  }
  if (isConnection(redis)) {
    const conn = redis as any
    const target = safeTarget(conn.options)
    const sentinel = isSentinel(conn)
    const durable = durableConnection(conn, config)
    const store = new RedisStore(sentinel ? sentinelConnection(conn) : conn, storeOptions(config, onStatus,
      durable === undefined ? undefined : sentinel ? sentinelConnection(durable) : durable, log))
    if (sentinel) {
      log.info('session store on a Redis Sentinel client: no local cache, every authenticated request reads ' +
        'the master (docs/redis-hardening.md#7-sentinel)')
    } else if (!store.caching) {
      log.warn('session redis client has no clientSideCache: every authenticated request will read from Redis')
    }
    // A client already open (even if still connecting) is the application's: register goes on,
    // and requests get 503 until it is ready.
    try {
      if (conn.isOpen !== true) await startWithin(conn, budget, target, log, () => {})
      if (durable !== undefined) await startWithin(durable, budget, target, log, () => {})
    } catch (err) {
      await store.close()
      await closeConnection(durable).catch(() => {})
      throw failed(err, target, budget, config.connectTimeout, log)
    }
    return await checkedPolicy({
      store,
      client: redis,
      close: async () => {
        await store.close()
        await closeConnection(durable)
      },
    }, conn, allow, log, config)
  }

  const { allowPlaintext, allowEviction: _allowEviction, ...options } =
    redis as RedisConnectOptions & { allowEviction?: boolean }
  if (allowPlaintext !== undefined && typeof allowPlaintext !== 'boolean') {
    throw sessionError('FST_SESSION_STORE_OPTION', 'redis.allowPlaintext must be a boolean')
  }
  const target = targetOf(options)
  checkTransport(target, allowPlaintext === true)
  const user = options.socket?.reconnectStrategy
  let started = false
  let client: ReturnType<typeof createClient>
  try {
    client = createClient({
      ...options,
      RESP: 3,
      clientSideCache: new TrackingOnlyCache(config.keyPrefix),
      // Fail fast while disconnected instead of queueing writes that would land after a 503.
      disableOfflineQueue: true,
      // No per-command AbortSignal: `storeTimeout` is enforced by one timer per store call.
      commandOptions: { timeout: 0 },
      maintNotifications: 'disabled',
      socket: {
        // At least one real error (not just "timed out") before register gives up.
        connectTimeout: Math.max(100, Math.min(5000, Math.floor(budget / 2))),
        ...options.socket,
        reconnectStrategy: (retries: number, cause: Error) => {
          // Until the first `ready`, errors that retrying cannot fix end `connect()` at once.
          if (!started && classify(cause) !== 'retry') return cause
          if (user === undefined) return backoff(retries)
          return typeof user === 'function' ? user(retries, cause) : user
        },
      },
    } as Parameters<typeof createClient>[0])
  } catch {
    // node-redis's own message may quote the URL, password included.
    throw sessionError('FST_SESSION_STORE_OPTION', 'node-redis refused the redis options')
  }
  const durable = durableConnection(client, config)
  // Start-up errors are reported by `register` itself, not as an outage of a running app.
  const store = new RedisStore(client as any,
    storeOptions(config, (up, err) => { if (started) onStatus(up, err) }, durable, log))
  // The store reports errors; this listener only guarantees one exists until the client is
  // gone, so an error while closing can never become an uncaught exception.
  client.on('error', () => {})
  try {
    await startWithin(client, budget, target, log, () => { started = true })
    if (durable !== undefined) await startWithin(durable, budget, target, log, () => {})
  } catch (err) {
    await store.close()
    client.destroy()
    await closeConnection(durable).catch(() => {})
    throw failed(err, target, budget, config.connectTimeout, log)
  }
  return await checkedPolicy({
    store,
    client: client as unknown as RedisConnection,
    close: async () => {
      if (client.isOpen) await client.close()
      await closeConnection(durable)
      await store.close()
    },
  }, client, allow, log, config)
}

/** The target of a client the application made, when its options tell (for log lines only). */
function safeTarget (options: unknown): RedisTarget {
  try {
    const o = (typeof options === 'object' && options !== null ? options : {}) as
      { url?: unknown, socket?: unknown, rootNodes?: unknown }
    // A cluster: its first root node.
    return targetOf(Array.isArray(o.rootNodes) && typeof o.rootNodes[0] === 'object'
      ? o.rootNodes[0] as { url?: unknown, socket?: unknown }
      : o)
  } catch {
    return { host: 'unknown host', port: 0, tls: false, path: undefined }
  }
}

/** Why the start failed: the error that ended it (final), or else the first error seen. */
class StartFailure {
  constructor (readonly cause: unknown, readonly timedOut: boolean) {}
}

/**
 * Connects `client` within `ms`. Rejects with a StartFailure at the first error that retrying
 * cannot fix, or when `ms` pass (carrying the first error seen). The application's own client is
 * watched the same way, through its `error` events: its own reconnect strategy may retry forever.
 */
function startWithin (
  client: any, ms: number, target: RedisTarget, log: FastifyBaseLogger, onReady: () => void
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let first: unknown
    const finish = (failure?: StartFailure): void => {
      clearTimeout(timer)
      client.off('error', onError)
      if (failure === undefined) resolve()
      else reject(failure)
    }
    const onError = (err: unknown): void => {
      const retry = classify(err) === 'retry'
      if (first === undefined && retry) {
        log.warn({ store: { at: whereOf(target), tls: target.tls, error: describeError(err, target) } },
          `session store: connecting to Redis failed; retrying for up to ${ms} ms`)
      }
      first ??= err
      if (!retry) finish(new StartFailure(err, false))
    }
    const timer = setTimeout(() => {
      finish(new StartFailure(first ?? new Error(`no connection to ${whereOf(target)} within ${ms} ms`), true))
    }, ms)
    client.on('error', onError)
    client.connect().then(() => {
      onReady()
      finish()
    }, (err: unknown) => {
      // `connect()` rejects when the reconnect strategy gave up: the error it gave up on was
      // emitted just before; otherwise take what connect() says.
      finish(new StartFailure(first ?? err, false))
    })
  })
}

/** Logs the start-up failure once, without credentials, and makes the register error. */
function failed (
  err: unknown, target: RedisTarget, budget: number, connectTimeout: number, log: FastifyBaseLogger
): Error {
  const failure = err instanceof StartFailure ? err : new StartFailure(err, false)
  const kind = failure.timedOut ? 'retry' : classify(failure.cause)
  const waited = budget < connectTimeout
    ? `${budget} ms (connectTimeout ${connectTimeout} ms, kept below Fastify's pluginTimeout)`
    : `${budget} ms`
  log.error({ store: { at: whereOf(target), tls: target.tls, error: describeError(failure.cause, target) } },
    failure.timedOut
      ? `session store: no Redis connection within ${waited}; register fails`
      : 'session store: Redis refused the connection; register fails')
  return sessionError('FST_SESSION_STORE_UNAVAILABLE', FAILURE_PHRASE[kind], failure.cause)
}
