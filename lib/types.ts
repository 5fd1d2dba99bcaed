/**
 * Public types of fastify-hardened-session. Session data is typed by declaration merging:
 *
 * ```ts
 * declare module 'fastify-hardened-session' {
 *   interface SessionData { theme: 'dark' | 'light', cart: string[] }
 * }
 * ```
 */
import type { RedisClientType, RedisClusterOptions, RedisClusterType, RedisClientOptions, RedisSentinelType } from 'redis'
import type { SessionErrorCode } from './errors.ts'
import type { SessionStore } from './store/types.ts'

/** Application session data; extend it by declaration merging. Values must be JSON-serialisable. */
export interface SessionData {}

/** Keys usable with `request.session.get/set`: the merged `SessionData` keys, or any string. */
export type SessionKey = keyof SessionData extends never ? string : keyof SessionData & string
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown

export type SessionEventType =
  | 'created' | 'login' | 'logout' | 'regenerated' | 'destroyed' | 'expired' | 'revoked' | 'revoked_all'
  | 'invalid_cookie' | 'invalid_record' | 'store_error' | 'decrypt_error'
  | 'login_failed' | 'login_throttled' | 'csrf'

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
}

export interface PasswordOptions {
  /** argon2 memory cost in KiB (default 65536 = 64 MiB, RFC 9106 §4; OWASP's minimum is 19 MiB). */
  memoryCost?: number
  /** argon2 iterations (default 3). */
  timeCost?: number
  /** argon2 lanes (default 1). */
  parallelism?: number
  /** Optional secret (≥ 32 bytes) passed to argon2 as its secret input. */
  pepper?: string | Buffer
  /** Longest accepted password in UTF-8 bytes (default 1024). */
  maxLength?: number
  /** Most hashes running at once (default: CPU cores). */
  maxConcurrency?: number
  /** Most hashes waiting for a slot before new ones fail fast (default 64 × maxConcurrency). */
  maxQueue?: number
  /** Shortest new password in code points after NFKC (default 8); checked when hashing only. */
  minLength?: number
  /** Breach check for new passwords (true = refuse); checked when hashing only. */
  isCompromised?: (password: string) => boolean | Promise<boolean>
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
  name?: string
  /** Any case ('Lax' = 'lax'). */
  sameSite?: 'lax' | 'strict' | 'none' | 'Lax' | 'Strict' | 'None'
  secure?: boolean
  domain?: string
  path?: string
  partitioned?: boolean
}

export type RedisConnection = RedisClientType<any, any, any, any, any> | RedisClusterType<any, any, any, any, any> | RedisSentinelType<any, any, any, any, any>
export type RedisConnectOptions = Omit<RedisClientOptions, 'RESP' | 'clientSideCache'> & {
  /**
   * With `NODE_ENV=production`, a plaintext connection to a host that is not loopback fails
   * register (FST_SESSION_INSECURE_TRANSPORT); `true` allows it (e.g. a trusted private network).
   */
  allowPlaintext?: boolean
  /**
   * Register refuses a Redis whose `maxmemory-policy` may evict keys without a TTL (`allkeys-*`:
   * the revocation epoch, the naming key ring, the login-throttle counters) with
   * FST_SESSION_EVICTION_POLICY; `true` accepts it (docs/redis-hardening.md says what it costs).
   */
  allowEviction?: boolean
}
/** node-redis `createCluster` options for a cluster the plugin makes (`redis: { cluster: … }`); `allowPlaintext` as for one client. */
export type RedisClusterConnectOptions = Omit<RedisClusterOptions, 'RESP' | 'clientSideCache' | 'keyPrefix' | 'modules' | 'functions' | 'scripts'> & { allowPlaintext?: boolean }

export interface HardenedSessionOptions {
  /** Cookie-signing keys, newest first; `[0]` signs, every entry verifies. Each ≥ 32 bytes. */
  secrets: Array<string | Buffer>
  /**
   * Connection options (the plugin makes a RESP3 client with client-side caching), `{ cluster:
   * { rootNodes, … } }` (the same for a Redis Cluster), or a client / cluster client you made
   * (as it is, or as `{ client, allowEviction }`). `allowEviction`: see RedisConnectOptions.
   */
  redis?: RedisConnectOptions | { cluster: RedisClusterConnectOptions, allowEviction?: boolean } | { client: RedisConnection, allowEviction?: boolean } | RedisConnection
  /** Any other store, e.g. `createMemoryStore()`. Exactly one of `redis` / `store`. */
  store?: SessionStore
  keyPrefix?: string
  idleTimeout?: number
  absoluteTimeout?: number
  touchInterval?: number
  cookie?: CookieOptions
  encryption?: EncryptionOptions
  maxSessionBytes?: number
  storeTimeout?: number
  maxSessionsPerUser?: number
  /** ms `register` waits for the store at start-up (default 10 s). */
  connectTimeout?: number
  /** Entries in the process-local cache of decoded sessions (default 10 000). */
  cacheSize?: number
  /** Estimated heap bytes the process-local cache may hold (default 64 MiB). */
  cacheBytes?: number
  /** `Clear-Site-Data` directives sent on logout (default `'"cache"'`); `false` sends none. */
  clearSiteData?: string | false
  /** What `listUserSessions` may show: the login's user agent and IP (default both false). */
  sessionInfo?: { userAgent?: boolean, ip?: boolean }
  onEvent?: (event: SessionEvent) => void
  password?: PasswordOptions
  /**
   * Failed password logins counted per account and per client IP, in the store (shared by every
   * instance). Defaults: 10 per account and 50 per IP per 15 minutes. `false` turns it off.
   */
  loginThrottle?: { perAccount?: { max?: number, windowMs?: number }, perIp?: { max?: number, windowMs?: number } } | false
  /**
   * Origin check of unsafe requests that carry the session cookie (on by default): a foreign
   * `Origin`, or `Sec-Fetch-Site: cross-site`, gets 403 `FST_SESSION_CSRF`. `false` turns it off.
   */
  csrf?: { trustedOrigins?: string[] } | false
  /** Milliseconds since the epoch (default `Date.now`). For tests that move time. */
  clock?: () => number
  /**
   * `'replica'` (default): a revocation (logout, destroy, revokeSession, revokeOthers,
   * revokeUser, revokeAll) resolves only once a replica of every Redis master it wrote to
   * acknowledged it (`WAIT`), when that master has replicas, so a failover cannot lose it; else
   * it rejects with 503 FST_SESSION_STORE_UNAVAILABLE. `'primary'`: once the master has it.
   */
  durability?: 'replica' | 'primary'
}
