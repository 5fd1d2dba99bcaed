/**
 * Session store on Redis (node-redis, RESP3) with a process-local cache kept coherent by the
 * client-side-caching invalidations Redis pushes to this connection.
 *
 * Protects against serving what another instance revoked or changed: every key this process
 * caches (session records, user index entries, the global epoch) is tracked by Redis, any change
 * or expiry elsewhere pushes an invalidation that drops the local entry synchronously, and
 * nothing is served locally while the connection is down, reconnecting or stalled (health.ts):
 * a revocation may have been missed meanwhile, so the whole cache is dropped then.
 *
 * Session writes return the session as it is right after them (the scripts end with HGETALL),
 * and with the plugin's own client tracking is NOLOOP, so a session stays a cache hit across its
 * own writes. Index and epoch writes are not cached: the local entry is dropped instead. Replies
 * can reach the cache out of order (reads and writes resolve through promise chains of
 * different depth), so every snapshot carries a sequence number: per key, only a snapshot sent
 * after the key's last invalidation, and (for sessions) newer than the newest applied, is cached.
 *
 * Layout (every command or script touches exactly one key):
 *   <prefix><sha256(id)>   hash: m:* meta, d:<field> data; PEXPIRE ≤ idle/absolute deadline
 *   <prefix>u:<hmac(user)> hash: lineage ref → '<hash> <deadline> <loginAt>'; PEXPIRE absolute
 *   <prefix>epoch          string: the global revocation epoch
 */
import { BoundedCache } from '../lru.ts'
import { decodeEntry, decodeRecord, encodeEntry, encodeRecord, encodeUpdate, heapBytes } from './codec.ts'
import { LinkHealth } from './health.ts'
import { sessionError } from '../errors.ts'
import { ADMIT, CREATE, EPOCH, KEYRING, TAKE, DISMISS, DISMISS_ALL, HIT, UNHIT, UPDATE, type Script, type Send } from './scripts.ts'
import type { AdmitOptions, AdmitResult, IndexEntry, RecordUpdate, SessionRecord, SessionStore, StoreStats } from './types.ts'

/** The subset of a node-redis client or cluster this store uses. */
export interface Connection {
  isReady?: boolean
  clientSideCache?: {
    on (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
    off (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
  }
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
  hGetAll (key: string): Promise<Record<string, string>>
  sendCommand (...args: any[]): Promise<unknown>
}

/**
 * The snapshots of one key in flight. `staleBefore`: snapshots sent at or before this sequence
 * number predate an invalidation and are not cached; `newest`: the newest snapshot settled so far.
 */
interface Flight { pending: number, newest: number, staleBefore: number }

/** A user index as far as this process has read it: ref → entry, or null when known absent. */
type Members = Map<string, IndexEntry | null>

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
  const map = Array.isArray(reply)
    ? pairs(reply, from)
    : reply instanceof Map ? Object.fromEntries(reply) : typeof reply === 'object' && reply !== null ? reply : {}
  for (const [ref, value] of Object.entries(map as Record<string, unknown>)) {
    if (typeof value !== 'string') continue
    const entry = decodeEntry(ref, value)
    if (entry !== undefined) out.push(entry)
  }
  return out
}

function sender (conn: Connection): Send {
  const send = conn.sendCommand.bind(conn) as (...args: unknown[]) => Promise<unknown>
  return 'masters' in conn
    ? (key, args) => send(key, false, args)
    : (_key, args) => send(args)
}

export interface RedisStoreOptions {
  cacheSize: number
  /** Upper bound of the local cache's estimated heap use. */
  cacheBytes: number
  /** ms: a probe or call slower than this marks the link stalled. */
  storeTimeout: number
  /** ms between liveness probes of an idle connection. */
  probeInterval: number
  /** Called on every connection state change; the plugin logs once per outage. */
  onStatus?: (up: boolean, err?: unknown) => void
}

export class RedisStore implements SessionStore {
  readonly #conn: Connection
  readonly #command: Send
  readonly #cache: BoundedCache<string, Cached> | undefined
  readonly #flights = new Map<string, Flight>()
  /** Reads in flight, joined by concurrent `get`s of the same key until it is invalidated. */
  readonly #reads = new Map<string, Promise<SessionRecord | undefined>>()
  readonly #onStatus: ((up: boolean, err?: unknown) => void) | undefined
  readonly #detach: Array<() => void> = []
  readonly #health: LinkHealth
  #seq = 0
  #connected: boolean
  #hits = 0
  #misses = 0

  constructor (conn: Connection, options: RedisStoreOptions) {
    this.#conn = conn
    this.#command = sender(conn)
    this.#onStatus = options.onStatus
    this.#connected = conn.isReady !== false
    // Without client-side caching there are no invalidations, so nothing may be cached locally.
    // A cluster reports connection loss per shard (`node-*` events) and moves slots between
    // nodes; until that is handled, a cluster is used without the local cache.
    const csc = 'masters' in conn ? undefined : conn.clientSideCache
    this.#cache = csc === undefined ? undefined : new BoundedCache(options.cacheSize, options.cacheBytes)
    if (csc !== undefined) {
      const onInvalidate = (key: Buffer | string | null): void => {
        if (key === null) this.#dropAll()
        else this.#drop(typeof key === 'string' ? key : key.toString())
      }
      csc.on('invalidate', onInvalidate)
      this.#detach.push(() => csc.off('invalidate', onInvalidate))
    }
    this.#health = new LinkHealth({
      interval: options.probeInterval,
      timeout: options.storeTimeout,
      ping: () => this.#command('', ['PING']),
      connected: () => this.#connected,
      onChange: (up) => {
        this.#dropAll()
        this.#onStatus?.(up, up ? undefined : new Error('no reply within storeTimeout'))
      },
    })
    this.#listen('error', (err: unknown) => {
      // Invalidations may have been lost with whatever failed: drop everything. Whether to
      // cache again right away depends on whether the connection itself survived.
      this.#dropAll()
      this.#connected = conn.isReady === true
      this.#onStatus?.(false, err)
    })
    this.#listen('end', () => { this.#dropAll(); this.#connected = false })
    this.#listen('reconnecting', () => { this.#dropAll(); this.#connected = false })
    this.#listen('ready', () => {
      this.#dropAll()
      this.#health.reset()
      this.#connected = true
      this.#onStatus?.(true)
    })
  }

  /** Whether reads can be served locally (the connection has client-side caching). */
  get caching (): boolean {
    return this.#cache !== undefined
  }

  #listen (event: string, listener: (...args: any[]) => void): void {
    this.#conn.on(event, listener)
    this.#detach.push(() => this.#conn.off(event, listener))
  }

  get #serving (): boolean {
    return this.#connected && !this.#health.stalled
  }

  #drop (key: string): void {
    this.#cache?.delete(key)
    this.#reads.delete(key)
    const flight = this.#flights.get(key)
    if (flight !== undefined) flight.staleBefore = this.#seq
  }

  #dropAll (): void {
    this.#cache?.clear()
    this.#reads.clear()
    for (const flight of this.#flights.values()) flight.staleBefore = this.#seq
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
    const fresh = ok && this.#cache !== undefined && this.#serving && seq > flight.staleBefore && (!newest || seq > flight.newest)
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

  get (key: string): Promise<SessionRecord | undefined> {
    this.#misses++
    const joined = this.#reads.get(key)
    if (joined !== undefined) return joined
    const read = this.#snapshot(key, true, async () => decodeRecord(await this.#conn.hGetAll(key)), (record) => {
      this.#cache?.set(key, record ?? ABSENT, record === undefined ? 64 : heapBytes(record))
    })
    this.#reads.set(key, read)
    const forget = (): void => { if (this.#reads.get(key) === read) this.#reads.delete(key) }
    read.then(forget, forget)
    return read
  }

  async read (key: string): Promise<SessionRecord | undefined> {
    return decodeRecord(await this.#conn.hGetAll(key))
  }

  /** Runs a session write script whose reply is the hash after the write (0 if the key is gone, -1 if too large). */
  async #write (script: Script, key: string, args: string[]): Promise<SessionRecord | undefined | typeof TOO_LARGE> {
    // A read sent before this write must not be joined by requests that start after it.
    this.#reads.delete(key)
    try {
      return await this.#snapshot(key, true, async () => {
        const reply = await script.run(this.#command, key, args)
        if (Number(reply) === -1) return TOO_LARGE
        return Array.isArray(reply) ? decodeRecord(pairs(reply)) : undefined
      }, (record) => {
        if (record !== TOO_LARGE) this.#cache?.set(key, record ?? ABSENT, record === undefined ? 64 : heapBytes(record))
      })
    } catch (err) {
      this.#drop(key) // the write may or may not have happened
      throw err
    }
  }

  async create (key: string, record: SessionRecord, ttlMs: number): Promise<void> {
    await this.#write(CREATE, key, [String(ttlMs), ...encodeRecord(record)])
  }

  async update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean> {
    const { set, cas, del } = encodeUpdate(update)
    const ttl = update.touch === undefined ? '0' : String(ttlMs)
    const written = await this.#write(UPDATE, key, [ttl, String(update.maxBytes), String(set.length / 2), String(cas.length / 3), ...set, ...cas, ...del])
    if (written === TOO_LARGE) throw sessionError('FST_SESSION_TOO_LARGE')
    return written !== undefined
  }

  async take (key: string): Promise<SessionRecord | undefined> {
    try {
      return decodeRecord(pairs(await TAKE.run(this.#command, key, []) as unknown[]))
    } finally {
      this.#drop(key)
    }
  }

  async destroy (key: string): Promise<boolean> {
    try {
      return Number(await this.#command(key, ['DEL', key])) > 0
    } finally {
      // Our own DEL is not echoed back (NOLOOP): forget the key here.
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
    }, (entry) => {
      const cache = this.#cache as BoundedCache<string, Cached>
      let members = cache.get(indexKey) as Members | undefined
      if (members === undefined) cache.set(indexKey, members = new Map(), 256)
      members.set(ref, entry)
    })
  }

  async admit (indexKey: string, entry: IndexEntry, options: AdmitOptions): Promise<AdmitResult> {
    const reply = await this.#own(indexKey, () => ADMIT.run(this.#command, indexKey, [
      entry.ref, encodeEntry(entry), options.expect ?? '', String(options.now), String(options.max), String(options.ttlMs),
    ]))
    const flat = reply as unknown[]
    return { admitted: Number(flat[0]) === 1, evicted: entries(flat, 1) }
  }

  async dismiss (indexKey: string, members: ReadonlyArray<{ ref: string, hash: string | undefined }>): Promise<IndexEntry[]> {
    if (members.length === 0) return []
    const args = members.flatMap((m) => [m.ref, m.hash ?? ''])
    return entries(await this.#own(indexKey, () => DISMISS.run(this.#command, indexKey, args)))
  }

  async dismissAll (indexKey: string, keepRef?: string): Promise<IndexEntry[]> {
    return entries(await this.#own(indexKey, () => DISMISS_ALL.run(this.#command, indexKey, [keepRef ?? ''])))
  }

  async members (indexKey: string): Promise<IndexEntry[]> {
    return entries(await this.#command(indexKey, ['HGETALL', indexKey]))
  }

  peekEpoch (key: string): string | undefined {
    if (this.#cache === undefined || !this.#serving) return undefined
    return this.#cache.get(key) as string | undefined
  }

  getEpoch (key: string, fresh: string): Promise<string> {
    return this.#snapshot(key, false, async () => String(await EPOCH.run(this.#command, key, [fresh])), (epoch) => {
      this.#cache?.set(key, epoch, 64)
    })
  }

  async bumpEpoch (key: string, next: string): Promise<void> {
    await this.#own(key, () => this.#command(key, ['SET', key, next]))
  }

  async hit (key: string, windowMs: number): Promise<{ count: number, ttlMs: number }> {
    const reply = await HIT.run(this.#command, key, [String(windowMs)]) as unknown[]
    return { count: Number(reply[0]), ttlMs: Number(reply[1]) }
  }

  async unhit (key: string): Promise<void> {
    await UNHIT.run(this.#command, key, [])
  }

  async clearHits (key: string): Promise<void> {
    await this.#command(key, ['DEL', key])
  }

  async keyring (key: string, proposals: Record<string, string>): Promise<Record<string, string>> {
    return pairs(await KEYRING.run(this.#command, key, Object.entries(proposals).flat()) as unknown[])
  }

  suspect (): void {
    this.#health.suspect()
  }

  stats (): StoreStats {
    return { cacheHits: this.#hits, cacheMisses: this.#misses }
  }

  async close (): Promise<void> {
    this.#health.close()
    for (const detach of this.#detach) detach()
    this.#dropAll()
  }
}
