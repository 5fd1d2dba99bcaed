/**
 * Public types of fastify-hardened-session. Session data is typed by declaration merging:
 *
 * ```ts
 * declare module 'fastify-hardened-session' {
 *   interface SessionData { theme: 'dark' | 'light', cart: string[] }
 * }
 * ```
 */
import type { RedisClusterOptions, RedisClientOptions } from 'redis'
import type { SessionErrorCode } from './errors.ts'
import type { SessionStore } from './store/contract.ts'

/** Application session data; extend it by declaration merging. Values must be JSON-serialisable. */
export interface SessionData {}

/** Keys usable with `request.session.get/set`: the merged `SessionData` keys, or any string. */
export type SessionKey = keyof SessionData extends never ? string : keyof SessionData & string
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown

export type SessionEventType =
  | 'created' | 'login' | 'logout' | 'regenerated' | 'destroyed' | 'expired' | 'revoked' | 'revoked_all'
  | 'invalid_cookie' | 'invalid_record' | 'store_error' | 'decrypt_error'
  | 'login_failed' | 'login_throttled' | 'csrf'
  | 'device_bound' | 'device_bound_refresh_failed'

export interface SessionEvent {
  type: SessionEventType
  at: Date
  userId?: string
  /** Short non-reversible reference to the session (never the id itself). */
  sessionRef?: string
  /** For `store_error`, `decrypt_error` and `invalid_record`: the error code, never data. */
  code?: SessionErrorCode
}

export interface SessionInfo {
  /** Same short reference as in events and `request.session.ref`; not the id, not usable as a cookie. */
  ref: string
  createdAt: Date
  lastSeenAt: Date
  expiresAt: Date
  authenticatedAt: Date | undefined
  /** The login's User-Agent, when `sessionInfo.userAgent` is on. */
  userAgent?: string
  /** The login's `request.ip`, when `sessionInfo.ip` is on. */
  ip?: string
  /** Whether a device is bound to the session (`deviceBound`: its refreshes need the device's key). */
  deviceBound: boolean
}

export interface PasswordOptions {
  /** argon2 memory cost in KiB (default 65536 = 64 MiB, RFC 9106 §4; OWASP's minimum is 19 MiB). */
  memoryCost?: number | undefined
  /** argon2 iterations (default 3). */
  timeCost?: number | undefined
  /** argon2 lanes (default 1). */
  parallelism?: number | undefined
  /** Optional secret (≥ 32 bytes) passed to argon2 as its secret input. */
  pepper?: string | Buffer | undefined
  /** Longest accepted password in UTF-8 bytes (default 1024). */
  maxLength?: number | undefined
  /** Most hashes running at once (default: CPU cores). */
  maxConcurrency?: number | undefined
  /** Most hashes waiting for a slot before new ones fail fast (default 64 × maxConcurrency). */
  maxQueue?: number | undefined
  /** Shortest new password in code points after NFKC (default 8); checked when hashing only. */
  minLength?: number | undefined
  /** Breach check for new passwords (true = refuse); checked when hashing only. */
  isCompromised?: ((password: string) => boolean | Promise<boolean>) | undefined
}

export interface EncryptionKey {
  id: string
  /** 32 bytes, as a Buffer or a base64 / base64url string. */
  key: Buffer | string
}

export interface EncryptionOptions {
  /** Newest first: `keys[0]` encrypts, every key decrypts. */
  keys: EncryptionKey[]
  /** Field names to encrypt, or `'*'` for every field. */
  fields: string[] | '*'
}

export interface CookieOptions {
  name?: string | undefined
  /** Any case ('Lax' = 'lax'). */
  sameSite?: 'lax' | 'strict' | 'none' | 'Lax' | 'Strict' | 'None' | undefined
  secure?: boolean | undefined
  domain?: string | undefined
  path?: string | undefined
  partitioned?: boolean | undefined
}

/**
 * A node-redis client, cluster client or Sentinel client the application made (`createClient`,
 * `createCluster`, `createSentinel`), used as given. Described by the members the plugin relies on,
 * so that a mistyped options object is reported by the name of its wrong key, not matched
 * against every command of a client.
 */
export interface RedisConnection {
  readonly isOpen: boolean
  connect (): Promise<unknown>
  sendCommand (...args: any[]): Promise<unknown>
}

/**
 * Options of node-redis's `createClient` that the plugin sets itself; giving one fails register
 * with FST_SESSION_STORE_OPTION (to choose them, make the client and pass it as `redis`).
 */
export type RedisPluginSetOption =
  | 'RESP' | 'clientSideCache' | 'keyPrefix' | 'disableOfflineQueue' | 'commandOptions'
  | 'maintNotifications' | 'maintEndpointType' | 'maintRelaxedCommandTimeout' | 'maintRelaxedSocketTimeout'
  | 'himportRegistry'

/**
 * Connection options for the client the plugin makes: node-redis `createClient` options (`url`,
 * `socket`, `username`, `password`, `database`, …) without those the plugin sets itself. `url` is
 * a `redis://` or `rediss://` URL; a `url` key whose value is missing (an unset variable) fails
 * register instead of falling back to localhost.
 */
export type RedisConnectOptions = {
  [K in Exclude<keyof RedisClientOptions, RedisPluginSetOption | 'url'>]?: RedisClientOptions[K] | undefined
} & {
  url?: string
  /**
   * With `NODE_ENV=production`, a plaintext connection to a host that is not loopback fails
   * register (FST_SESSION_INSECURE_TRANSPORT); `true` allows it (e.g. a trusted private network).
   */
  allowPlaintext?: boolean | undefined
  /**
   * Register refuses a Redis whose `maxmemory-policy` may evict keys without a TTL (`allkeys-*`:
   * the revocation epoch, the naming key ring, the login-throttle counters) with
   * FST_SESSION_EVICTION_POLICY; `true` accepts it (docs/redis-hardening.md says what it costs).
   */
  allowEviction?: boolean | undefined
}

/**
 * node-redis `createCluster` options for a cluster the plugin makes (`redis: { cluster: … }`);
 * `allowPlaintext` as for one client.
 */
export type RedisClusterConnectOptions = Omit<RedisClusterOptions,
  'RESP' | 'clientSideCache' | 'keyPrefix' | 'modules' | 'functions' | 'scripts' | 'commandOptions' | 'himportRegistry'
> & { allowPlaintext?: boolean | undefined, allowEviction?: boolean | undefined }

/**
 * Options of `app.register(hardenedSession, options)`. Every optional option also accepts
 * `undefined`, meaning its default (so `exactOptionalPropertyTypes` code can pass a value that
 * may be unset). Durations are in milliseconds.
 */
export interface HardenedSessionOptions {
  /** Cookie-signing keys, newest first; `[0]` signs, every entry verifies. Each ≥ 32 bytes. */
  secrets: Array<string | Buffer>
  /**
   * Connection options (the plugin makes a RESP3 client with client-side caching), `{ cluster:
   * { rootNodes, … } }` (the same for a Redis Cluster), or a client / cluster client you made
   * (as it is, or as `{ client, allowEviction }`). `allowEviction`: see RedisConnectOptions.
   */
  redis?: RedisConnectOptions | { cluster: RedisClusterConnectOptions }
    | { client: RedisConnection, allowEviction?: boolean | undefined } | RedisConnection | undefined
  /** Any other store, e.g. `createMemoryStore()`. Exactly one of `redis` / `store`. */
  store?: SessionStore | undefined
  keyPrefix?: string | undefined
  /** ms (default 30 min); under one minute only with `allowShortDurations`. */
  idleTimeout?: number | undefined
  /** ms (default 12 h); under one minute only with `allowShortDurations`. */
  absoluteTimeout?: number | undefined
  /** ms (default 60 s, at most `idleTimeout / 2`). */
  touchInterval?: number | undefined
  cookie?: CookieOptions | undefined
  encryption?: EncryptionOptions | undefined
  maxSessionBytes?: number | undefined
  /** ms (default 1000). */
  storeTimeout?: number | undefined
  maxSessionsPerUser?: number | undefined
  /** ms `register` waits for the store at start-up (default 10 s). */
  connectTimeout?: number | undefined
  /** Entries in the process-local cache of decoded sessions (default 10 000). */
  cacheSize?: number | undefined
  /** Estimated heap bytes the process-local cache may hold (default 64 MiB). */
  cacheBytes?: number | undefined
  /** `Clear-Site-Data` directives sent on logout (default `'"cache"'`); `false` sends none. */
  clearSiteData?: string | false | undefined
  /** What `listUserSessions` may show: the login's user agent and IP (default both false). */
  sessionInfo?: { userAgent?: boolean | undefined, ip?: boolean | undefined } | undefined
  onEvent?: ((event: SessionEvent) => void) | undefined
  password?: PasswordOptions | undefined
  /**
   * Failed password logins counted per account and per client IP, in the store (shared by every
   * instance). Defaults: 10 per account and 50 per IP per 15 minutes (`windowMs` in ms, under one
   * minute only with `allowShortDurations`). `false` turns it off.
   */
  loginThrottle?: {
    perAccount?: ThrottleLimitOptions | undefined, perIp?: ThrottleLimitOptions | undefined
  } | false | undefined
  /**
   * Origin check of unsafe requests that carry the session cookie (on by default): a foreign
   * `Origin`, or `Sec-Fetch-Site: cross-site`, gets 403 `FST_SESSION_CSRF`. `false` turns it off.
   */
  csrf?: { trustedOrigins?: string[] | undefined } | false | undefined
  /**
   * Name of the request decorator (default `'session'`: `request.session`). Another name lets
   * the plugin run beside a plugin that already has `request.session` (`@fastify/session`
   * during a migration; import from `fastify-hardened-session/side-by-side` then, see
   * docs/migration.md).
   */
  decorator?: string | undefined
  /**
   * Allows `idleTimeout`, `absoluteTimeout` and `loginThrottle.*.windowMs` under one minute (for
   * tests). Without it such values fail register: they are usually seconds written where
   * milliseconds belong (`idleTimeout: 1800` would be 1.8 s).
   */
  allowShortDurations?: boolean | undefined
  /** Milliseconds since the epoch (default `Date.now`). For tests that move time. */
  clock?: (() => number) | undefined
  /**
   * `'replica'` (default): a revocation (logout, destroy, revokeSession, revokeOthers,
   * revokeUser, revokeAll) resolves only once a replica of every Redis master it wrote to
   * acknowledged it (`WAIT`), when that master has replicas, so a failover cannot lose it; else
   * it rejects with 503 FST_SESSION_STORE_UNAVAILABLE. `'primary'`: once the master has it.
   */
  durability?: 'replica' | 'primary' | undefined
  /**
   * Device Bound Session Credentials (off by default): a login asks the browser to register a
   * key; a bound session then also needs a short-lived bound cookie that only the key's holder
   * can refresh. Paths of the two endpoints the plugin registers; `cookieMaxAge` in ms (default
   * 10 min; under one minute only with `allowShortDurations`). See docs/device-bound-sessions.md.
   */
  deviceBound?: DeviceBoundOptions | false | undefined
}

export interface DeviceBoundOptions {
  /** Default `'/.well-known/device-bound-sessions/register'`. */
  registrationPath?: string | undefined
  /** Default `'/.well-known/device-bound-sessions/refresh'`. */
  refreshPath?: string | undefined
  /** Lifetime of the bound cookie, ms (default 10 min). */
  cookieMaxAge?: number | undefined
}

export interface ThrottleLimitOptions {
  max?: number | undefined
  /** ms. */
  windowMs?: number | undefined
}
