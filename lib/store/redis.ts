/**
 * Session store on Redis (node-redis, RESP3; one client or a Redis Cluster) with a
 * process-local cache kept coherent by the client-side-caching invalidations Redis pushes.
 *
 * Protects against serving what another instance revoked or changed: every key this process
 * caches (session records, user index entries, the global epoch) lives under the tracked prefix
 * (tracking.ts), any change or expiry elsewhere pushes an invalidation that drops the local
 * entry synchronously, and whenever invalidations may have been lost (a connection error,
 * close, stall, or a new cluster topology: backend.ts, node-link.ts, cluster.ts) everything held locally is
 * dropped and nothing is served from a link until it answers again.
 *
 * Session writes return the session as it is right after them, and that snapshot is cached, so a
 * session stays a cache hit across this process's own writes (see `#write` for why Redis does
 * not echo them): the whole hash after an update (UPDATE returns it); a created session
 * is what was written (CREATE on a new key returns 1, not the hash). Index and epoch writes are not cached: the
 * local entry is dropped instead, except the entry a login admits (`admit`), held alone. Replies can reach the
 * cache out of order (reads and writes resolve through promise chains of different depth), so
 * every snapshot carries a sequence number: per key, only a snapshot sent after the key's last
 * invalidation, and (for sessions) newer than the newest applied, is cached.
 *
 * Layout (every command or script touches one key, or a record and its epoch copy in one slot):
 *   <prefix><sha256(id)>   hash: m:* meta, d:<field> data; PEXPIRE ≤ idle/absolute deadline
 *   <prefix>u:<hmac(user)> hash: lineage ref → '<hash> <deadline> <loginAt>'; PEXPIRE absolute
 *   <prefix>epoch          string: the global revocation epoch (`<n>.<token>.<mac>`); on a cluster
 *                          also <prefix>epoch{<slot tag>}, one copy per slot (key-names.ts)
 *   <prefix>t:<c>          hash: login-throttle counters '<count> <window end>', no TTL (scripts.ts)
 */
import { BoundedCache } from '../lru.ts'
import { ClusterBackend, isCluster, type ClusterConnection } from './cluster.ts'
import { decodeEntry, decodeRecord, encodeEntry, encodeRecord, encodeUpdate, heapBytes } from './record-encoding.ts'
import { ClientBackend, type Backend, type BackendHooks, type ClientConnection } from './backend.ts'
import { SessionError, sessionError } from '../errors.ts'
import {
  ADMIT, CREATE, DISMISS, DISMISS_ALL, EPOCH, HIT, KEYRING, RAISE_MANY, READ, RELEASE, REPLACE_EPOCH, TAKE, UNHIT,
  UPDATE, type Script, type Send,
} from './scripts.ts'
import type {
  AdmitOptions, AdmitResult, EpochCheck, HitCount, IndexEntry, KeyringChange, KeyringMode, RecordUpdate, SessionRecord,
  SessionStore, StoreStats,
} from './contract.ts'

/** Other entries of a large index returned to a login, for the caller to prune (prune.ts). */
const SAMPLE = 8
/**
 * A login asks for a sample with this probability (chosen at random per login, so that no
 * regular pattern of logins leaves one user's index unsampled): 8 entries looked at per 4 logins
 * remove about 2 dead entries per login when half the index is dead, more than the one entry a
 * login adds, so an index stays within about twice its live sessions (plus the floor).
 */
const SAMPLE_CHANCE = 0.25

/** A node-redis client or cluster client. */
export type Connection = ClientConnection | ClusterConnection

/**
 * The snapshots of one key in flight. `staleBefore`: snapshots sent at or before this sequence
 * number predate an invalidation and are not cached; `newest`: the newest snapshot settled so far.
 */
interface Flight { pending: number, newest: number, staleBefore: number }

/** What a cache miss read: the record, its epoch copy, and its index entry when read with it. */
interface Fetched { record: SessionRecord | undefined, epoch: string, member?: IndexEntry | null }

/** A user index as far as this process has read it: ref → entry, or null when known absent. */
type Members = Map<string, IndexEntry | null>

/** CREATE refused: the record's epoch copy holds another value. */
interface EpochMoved { readonly moved: string }

const ABSENT = Symbol('absent')
const TOO_LARGE = Symbol('too large')
type Cached = SessionRecord | typeof ABSENT | Members | string

/** A flat `[field, value, …]` script reply as an object. */
function pairs (flat: unknown[], from = 0): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = from; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

/** Index entries from a flat script reply (`from` skips a status) or an HGETALL map reply. */
function entries (reply: unknown, from = 0): IndexEntry[] {
  const out: IndexEntry[] = []
  const add = (ref: unknown, value: unknown): void => {
    if (typeof value !== 'string') return
    const entry = decodeEntry(String(ref), value)
    if (entry !== undefined) out.push(entry)
  }
  if (Array.isArray(reply)) {
    for (let i = from; i + 1 < reply.length; i += 2) add(reply[i], reply[i + 1])
  } else if (reply instanceof Map) {
    for (const [ref, value] of reply) add(ref, value)
  } else if (typeof reply === 'object' && reply !== null) {
    for (const [ref, value] of Object.entries(reply)) add(ref, value)
  }
  return out
}

/** A throttle script's `{count, ms left}` reply. */
function hitCount (reply: unknown): HitCount {
  const [count, ttlMs] = reply as [unknown, unknown]
  return { count: Number(count), ttlMs: Number(ttlMs) }
}

/** An HGETALL reply (a map as an object, a Map or a flat array, depending on the type mapping) as an object. */
function hashOf (reply: unknown): Record<string, string> {
  if (Array.isArray(reply)) return pairs(reply)
  if (reply instanceof Map) return Object.fromEntries([...reply].map(([k, v]) => [String(k), String(v)]))
  return typeof reply === 'object' && reply !== null ? reply as Record<string, string> : {}
}

export interface RedisStoreOptions {
  cacheSize: number
  /** Upper bound of the local cache's estimated heap use. */
  cacheBytes: number
  /** ms: a probe or call slower than this marks the link stalled. */
  storeTimeout: number
  /** ms between liveness probes of an idle connection. */
  probeInterval: number
  /** Called on every connection state change (`node`: a cluster node); the plugin logs once per outage. */
  onStatus?: (up: boolean, err?: unknown, node?: string) => void
  /** Called once with advice for the operator (logged as a warning). */
  onNotice?: (message: string) => void
  /**
   * A second connection of the same kind (`durability: 'replica'`): revocations are written and
   * `WAIT`ed for on it, so that a slow or lost replica delays revocations only, never the
   * connection every request reads through (WAIT blocks the connection it runs on).
   */
  durable?: Connection | undefined
}

/** Drops remembered by key (see `#droppedSince`). */
const DROP_LOG = 64

/** Epoch copies raised by one script call (`revokeAll` on a cluster). */
const RAISE_CHUNK = 2048

function chunks<T> (items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** A cluster refused a multi-slot script because a slot is not (or no longer) all on that node. */
function slotMoved (err: unknown): boolean {
  const cause = err instanceof SessionError && err.cause instanceof Error ? err.cause : err
  return cause instanceof Error && /CROSSSLOT|MOVED|ASK|TRYAGAIN|not served|access a non local key/i.test(cause.message)
}

/** How many replicas acknowledged (a WAIT reply). */
function acknowledged (reply: unknown): number {
  const n = Number(reply)
  return Number.isFinite(n) ? n : 0
}

export class RedisStore implements SessionStore {
  readonly #backend: Backend
  readonly #cache: BoundedCache<string, Cached> | undefined
  readonly #flights = new Map<string, Flight>()
  /** Reads in flight, joined by concurrent misses of the same key until it is invalidated. */
  readonly #reads = new Map<string, Promise<Fetched>>()
  /** Revocations are written here (the durable connection, or the main one). */
  readonly #revoke: Send
  readonly #durable: boolean
  readonly #waitMs: number
  readonly #watchers = new Set<(key: string | null) => void>()
  #fenced: Error | undefined
  #waitRefused = false
  readonly #notice: (message: string) => void
  #seq = 0
  /** Counts local drops (invalidations, own writes, resets). */
  #drops = 0
  /**
   * The keys of the last DROP_LOG drops (null: everything), by drop count: a read that learns a
   * key only from its reply (a miss's index entry) caches it only if that key was not dropped
   * while the read was out.
   */
  readonly #dropLog: Array<string | null> = new Array<string | null>(DROP_LOG).fill(null)
  #hits = 0
  #misses = 0
  #invalidations = 0

  constructor (conn: Connection, options: RedisStoreOptions) {
    const hooks: BackendHooks = {
      invalidate: (key) => {
        this.#invalidations++
        if (key === null) this.#dropAll()
        else this.#drop(key)
        for (const watcher of this.#watchers) watcher(key)
      },
      reset: () => {
        this.#dropAll()
        for (const watcher of this.#watchers) watcher(null)
      },
      status: (up, err, node) => { options.onStatus?.(up, err, node) },
      notice: (message) => { options.onNotice?.(message) },
    }
    this.#notice = (message) => { options.onNotice?.(message) }
    const timing = { interval: options.probeInterval, timeout: options.storeTimeout }
    this.#backend = isCluster(conn)
      ? new ClusterBackend(conn, timing, hooks)
      : new ClientBackend(conn, timing, hooks, options.durable !== undefined)
    // Without client-side caching there are no invalidations, so nothing may be cached locally.
    this.#cache = this.#backend.tracking ? new BoundedCache(options.cacheSize, options.cacheBytes) : undefined
    const durable = options.durable
    this.#durable = durable !== undefined
    const revoke: Send = durable === undefined
      ? (key, args) => this.#backend.send(key, args)
      : isCluster(durable)
        ? (key, args) => durable.sendCommand(key, false, args)
        : (_key, args) => durable.sendCommand(args)
    this.#revoke = (key, args) => this.#fenced === undefined ? revoke(key, args) : Promise.reject(this.#fenced)
    // WAIT answers before the store call's own deadline, so a missing acknowledgement is told apart from a stall.
    this.#waitMs = Math.max(1, Math.floor(options.storeTimeout * 0.8))
  }

  get notifies (): boolean {
    return this.#backend.tracking
  }

  get sharded (): boolean {
    return this.#backend instanceof ClusterBackend
  }

  /** Whether reads can be served locally (the connection has client-side caching). */
  get caching (): boolean {
    return this.#cache !== undefined
  }

  get #serving (): boolean {
    return this.#backend.serving
  }

  /** A raw command routed by `key` (scripts take it as their `Send`). */
  readonly #redis = (key: string, args: string[]): Promise<unknown> =>
    this.#fenced === undefined ? this.#backend.send(key, args) : Promise.reject(this.#fenced)

  #command (key: string, args: string[]): Promise<unknown> {
    return this.#redis(key, args)
  }

  /**
   * Stops every command of this process from now on (each fails with the coded 503): its control
   * state is no longer the deployment's, and anything it wrote would fight the processes whose is.
   */
  fence (reason: string): void {
    this.#fenced ??= sessionError('FST_SESSION_STORE_UNAVAILABLE', reason)
    this.#dropAll()
  }

  #drop (key: string): void {
    this.#dropLog[this.#drops++ % DROP_LOG] = key
    this.#cache?.delete(key)
    this.#reads.delete(key)
    const flight = this.#flights.get(key)
    if (flight !== undefined) flight.staleBefore = this.#seq
  }

  #dropAll (): void {
    this.#dropLog[this.#drops++ % DROP_LOG] = null
    this.#cache?.clear()
    this.#reads.clear()
    for (const flight of this.#flights.values()) flight.staleBefore = this.#seq
  }

  /** Whether `key` (or everything) was dropped since the drop count was `since` (true if too long ago to tell). */
  #droppedSince (key: string, since: number): boolean {
    if (this.#drops - since > DROP_LOG) return true
    for (let i = since; i < this.#drops; i++) {
      const dropped = this.#dropLog[i % DROP_LOG]
      if (dropped === null || dropped === key) return true
    }
    return false
  }

  /** A snapshot of `key` is about to be requested: its sequence number and the key's flight. */
  #send (key: string): [Flight, number] {
    let flight = this.#flights.get(key)
    if (flight === undefined) {
      flight = { pending: 0, newest: 0, staleBefore: 0 }
      this.#flights.set(key, flight)
    }
    flight.pending++
    return [flight, ++this.#seq]
  }

  /**
   * A snapshot arrived (or the call failed): whether it may be cached — sent after the key's last
   * invalidation and, with `newest`, newer than every snapshot settled before it.
   */
  #settle (key: string, flight: Flight, seq: number, ok: boolean, newest: boolean): boolean {
    const fresh = ok && this.#cache !== undefined && this.#serving && seq > flight.staleBefore &&
      (!newest || seq > flight.newest)
    if (seq > flight.newest) flight.newest = seq
    if (--flight.pending === 0) this.#flights.delete(key)
    return fresh
  }

  /** Runs `call` as a snapshot of `key`; `cache` stores the value when it may be cached. */
  async #snapshot<T> (key: string, newest: boolean, call: () => Promise<T>, cache: (value: T) => void): Promise<T> {
    const [flight, seq] = this.#send(key)
    let value: T
    try {
      value = await call()
    } catch (err) {
      this.#settle(key, flight, seq, false, newest)
      throw err
    }
    if (this.#settle(key, flight, seq, true, newest)) cache(value)
    return value
  }

  peek (key: string): SessionRecord | null | undefined {
    if (this.#cache === undefined || !this.#serving) return undefined
    const record = this.#cache.get(key)
    if (record === undefined) return undefined
    this.#hits++
    return record === ABSENT ? null : record as SessionRecord
  }

  getWithEpoch (
    key: string, epochKey: string, known: string, indexPrefix?: string
  ): Promise<Fetched> {
    this.#misses++
    // A joiner gets the record and epoch only: the index entry read with them may predate a
    // revocation that resolved before the joiner began (its reply can be held on the link),
    // so the joiner asks for the entry itself (a cached one is current: invalidations drop it).
    const joined = this.#reads.get(key)
    if (joined !== undefined) return joined.then(({ record, epoch }) => ({ record, epoch }))
    // The epoch copy is a snapshot of its own key: cached only if no invalidation of it came meanwhile.
    const [epochFlight, epochSeq] = this.#send(epochKey)
    // The index key is known only from the record: its entry is cached only if that key was not
    // dropped locally while the read was out (no invalidation of it came meanwhile).
    const drops = this.#drops
    let epoch: string | undefined
    let member: { indexKey: string, entry: IndexEntry | null } | undefined
    const record = this.#snapshot(key, true, async () => {
      const reply = await READ.run(this.#redis, key, [known, indexPrefix ?? ''], [epochKey]) as unknown[]
      epoch = String(reply[0])
      const r = decodeRecord(pairs(reply, 2))
      if (indexPrefix !== undefined && r?.userKey !== undefined) {
        const value = reply[1]
        const entry = typeof value === 'string' && value !== '' ? decodeEntry(r.ref, value) ?? null : null
        member = { indexKey: indexPrefix + r.userKey, entry }
      }
      return r
    }, (r) => {
      this.#cache?.set(key, r ?? ABSENT, r === undefined ? 64 : heapBytes(r))
    })
    const settle = (r: SessionRecord | undefined): void => {
      if (this.#settle(epochKey, epochFlight, epochSeq, epoch !== undefined, false)) {
        this.#cache?.set(epochKey, epoch as string, 64)
      }
      const learnt = member
      if (learnt !== undefined && r !== undefined && this.#serving && !this.#droppedSince(learnt.indexKey, drops)) {
        this.#cacheMember(learnt.indexKey, r.ref, learnt.entry)
      }
    }
    const read = record.then((r) => {
      settle(r)
      const fetched: Fetched = { record: r, epoch: epoch as string }
      if (member !== undefined) fetched.member = member.entry
      return fetched
    }, (err: unknown) => {
      settle(undefined)
      throw err
    })
    this.#reads.set(key, read)
    const forget = (): void => { if (this.#reads.get(key) === read) this.#reads.delete(key) }
    read.then(forget, forget)
    return read
  }

  async read (key: string): Promise<SessionRecord | undefined> {
    return decodeRecord(hashOf(await this.#command(key, ['HGETALL', key])))
  }

  /**
   * Runs a session write script whose reply is the hash after the write, or 1 when the hash is
   * exactly `known` (or 0 if the key is gone), followed in the same pipeline by `PEXPIRE key ttl`
   * from this connection.
   *
   * Why the PEXPIRE: with broadcast tracking Redis sends one invalidation per key per event-loop
   * iteration, to every subscriber except (NOLOOP) the connection that modified the key last in
   * it — and a script's writes count as the script's, not this connection's, so the snapshot the
   * script returned would be invalidated by its own echo. The PEXPIRE, processed right after the
   * script (a connection's pipelined commands run back to back), makes this connection the last
   * modifier, so no echo comes. It cannot hide another client's write: one processed before the
   * script is in the snapshot, one after the PEXPIRE becomes the last modifier (and is pushed),
   * and nothing runs between the two (a NOSCRIPT retry sends the PEXPIRE again behind the EVAL); if
   * they do land in different iterations (a split read), the script's iteration pushes its echo
   * and the snapshot is dropped.
   * `ttl` is the session's remaining lifetime as this request saw it (never beyond its idle or
   * absolute deadline, which only move forward; a concurrent touch elsewhere can at worst be
   * shortened back to this request's view until the next touch; on a missing key PEXPIRE does
   * nothing).
   */
  async #write (
    script: Script, key: string, args: string[], ttlMs: number, known?: SessionRecord, more: readonly string[] = []
  ): Promise<SessionRecord | undefined | typeof TOO_LARGE | EpochMoved> {
    // A read sent before this write must not be joined by requests that start after it.
    this.#reads.delete(key)
    try {
      return await this.#snapshot(key, true, async () => {
        // A failed link is reported by the link itself. Without a lifetime (0) there is no PEXPIRE, and the echo comes.
        const pexpire = (): void => { this.#redis(key, ['PEXPIRE', key, String(ttlMs)]).catch(() => {}) }
        const behind = ttlMs > 0 ? pexpire : undefined
        const reply = await script.run(this.#redis, key, args, more, behind)
        if (Array.isArray(reply)) {
          // CREATE's epoch check failed: nothing was written (the key is still absent).
          if (reply.length === 2 && reply[0] === 0) return { moved: String(reply[1]) }
          return decodeRecord(pairs(reply))
        }
        // (A status is a number: Number() of the hash array would join all of it into one string.)
        const status = Number(reply)
        // Refused: nothing was written, but the pipelined PEXPIRE made this connection the key's
        // last modifier, which may have swallowed the invalidation of another client's write in
        // the same Redis iteration. What is held locally can no longer be trusted.
        if (status === -1) {
          this.#drop(key)
          return TOO_LARGE
        }
        // 1: the hash is `known` as written (CREATE found every field new).
        return status === 1 && known !== undefined ? known : undefined
      }, (record) => {
        if (record === TOO_LARGE || (record !== undefined && 'moved' in record)) return
        this.#cache?.set(key, record ?? ABSENT, record === undefined ? 64 : heapBytes(record))
      })
    } catch (err) {
      this.#drop(key) // the write may or may not have happened
      throw err
    }
  }

  async create (key: string, record: SessionRecord, ttlMs: number, epoch?: EpochCheck): Promise<string | undefined> {
    const args = [String(ttlMs), epoch?.value ?? '', epoch?.known ?? '', ...encodeRecord(record)]
    const written = await this.#write(CREATE, key, args, ttlMs, record, epoch === undefined ? [] : [epoch.key])
    return written !== undefined && written !== TOO_LARGE && 'moved' in written ? written.moved : undefined
  }

  async update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean> {
    const { set, cas, del } = encodeUpdate(update)
    const ttl = update.touch === undefined ? '0' : String(ttlMs)
    const written = await this.#write(UPDATE, key, [
      ttl, String(update.maxBytes), String(set.length / 2), String(cas.length / 3), ...set, ...cas, ...del,
    ], ttlMs)
    if (written === TOO_LARGE) throw sessionError('FST_SESSION_TOO_LARGE')
    return written !== undefined
  }

  async take (key: string): Promise<SessionRecord | undefined> {
    try {
      return decodeRecord(pairs(await TAKE.run(this.#redis, key, []) as unknown[]))
    } finally {
      this.#drop(key)
    }
  }

  async destroy (key: string): Promise<boolean> {
    try {
      return Number(await this.#revoke(key, ['DEL', key])) > 0
    } finally {
      // Our own DEL is not echoed back (NOLOOP, not a script): forget the key here.
      this.#drop(key)
    }
  }

  /** Runs a write to an index or the epoch: never cached, the local entry is dropped after it. */
  async #own<T> (key: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } finally {
      this.#drop(key)
    }
  }

  peekMember (indexKey: string, ref: string): IndexEntry | null | undefined {
    if (this.#cache === undefined || !this.#serving) return undefined
    const members = this.#cache.get(indexKey) as Members | undefined
    return members?.get(ref)
  }

  getMember (indexKey: string, ref: string): Promise<IndexEntry | null> {
    return this.#snapshot(indexKey, false, async () => {
      const value = await this.#command(indexKey, ['HGET', indexKey, ref])
      return typeof value === 'string' ? decodeEntry(ref, value) ?? null : null
    }, (entry) => { this.#cacheMember(indexKey, ref, entry) })
  }

  /** Adds one entry to what is held of an index. */
  #cacheMember (indexKey: string, ref: string, entry: IndexEntry | null): void {
    const members = (this.#cache?.get(indexKey) as Members | undefined) ?? new Map()
    members.set(ref, entry)
    this.#holdMembers(indexKey, members, ref)
  }

  /**
   * (Re-)sets what is held of an index with its size, so that a user with very many sessions
   * cannot grow the cache past cacheBytes (a map too large for the cache is simply not kept: its
   * reads go to Redis).
   */
  #holdMembers (indexKey: string, members: Members, ref: string): void {
    this.#cache?.set(indexKey, members, 128 + members.size * 2 * (ref.length + 60 + 48))
  }

  /**
   * Admits a lineage. The entry admitted is cached (the first read after a login needs no
   * round trip for it), alone: the script may have pruned or evicted other entries. As for
   * `#write`, a `PEXPIRE … GT` pipelined behind the script makes this connection the index
   * key's last modifier, so the script's own echo does not drop it; one 1 ms longer than the
   * TTL the script set, so that it does change the key (a PEXPIRE that changes nothing is no
   * modification, and then the echo comes and the entry is simply not kept).
   */
  async admit (indexKey: string, entry: IndexEntry, options: AdmitOptions): Promise<AdmitResult> {
    const args = [
      entry.ref, encodeEntry(entry), options.expect ?? '', String(options.now), String(options.max),
      String(options.ttlMs), String(Math.random() < SAMPLE_CHANCE ? SAMPLE : 0),
      options.generation ?? '-',
    ]
    const behind = (): void => {
      this.#redis(indexKey, ['PEXPIRE', indexKey, String(options.ttlMs + 1), 'GT']).catch(() => {})
    }
    let flat: unknown[]
    try {
      const run = async (): Promise<unknown[]> => await ADMIT.run(this.#redis, indexKey, args, [], behind) as unknown[]
      flat = await this.#snapshot(indexKey, false, run, (reply) => {
        if (Number(reply[0]) !== 1) return
        this.#holdMembers(indexKey, new Map([[entry.ref, entry]]), entry.ref)
      })
    } catch (err) {
      this.#drop(indexKey) // the script may or may not have run
      throw err
    }
    if (Number(flat[0]) !== 1) {
      // Refused, nothing written; the pipelined PEXPIRE may still have hidden another client's
      // change of the index in the same Redis iteration: what is held of it is dropped.
      this.#drop(indexKey)
      return { admitted: false, evicted: [] }
    }
    const split = 2 + 2 * Number(flat[1])
    return { admitted: true, evicted: entries(flat.slice(0, split), 2), sample: entries(flat, split) }
  }

  async dismiss (
    indexKey: string, members: ReadonlyArray<{ ref: string, hash: string | undefined }>
  ): Promise<IndexEntry[]> {
    if (members.length === 0) return []
    const args = members.flatMap((m) => [m.ref, m.hash ?? ''])
    return entries(await this.#own(indexKey, () => DISMISS.run(this.#revoke, indexKey, args)))
  }

  async dismissAll (
    indexKey: string, keepRef: string | undefined, generation: string, ttlMs: number
  ): Promise<IndexEntry[]> {
    return entries(await this.#own(indexKey,
      () => DISMISS_ALL.run(this.#revoke, indexKey, [keepRef ?? '', generation, String(ttlMs)])))
  }

  async generation (indexKey: string): Promise<string> {
    const value = await this.#command(indexKey, ['HGET', indexKey, '#gen'])
    return typeof value === 'string' ? value : ''
  }

  async members (indexKey: string): Promise<IndexEntry[]> {
    return entries(await this.#command(indexKey, ['HGETALL', indexKey]))
  }

  peekEpoch (epochKey: string): string | undefined {
    if (this.#cache === undefined || !this.#serving) return undefined
    return this.#cache.get(epochKey) as string | undefined
  }

  getEpoch (epochKey: string, known: string): Promise<string> {
    const call = async (): Promise<string> => String(await EPOCH.run(this.#redis, epochKey, [known]))
    return this.#snapshot(epochKey, false, call, (epoch) => {
      this.#cache?.set(epochKey, epoch, 64)
    })
  }

  async replaceEpoch (epochKey: string, expected: string, next: string): Promise<string> {
    return String(await this.#own(epochKey, () => REPLACE_EPOCH.run(this.#redis, epochKey, [expected, next])))
  }

  async bumpEpoch (epochKeys: readonly string[], next: string): Promise<void> {
    // The main copy first: a bump that fails part-way is retried from a main copy already raised.
    const [main, ...copies] = epochKeys
    if (main === undefined) return
    await this.#own(main, () => EPOCH.run(this.#revoke, main, [next]))
    if (copies.length === 0) return
    // A cluster's slot copies: one script per node for the slots it serves (16,384 one-key
    // scripts would take seconds of this process's CPU); per copy where a slot moved meanwhile.
    const byNode = new Map<string, string[]>()
    for (const key of copies) {
      const node = this.#backend.nodeOf(key) ?? ''
      let group = byNode.get(node)
      if (group === undefined) byNode.set(node, group = [])
      group.push(key)
    }
    try {
      await Promise.all([...byNode.values()].flatMap((group) => chunks(group, RAISE_CHUNK).map(async (keys) => {
        try {
          await RAISE_MANY.run(this.#revoke, keys[0] as string, [next, ...keys.slice(1)])
        } catch (err) {
          if (!slotMoved(err)) throw err
          for (const part of chunks(keys, 64)) {
            await Promise.all(part.map((key) => EPOCH.run(this.#revoke, key, [next])))
          }
        }
      })))
    } finally {
      for (const key of copies) this.#drop(key)
    }
  }

  async exists (key: string): Promise<boolean> {
    return Number(await this.#command(key, ['EXISTS', key])) > 0
  }

  async hit (key: string, field: string, windowMs: number, share?: string): Promise<HitCount> {
    return hitCount(await HIT.run(this.#redis, key, [String(windowMs), field, share ?? '', '1']))
  }

  async readHits (key: string, field: string): Promise<HitCount> {
    return hitCount(await HIT.run(this.#redis, key, ['', field, '', '0']))
  }

  async unhit (key: string, field: string): Promise<void> {
    await UNHIT.run(this.#redis, key, [field])
  }

  async release (key: string, field: string, share: string): Promise<void> {
    await RELEASE.run(this.#redis, key, [field, share])
  }

  async clearHits (key: string, field: string): Promise<void> {
    await this.#command(key, ['HDEL', key, field])
  }

  async keyring (
    key: string, changes: readonly KeyringChange[], mode: KeyringMode = 'set'
  ): Promise<Record<string, string>> {
    const args = changes.flatMap((c) => [c.field, c.expect ?? '', c.value])
    return pairs(await this.#own(key, () => KEYRING.run(this.#redis, key, [mode, ...args])) as unknown[])
  }

  async durable (keys: readonly string[]): Promise<void> {
    if (!this.#durable) return
    const waits: Array<Promise<void>> = []
    const seen = new Set<string>()
    for (const key of keys) {
      const node = this.#backend.nodeOf(key)
      if (node === undefined || seen.has(node)) continue
      seen.add(node)
      // A master without replicas has nothing to wait for; one whose replicas are unknown (ROLE
      // refused) is not waited for either (logged once when refused, docs/redis-hardening.md).
      waits.push(this.#backend.replicasOf(key).then(async (probed) => {
        // The last probe may predate a replica that came online since: "none" is asked again.
        const replicas = probed === 0 ? await this.#backend.replicasOf(key, true) : probed
        if ((replicas ?? 0) === 0 || this.#waitRefused) return
        let reply: unknown
        try {
          reply = await this.#revoke(key, ['WAIT', '1', String(this.#waitMs)])
        } catch (err) {
          const cause = err instanceof SessionError && err.cause instanceof Error ? err.cause : err
          if (!(cause instanceof Error && /^NOPERM|no permissions/i.test(cause.message))) throw err
          // The ACL refuses WAIT: say so once, and act as 'primary' rather than fail every revocation.
          this.#waitRefused = true
          this.#notice('session store: WAIT is not permitted to this Redis user, so revocations cannot wait ' +
            'for a replica (durability \'replica\' acts as \'primary\'); add +wait to its ACL line ' +
            '(docs/redis-hardening.md)')
          return
        }
        // No acknowledgement: unless the master has no replica any more (one that died since the
        // last probe), the revocation may not hold.
        if (acknowledged(reply) < 1 && ((await this.#backend.replicasOf(key, true)) ?? 0) > 0) {
          throw sessionError('FST_SESSION_STORE_UNAVAILABLE',
            'a revocation was not acknowledged by any replica within storeTimeout')
        }
      }))
    }
    await Promise.all(waits)
  }

  watch (listener: (key: string | null) => void): () => void {
    this.#watchers.add(listener)
    return () => { this.#watchers.delete(listener) }
  }

  suspect (): boolean {
    return this.#backend.suspect()
  }

  stats (): StoreStats {
    return {
      cacheHits: this.#hits,
      cacheMisses: this.#misses,
      invalidations: this.#invalidations,
      cacheEntries: this.#cache?.size ?? 0,
    }
  }

  async close (): Promise<void> {
    this.#backend.close()
    this.#dropAll()
  }
}
