/**
 * Session store on Redis (node-redis, RESP3) with a process-local cache of decoded sessions kept
 * coherent by the client-side-caching invalidations Redis pushes to this connection.
 *
 * Protects against serving what another instance revoked: every key this process has read is
 * tracked by Redis (`CLIENT TRACKING ON`, issued by node-redis's client-side cache), any change
 * or expiry elsewhere pushes an invalidation that drops the local entry synchronously, and on
 * any connection error the whole local cache is dropped and nothing is served from it until the
 * connection is ready again (a revocation may have been missed meanwhile).
 *
 * Writes return the session as it is right after them (the scripts end with HGETALL, which also
 * keeps the key tracked for this connection), so a session stays a cache hit across its own
 * writes; with the plugin's own client, tracking is NOLOOP and Redis does not echo our writes
 * back as invalidations. Replies can reach the cache out of order (reads and writes resolve
 * through promise chains of different depth), so every snapshot carries a sequence number and
 * per key only a snapshot newer than the newest already applied, and newer than the last
 * invalidation of that key, is cached.
 *
 * Layout (Cluster-safe: every command or script touches exactly one key):
 *   <prefix><sha256(id)>      hash: m:c m:a m:i [m:u m:t] d:<field>…, PEXPIRE ≤ idle/absolute
 *   <prefix>u:<sha256(user)>  sorted set: session hash → absolute deadline, PEXPIRE absolute
 */
import { createHash } from 'node:crypto'
import { BoundedCache } from '../lru.ts'
import { decodeRecord, encodeRecord, encodeUpdate } from './codec.ts'
import type { IndexEntry, RecordUpdate, SessionRecord, SessionStore, StoreStats } from './types.ts'

/** The subset of a node-redis client or cluster this store uses. */
interface Connection {
  isReady?: boolean
  clientSideCache?: {
    on (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
    off (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
  }
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
  hGetAll (key: string): Promise<Record<string, string>>
  del (key: string): Promise<number>
  zRem (key: string, members: string[]): Promise<number>
  zRangeWithScores (key: string, start: number, stop: number): Promise<Array<{ value: string, score: number }>>
  sendCommand (...args: any[]): Promise<unknown>
}

/**
 * The snapshots of one key in flight. `staleBefore`: snapshots sent at or before this sequence
 * number predate an invalidation and are not cached; `newest`: the newest snapshot settled so far.
 */
interface Flight { pending: number, newest: number, staleBefore: number }

const ABSENT: SessionRecord = Object.freeze({
  createdAt: 0, absoluteExpiry: 0, idleExpiry: 0, userId: undefined, authenticatedAt: undefined, fields: new Map(),
})

/** A flat `[field, value, …]` script reply as an object. */
function pairs (flat: unknown[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

/** Sends a raw command addressed by `key` (a cluster routes it by the key's slot). */
type Send = (key: string, args: string[]) => Promise<unknown>

function sender (conn: Connection): Send {
  const send = conn.sendCommand.bind(conn) as (...args: unknown[]) => Promise<unknown>
  return 'masters' in conn
    ? (key, args) => send(key, false, args)
    : (_key, args) => send(args)
}

class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /** EVALSHA (raw, no per-command parsing layers), loading the script once if Redis lacks it. */
  async run (send: Send, key: string, args: string[]): Promise<unknown> {
    try {
      return await send(key, ['EVALSHA', this.sha, '1', key, ...args])
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return await send(key, ['EVAL', this.source, '1', key, ...args])
      throw err
    }
  }
}

// ARGV: ttl, field, value, … Returns the new hash.
const CREATE = new Script(`
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])`)

// ARGV: ttl (0: keep the TTL), n, c, n field/value pairs, c field/expected/new triples
// (compare-and-set), then fields to delete. Writes nothing if the key is gone, so a concurrent
// logout is never undone by a late write of the same session.
// Returns the updated hash, or 0 when the key is gone.
const UPDATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
local c = tonumber(ARGV[3])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * n)) end
local i = 4 + 2 * n
for _ = 1, c do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
  i = i + 3
end
if #ARGV >= i then redis.call('HDEL', KEYS[1], unpack(ARGV, i)) end
if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])`)

// ARGV: member, score, now, ttl. Prunes members past their absolute deadline.
const INDEX_ADD = new Script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

export interface RedisStoreOptions {
  cacheSize: number
  /** Called on every connection state change; the plugin logs once per outage. */
  onStatus?: (up: boolean, err?: unknown) => void
}

export class RedisStore implements SessionStore {
  readonly #conn: Connection
  readonly #command: Send
  readonly #cache: BoundedCache<string, SessionRecord> | undefined
  readonly #flights = new Map<string, Flight>()
  /** Reads in flight, joined by concurrent `get`s of the same key until it is invalidated. */
  readonly #reads = new Map<string, Promise<SessionRecord | undefined>>()
  readonly #onStatus: ((up: boolean, err?: unknown) => void) | undefined
  readonly #detach: Array<() => void> = []
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
    this.#cache = csc === undefined ? undefined : new BoundedCache(options.cacheSize)
    if (csc !== undefined) {
      const onInvalidate = (key: Buffer | string | null): void => {
        if (key === null) this.#dropAll()
        else this.#drop(typeof key === 'string' ? key : key.toString())
      }
      csc.on('invalidate', onInvalidate)
      this.#detach.push(() => csc.off('invalidate', onInvalidate))
    }
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

  /** A snapshot arrived (`null`: none, the call failed): cache it if it is the newest valid one. */
  #settle (key: string, flight: Flight, seq: number, record: SessionRecord | undefined | null): void {
    const cache = this.#cache
    if (record !== null && cache !== undefined && this.#connected && seq > flight.staleBefore && seq > flight.newest) {
      cache.set(key, record ?? ABSENT)
    }
    if (seq > flight.newest) flight.newest = seq
    if (--flight.pending === 0) this.#flights.delete(key)
  }

  peek (key: string): SessionRecord | null | undefined {
    if (!this.#connected || this.#cache === undefined) return undefined
    const record = this.#cache.get(key)
    if (record === undefined) return undefined
    this.#hits++
    return record === ABSENT ? null : record
  }

  get (key: string): Promise<SessionRecord | undefined> {
    this.#misses++
    const joined = this.#reads.get(key)
    if (joined !== undefined) return joined
    const [flight, seq] = this.#send(key)
    const read = this.#conn.hGetAll(key).then((hash) => {
      const record = decodeRecord(hash)
      this.#settle(key, flight, seq, record)
      return record
    }, (err: unknown) => {
      this.#settle(key, flight, seq, null)
      throw err
    })
    this.#reads.set(key, read)
    const forget = (): void => { if (this.#reads.get(key) === read) this.#reads.delete(key) }
    read.then(forget, forget)
    return read
  }

  /** Runs a write script whose reply is the hash after the write (or 0 if the key is gone). */
  async #write (script: Script, key: string, args: string[]): Promise<SessionRecord | undefined> {
    const [flight, seq] = this.#send(key)
    let reply: unknown
    try {
      reply = await script.run(this.#command, key, args)
    } catch (err) {
      this.#settle(key, flight, seq, null)
      this.#drop(key) // the write may or may not have happened
      throw err
    }
    const record = Array.isArray(reply) ? decodeRecord(pairs(reply)) : undefined
    this.#settle(key, flight, seq, record)
    // A read sent before this write must not be joined by requests that start after it.
    this.#reads.delete(key)
    return record
  }

  async create (key: string, record: SessionRecord, ttlMs: number): Promise<void> {
    await this.#write(CREATE, key, [String(ttlMs), ...encodeRecord(record)])
  }

  async update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean> {
    const { set, cas, del } = encodeUpdate(update)
    return (await this.#write(UPDATE, key, [String(ttlMs), String(set.length / 2), String(cas.length / 3), ...set, ...cas, ...del])) !== undefined
  }

  async destroy (key: string): Promise<boolean> {
    try {
      return (await this.#conn.del(key)) > 0
    } finally {
      // Our own DEL is not echoed back (NOLOOP): forget the key here.
      this.#drop(key)
    }
  }

  async indexAdd (indexKey: string, member: string, score: number, ttlMs: number): Promise<void> {
    await INDEX_ADD.run(this.#command, indexKey, [member, String(score), String(Date.now()), String(ttlMs)])
  }

  async indexRemove (indexKey: string, members: readonly string[]): Promise<void> {
    if (members.length > 0) await this.#conn.zRem(indexKey, [...members])
  }

  async indexRead (indexKey: string): Promise<IndexEntry[]> {
    const rows = await this.#conn.zRangeWithScores(indexKey, 0, -1)
    return rows.map((row) => ({ member: String(row.value), score: Number(row.score) }))
  }

  stats (): StoreStats {
    return { cacheHits: this.#hits, cacheMisses: this.#misses }
  }

  async close (): Promise<void> {
    for (const detach of this.#detach) detach()
    this.#dropAll()
  }
}
