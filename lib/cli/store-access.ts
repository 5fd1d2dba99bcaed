/**
 * The Redis side of the operations CLI (cli/main.ts): opens the same store the plugin opens
 * (store/connect.ts: TLS, fail-fast start, no credentials in messages) from environment
 * variables, and runs the plugin's own admin operations (admin.ts) on it — no second copy of any
 * Redis logic, key naming or script. Only `stats` reads Redis directly (SCAN, INFO, MEMORY USAGE).
 *
 * Protects against an operations tool that leaks what it handles: it never prints a session id,
 * a secret, a password or the Redis URL; sessions are shown by their `ref` only.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { createAdmin, type SessionDecorator } from '../admin.ts'
import { assembleCore } from '../services.ts'
import { SessionError, sessionError } from '../errors.ts'
import { Events } from '../events.ts'
import { Guard } from '../store-deadline.ts'
import { EpochKeeper } from '../epoch.ts'
import { establishNamingKey, resetNamingKey } from '../keyring.ts'
import { KeyNames, keyringKey } from '../key-names.ts'
import { normaliseOptions } from '../config.ts'
import { Resolver } from '../resolve.ts'
import { openRedisStore } from '../store/connect.ts'
import { Tally } from '../telemetry.ts'
import type { EncryptionKey, EncryptionOptions, RedisConnectOptions } from '../public-types.ts'

export type Env = Readonly<Record<string, string | undefined>>

/** A logger for the CLI: warnings and errors to stderr as one plain line each. */
export function stderrLogger (write: (line: string) => void = (line) => process.stderr.write(line)): FastifyBaseLogger {
  const line = (level: string) => (obj: unknown, msg?: string): void => {
    const text = typeof obj === 'string' ? obj : msg ?? ''
    const store = (obj as { store?: { at?: string, error?: Record<string, string> } } | null)?.store
    const error = store?.error
    const detail = error === undefined
      ? ''
      : ` [${store?.at ?? ''}] ${error.code ?? error.name ?? ''}: ${error.message ?? ''}` +
        `${error.hint === undefined ? '' : ` (${error.hint})`}`
    write(`${level}: ${text}${detail}\n`)
  }
  const quiet = (): void => {}
  const log: Record<string, unknown> = {
    level: 'warn',
    fatal: line('fatal'),
    error: line('error'),
    warn: line('warning'),
    info: quiet,
    debug: quiet,
    trace: quiet,
    silent: quiet,
  }
  log.child = () => log
  return log as unknown as FastifyBaseLogger
}

/** `SESSION_SECRETS` (comma-separated, newest first) or `SESSION_SECRET`, or nothing. */
export function secretsFrom (env: Env): string[] | undefined {
  const list = env.SESSION_SECRETS ?? env.SESSION_SECRET
  if (list === undefined || list.trim() === '') return undefined
  return (env.SESSION_SECRETS !== undefined ? list.split(',') : [list]).map((s) => s.trim())
}

/**
 * Redis connection options from `REDIS_URL`, `REDIS_CA`/`REDIS_CERT`/`REDIS_KEY` (file paths),
 * `REDIS_ALLOW_PLAINTEXT`.
 */
export function redisFrom (env: Env): RedisConnectOptions {
  const url = env.REDIS_URL
  if (url === undefined || url === '') {
    throw sessionError('FST_SESSION_STORE_OPTION', 'set REDIS_URL (e.g. redis://127.0.0.1:6379, or rediss://… for TLS)')
  }
  const socket: Record<string, unknown> = {}
  for (const [name, option] of [['REDIS_CA', 'ca'], ['REDIS_CERT', 'cert'], ['REDIS_KEY', 'key']] as const) {
    const file = env[name]
    if (file === undefined || file === '') continue
    if (!url.startsWith('rediss:')) {
      throw sessionError('FST_SESSION_STORE_OPTION', `${name} needs a rediss:// REDIS_URL`)
    }
    try {
      socket[option] = readFileSync(file)
    } catch {
      throw sessionError('FST_SESSION_STORE_OPTION', `${name}: the file cannot be read`)
    }
  }
  const allow = env.REDIS_ALLOW_PLAINTEXT
  return { url, socket: socket as RedisConnectOptions['socket'], allowPlaintext: allow === 'true' || allow === '1' }
}

/**
 * `SESSION_ENCRYPTION_KEYS`: the application's `encryption.keys` as `id:key` pairs, comma-separated,
 * newest first (keys base64 or base64url, 32 bytes), or nothing. Needed only to show what
 * encryption hides at rest: the user id that a listing checks, the user agent and IP.
 */
export function encryptionFrom (env: Env): EncryptionOptions | undefined {
  const list = env.SESSION_ENCRYPTION_KEYS
  if (list === undefined || list.trim() === '') return undefined
  const keys: EncryptionKey[] = list.split(',').map((pair, i) => {
    const at = pair.indexOf(':')
    // The value is never repeated: only the position of the pair that is wrong.
    if (at <= 0) {
      throw sessionError('FST_SESSION_ENCRYPTION_OPTION',
        `SESSION_ENCRYPTION_KEYS: pair ${i + 1} must be id:key (newest first, comma-separated)`)
    }
    return { id: pair.slice(0, at).trim(), key: pair.slice(at + 1).trim() }
  })
  return { keys, fields: '*' }
}

export interface Ops {
  readonly admin: SessionDecorator
  readonly keys: KeyNames
  /**
   * Why a user's live index entries were not all listed: their records keep the user id
   * encrypted and no SESSION_ENCRYPTION_KEYS opened it (`'encrypted'`), or the secrets given
   * verify none of them (`'unverified'`); `undefined` when every entry was listed.
   */
  unlisted (userId: string, listed: number): Promise<{ count: number, reason: 'encrypted' | 'unverified' } | undefined>
  /** Whether anything marks the key prefix as in use: the naming key ring or the epoch. */
  prefixInUse (): Promise<boolean>
  /** A raw command on the store's connection (stats only). */
  send (args: string[]): Promise<unknown>
  close (): Promise<void>
}

/**
 * Opens the store named by the environment. `needSecrets`: user indexes are named with the
 * naming key, which the store holds only wrapped under the application's secrets (and records
 * are sealed with them, the epoch signed under it), so commands that take a user id, and
 * `revoke-all`, need those secrets. `reset`: start over with a new naming key instead of opening
 * the ring (`reset-keyring`).
 */
export async function openOps (env: Env, needSecrets: boolean, log: FastifyBaseLogger, reset = false): Promise<Ops> {
  const given = secretsFrom(env)
  if (given === undefined && needSecrets) {
    throw sessionError('FST_SESSION_SECRET_INVALID', 'missing: set SESSION_SECRETS (comma-separated, newest first) ' +
      "or SESSION_SECRET to the application's secrets; user indexes are named with them")
  }
  // Commands without a user id never name an index: any secret does for them.
  const secrets = given ?? [randomBytes(32).toString('base64url')]
  const redis = redisFrom(env)
  const encryption = encryptionFrom(env)
  const config = normaliseOptions({
    secrets,
    redis,
    keyPrefix: env.SESSION_KEY_PREFIX ?? 'sess:',
    ...(encryption === undefined ? {} : { encryption }),
    storeTimeout: 10_000,
    connectTimeout: 10_000,
    // Listings show the login's user agent and IP wherever the application recorded them.
    sessionInfo: { userAgent: true, ip: true },
  })
  const events = new Events(undefined, log)
  const guard = new Guard(config.storeTimeout, log, events)
  const opened = await openRedisStore(redis, config, log, () => {})
  guard.attach(opened.store)
  // The naming key is read (never made) with the application's secrets; commands without a
  // user id name no index, so they need neither.
  let naming: Buffer
  try {
    const ring = {
      store: opened.store, guard, prefix: config.keyPrefix, secrets: config.secrets, mayCreate: false, waitMs: 0,
    }
    // Not opened for commands without a user id even when secrets are set (the environment of
    // a shell that also runs user commands): `stats` on a prefix without a ring must say so.
    naming = !needSecrets || given === undefined
      ? randomBytes(32)
      : reset
        ? await resetNamingKey(ring)
        : await establishNamingKey(ring).catch(async (err: unknown) => {
          // Nothing at all under this prefix (no ring, no epoch: a mistyped SESSION_KEY_PREFIX):
          // the command says so itself (exit 3). A ring missing beside an epoch is an error.
          if (err instanceof SessionError && err.code === 'FST_SESSION_KEYRING_MISSING' &&
            !await guard.run(opened.store.exists(config.keyPrefix + 'epoch'))) return randomBytes(32)
          throw err
        })
  } catch (err) {
    await opened.close()
    throw err
  }
  const keys = new KeyNames(config.keyPrefix, naming, opened.store.sharded)
  const core = assembleCore({
    config,
    store: opened.store,
    keys,
    epochs: new EpochKeeper(opened.store, keys, guard),
    guard,
    events,
    log,
    // With SESSION_ENCRYPTION_KEYS, meta values (user id, user agent, IP) are opened; the CLI
    // shows no data field.
    unreadable: () => {},
    tally: new Tally(),
  })
  const client = opened.client as unknown as { sendCommand (args: string[]): Promise<unknown> }
  const send = (args: string[]): Promise<unknown> => within(client.sendCommand(args), config.storeTimeout)
  return {
    admin: createAdmin(core, new Resolver(core)),
    keys: core.keys,
    async unlisted (userId, listed) {
      const now = config.clock()
      const live = (await guard.run(opened.store.members(core.keys.index(core.keys.userKey(userId)))))
        .filter((e) => e.expiresAt > now)
      if (live.length <= listed) return undefined
      const records = (await Promise.all(live.map((e) => guard.run(opened.store.read(core.keys.session(e.hash))))))
        .filter((r) => r !== undefined)
      if (records.length <= listed) return undefined
      // A user id stored in plaintext is marked 'p:'; anything else is a ciphertext.
      const encrypted = config.cipher === undefined &&
        records.some((r) => r.user !== undefined && !r.user.startsWith('p:'))
      return { count: records.length - listed, reason: encrypted ? 'encrypted' : 'unverified' }
    },
    async prefixInUse () {
      return Number(await send(['EXISTS', keyringKey(config.keyPrefix), core.keys.epoch])) > 0
    },
    send,
    close: opened.close,
  }
}

/** `call`, or FST_SESSION_STORE_UNAVAILABLE after `ms` (the store's client has no command timeout). */
function within<T> (call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(sessionError('FST_SESSION_STORE_UNAVAILABLE', 'no reply from Redis within 10 s')),
      ms)
  })
  return Promise.race([call, late]).finally(() => clearTimeout(timer))
}

export interface Stats {
  keyPrefix: string
  /** Whether an application ever ran with this prefix (its key ring or epoch exists). */
  prefixInUse: boolean
  /** Session keys in Redis: live ones, and revoked ones (revokeAll) until their TTL ends. */
  sessionRecords: number
  userIndexes: number
  /** How many times `revokeAll` moved the epoch (its counter; never its token, which records' tags are made from). */
  epoch: number
  /**
   * Redis's client-side-caching table: keys tracked per key. The plugin's own clients track by
   * prefix (broadcast), which uses no table at all, so this counts only other clients' tracking.
   */
  trackedKeys: number | undefined
  /** Prefixes tracked in broadcast mode (one per key prefix in use by an instance). */
  trackingPrefixes: number | undefined
  /** `tracking-table-max-keys` (0 = unlimited), undefined when CONFIG GET is not permitted. */
  trackingTableMaxKeys: number | undefined
  /** Mean `MEMORY USAGE` of up to `sampled` session keys, in bytes. */
  bytesPerSession: number | undefined
  sampled: number
  usedMemory: number | undefined
}

/** Glob-escapes a prefix for SCAN MATCH. */
function globEscape (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function infoField (info: unknown, name: string): number | undefined {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(String(info))
  return m === null ? undefined : Number(m[1])
}

/** Session records, user indexes, tracked keys against the table limit, memory per session. */
export async function collectStats (ops: Ops, sample = 200): Promise<Stats> {
  const prefix = ops.keys.prefix
  const session = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[A-Za-z0-9_-]{43}$`)
  const indexPrefix = ops.keys.index('')
  let cursor = '0'
  let sessionRecords = 0
  let userIndexes = 0
  const sampledKeys: string[] = []
  do {
    const reply = await ops.send(['SCAN', cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', '1000']) as
      [string, string[]] | { cursor: string, keys: string[] }
    const [next, keys] = Array.isArray(reply) ? reply : [reply.cursor, reply.keys]
    cursor = String(next)
    for (const key of keys.map(String)) {
      if (key.startsWith(indexPrefix)) userIndexes++
      else if (session.test(key)) {
        sessionRecords++
        if (sampledKeys.length < sample) sampledKeys.push(key)
      }
    }
  } while (cursor !== '0')
  let bytes = 0
  let measured = 0
  for (const key of sampledKeys) {
    const usage = await ops.send(['MEMORY', 'USAGE', key]).catch(() => null)
    if (typeof usage === 'number') { bytes += usage; measured++ }
  }
  const epoch = await ops.send(['GET', ops.keys.epoch])
  const info = await ops.send(['INFO']).catch(() => undefined)
  const limit = await ops.send(['CONFIG', 'GET', 'tracking-table-max-keys']).catch(() => undefined)
  const limitValue = Array.isArray(limit)
    ? limit[1]
    : limit instanceof Map
      ? limit.get('tracking-table-max-keys')
      : typeof limit === 'object' && limit !== null
        ? (limit as Record<string, unknown>)['tracking-table-max-keys']
        : undefined
  return {
    keyPrefix: prefix,
    prefixInUse: sessionRecords > 0 || userIndexes > 0 || await ops.prefixInUse(),
    sessionRecords,
    userIndexes,
    epoch: typeof epoch === 'string' && /^\d+\./.test(epoch) ? Number(epoch.slice(0, epoch.indexOf('.'))) - 1 : 0,
    trackedKeys: infoField(info, 'tracking_total_keys'),
    trackingPrefixes: infoField(info, 'tracking_total_prefixes'),
    trackingTableMaxKeys: limitValue === undefined ? undefined : Number(limitValue),
    bytesPerSession: measured === 0 ? undefined : Math.round(bytes / measured),
    sampled: measured,
    usedMemory: infoField(info, 'used_memory'),
  }
}
