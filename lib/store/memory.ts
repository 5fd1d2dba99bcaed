/**
 * The embedded memory store: the same semantics as the Redis store (TTL per record, only dirty
 * fields applied, user indexes with the same atomic admit/dismiss rules, a global epoch, login-
 * throttle counters with the same windows and shares) inside one process. For the demo, for
 * tests, and for single-process apps without Redis.
 *
 * Protects against unbounded growth: at most `maxEntries` sessions; beyond that the least
 * recently used session is evicted (its user must log in again). Throttle counters are never
 * evicted (a dropped counter would read as a fresh one), only removed once their window ended.
 * Expired entries are removed lazily on access and by a periodic sweep that does not keep the process alive.
 */
import { sessionError } from '../errors.ts'
import { applyUpdate, storedBytes } from './record-encoding.ts'
import type {
  AdmitOptions, AdmitResult, EpochCheck, HitCount, IndexEntry, KeyringChange, KeyringMode, RecordUpdate, SessionRecord,
  SessionStore, StoreStats,
} from './contract.ts'

export interface MemoryStoreOptions {
  /** Most sessions held; the least recently used is evicted beyond it (default 10 000). */
  maxEntries?: number
  /** How often expired entries are swept, ms (default 60 000). */
  sweepInterval?: number
  /** Milliseconds since the epoch (default `Date.now`); tests pass the plugin's clock. */
  clock?: () => number
}

interface Entry<T> { value: T, expiresAt: number }

/** The counter of a well-formed epoch value (as the Redis store's EPOCH script parses it). */
function epochCounter (value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^([1-9][0-9]{0,14})\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/.exec(value)
  return m === null ? undefined : Number(m[1])
}

/** A user index: lineages, and the revocation generation (`#gen` in the Redis store). */
interface Index { members: Map<string, IndexEntry>, generation: string }

export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, Entry<SessionRecord>>()
  readonly #indexes = new Map<string, Entry<Index>>()
  readonly #epochs = new Map<string, string>()
  readonly #counters = new Map<string, Entry<number>>()
  readonly #rings = new Map<string, Record<string, string>>()
  readonly #maxEntries: number
  readonly #sweeper: NodeJS.Timeout
  readonly #now: () => number
  #hits = 0
  #misses = 0
  #evictions = 0

  constructor (options: MemoryStoreOptions = {}) {
    const known = new Set(['maxEntries', 'sweepInterval', 'clock'])
    for (const name of Object.keys(options)) {
      if (!known.has(name)) {
        throw sessionError('FST_SESSION_INVALID_OPTION', `createMemoryStore: unknown option '${name}'`)
      }
    }
    const maxEntries = options.maxEntries ?? 10_000
    const sweepInterval = options.sweepInterval ?? 60_000
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw sessionError('FST_SESSION_INVALID_OPTION', 'createMemoryStore: maxEntries must be a positive integer')
    }
    if (!Number.isFinite(sweepInterval) || sweepInterval < 10) {
      throw sessionError('FST_SESSION_INVALID_OPTION', 'createMemoryStore: sweepInterval must be at least 10 ms')
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw sessionError('FST_SESSION_INVALID_OPTION', 'createMemoryStore: clock must be a function')
    }
    this.#maxEntries = maxEntries
    this.#now = options.clock ?? Date.now
    this.#sweeper = setInterval(() => this.sweep(), sweepInterval)
    this.#sweeper.unref()
  }

  #live (key: string): SessionRecord | undefined {
    const entry = this.#sessions.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#sessions.delete(key)
      return undefined
    }
    // Keep Map order = recency, so the first key is the least recently used.
    this.#sessions.delete(key)
    this.#sessions.set(key, entry)
    return entry.value
  }

  peek (key: string): SessionRecord | null {
    const record = this.#live(key)
    if (record === undefined) {
      this.#misses++
      return null
    }
    this.#hits++
    return record
  }

  async getWithEpoch (
    key: string, epochKey: string, known: string
  ): Promise<{ record: SessionRecord | undefined, epoch: string }> {
    return { record: this.peek(key) ?? undefined, epoch: this.#raise(epochKey, known) }
  }

  async read (key: string): Promise<SessionRecord | undefined> {
    const entry = this.#sessions.get(key)
    return entry === undefined || entry.expiresAt <= this.#now() ? undefined : entry.value
  }

  async create (key: string, record: SessionRecord, ttlMs: number, epoch?: EpochCheck): Promise<string | undefined> {
    if (epoch !== undefined) {
      const held = this.#raise(epoch.key, epoch.known)
      if (held !== epoch.value) return held
    }
    this.#sessions.delete(key)
    while (this.#sessions.size >= this.#maxEntries) {
      const oldest = this.#sessions.keys().next().value as string
      this.#sessions.delete(oldest)
      this.#evictions++
    }
    this.#sessions.set(key, { value: record, expiresAt: this.#now() + ttlMs })
    return undefined
  }

  async update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean> {
    const entry = this.#sessions.get(key)
    if (this.#live(key) === undefined || entry === undefined) return false
    const expiresAt = update.touch === undefined ? entry.expiresAt : this.#now() + ttlMs
    const next = applyUpdate(entry.value, update)
    if (storedBytes(next) > update.maxBytes) throw sessionError('FST_SESSION_TOO_LARGE')
    this.#sessions.set(key, { value: next, expiresAt })
    return true
  }

  async take (key: string): Promise<SessionRecord | undefined> {
    const record = this.#live(key)
    this.#sessions.delete(key)
    return record
  }

  async destroy (key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined
    this.#sessions.delete(key)
    return existed
  }

  #index (indexKey: string): Index | undefined {
    const entry = this.#indexes.get(indexKey)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#indexes.delete(indexKey)
      return undefined
    }
    return entry.value
  }

  #keep (indexKey: string, index: Index, ttlMs: number): void {
    const held = this.#indexes.get(indexKey)
    const expiresAt = Math.max(held?.value === index ? held.expiresAt : 0, this.#now() + ttlMs)
    this.#indexes.set(indexKey, { value: index, expiresAt })
  }

  peekMember (indexKey: string, ref: string): IndexEntry | null {
    return this.#index(indexKey)?.members.get(ref) ?? null
  }

  async getMember (indexKey: string, ref: string): Promise<IndexEntry | null> {
    return this.peekMember(indexKey, ref)
  }

  async generation (indexKey: string): Promise<string> {
    return this.#index(indexKey)?.generation ?? ''
  }

  async admit (indexKey: string, entry: IndexEntry, options: AdmitOptions): Promise<AdmitResult> {
    const index = this.#index(indexKey) ?? { members: new Map<string, IndexEntry>(), generation: '' }
    const members = index.members
    if (options.generation !== undefined && index.generation !== options.generation) {
      return { admitted: false, evicted: [] }
    }
    if (options.expect !== undefined && members.get(entry.ref)?.hash !== options.expect) {
      return { admitted: false, evicted: [] }
    }
    members.set(entry.ref, entry)
    for (const [ref, e] of members) if (e.expiresAt <= options.now) members.delete(ref)
    const evicted: IndexEntry[] = []
    if (members.size > options.max) {
      const oldest = [...members.values()].filter((e) => e.ref !== entry.ref).sort((a, b) => a.loginAt - b.loginAt)
      for (const e of oldest.slice(0, members.size - options.max)) {
        members.delete(e.ref)
        evicted.push(e)
      }
    }
    this.#keep(indexKey, index, options.ttlMs)
    return { admitted: true, evicted }
  }

  async dismiss (
    indexKey: string, members: ReadonlyArray<{ ref: string, hash: string | undefined }>
  ): Promise<IndexEntry[]> {
    const index = this.#index(indexKey)
    if (index === undefined) return []
    const removed: IndexEntry[] = []
    for (const { ref, hash } of members) {
      const entry = index.members.get(ref)
      if (entry !== undefined && (hash === undefined || entry.hash === hash)) {
        index.members.delete(ref)
        removed.push(entry)
      }
    }
    if (index.members.size === 0 && index.generation === '') this.#indexes.delete(indexKey)
    return removed
  }

  async dismissAll (
    indexKey: string, keepRef: string | undefined, generation: string, ttlMs: number
  ): Promise<IndexEntry[]> {
    const index = this.#index(indexKey) ?? { members: new Map<string, IndexEntry>(), generation: '' }
    const removed = [...index.members.values()].filter((e) => e.ref !== keepRef)
    for (const e of removed) index.members.delete(e.ref)
    index.generation = generation
    this.#keep(indexKey, index, ttlMs)
    return removed
  }

  async members (indexKey: string): Promise<IndexEntry[]> {
    return [...(this.#index(indexKey)?.members.values() ?? [])]
  }

  peekEpoch (epochKey: string): string | undefined {
    return this.#epochs.get(epochKey)
  }

  /** Raises the epoch to `candidate` when it is missing, malformed or older; returns what it holds. */
  #raise (epochKey: string, candidate: string): string {
    const held = this.#epochs.get(epochKey)
    const have = epochCounter(held)
    const want = epochCounter(candidate)
    if (held !== undefined && have !== undefined && (want === undefined || have >= want)) return held
    this.#epochs.set(epochKey, candidate)
    return candidate
  }

  async replaceEpoch (epochKey: string, expected: string, next: string): Promise<string> {
    if (this.#epochs.get(epochKey) === expected) this.#epochs.set(epochKey, next)
    return this.#epochs.get(epochKey) as string
  }

  async getEpoch (epochKey: string, known: string): Promise<string> {
    return this.#raise(epochKey, known)
  }

  async bumpEpoch (epochKeys: readonly string[], next: string): Promise<void> {
    for (const key of epochKeys) this.#raise(key, next)
  }

  async exists (key: string): Promise<boolean> {
    return this.#epochs.has(key) || this.#rings.has(key) ||
      (await this.read(key)) !== undefined || this.#index(key) !== undefined
  }

  /** A throttle counter in its window, or undefined (absent, or its window ended). */
  #counter (key: string, field: string): Entry<number> | undefined {
    const entry = this.#counters.get(key + '\n' + field)
    return entry === undefined || entry.expiresAt <= this.#now() ? undefined : entry
  }

  async hit (key: string, field: string, windowMs: number, share?: string): Promise<HitCount> {
    const now = this.#now()
    let entry = this.#counter(key, field)
    if (entry === undefined) this.#counters.set(key + '\n' + field, entry = { value: 0, expiresAt: now + windowMs })
    entry.value++
    if (share !== undefined) {
      const mine = this.#counter(key, share)
      const value = mine?.expiresAt === entry.expiresAt ? mine.value + 1 : 1
      this.#counters.set(key + '\n' + share, { value, expiresAt: entry.expiresAt })
    }
    return { count: entry.value, ttlMs: entry.expiresAt - now }
  }

  async readHits (key: string, field: string): Promise<HitCount> {
    const entry = this.#counter(key, field)
    return entry === undefined ? { count: 0, ttlMs: 0 } : { count: entry.value, ttlMs: entry.expiresAt - this.#now() }
  }

  async unhit (key: string, field: string): Promise<void> {
    const entry = this.#counter(key, field)
    if (entry !== undefined && entry.value > 0) entry.value--
  }

  async release (key: string, field: string, share: string): Promise<void> {
    const entry = this.#counter(key, field)
    const mine = this.#counter(key, share)
    if (entry !== undefined && mine?.expiresAt === entry.expiresAt) entry.value = Math.max(0, entry.value - mine.value)
    this.#counters.delete(key + '\n' + share)
  }

  async clearHits (key: string, field: string): Promise<void> {
    this.#counters.delete(key + '\n' + field)
  }

  async keyring (
    key: string, changes: readonly KeyringChange[], mode: KeyringMode = 'set'
  ): Promise<Record<string, string>> {
    const ring = this.#rings.get(key)
    if (mode !== 'set') {
      if ((ring === undefined || mode === 'reset') && changes.length > 0) {
        this.#rings.set(key, Object.fromEntries(changes.map((c) => [c.field, c.value])))
      }
    } else if (ring !== undefined || changes.length > 0) {
      const next = { ...ring }
      for (const c of changes) if ((next[c.field] ?? '') === (c.expect ?? '')) next[c.field] = c.value
      if (Object.keys(next).length > 0) this.#rings.set(key, next)
    }
    return { ...this.#rings.get(key) }
  }

  /** Removes every expired session and index now. */
  sweep (): void {
    const now = this.#now()
    for (const [key, entry] of this.#sessions) if (entry.expiresAt <= now) this.#sessions.delete(key)
    for (const [key, entry] of this.#indexes) if (entry.expiresAt <= now) this.#indexes.delete(key)
    for (const [key, entry] of this.#counters) if (entry.expiresAt <= now) this.#counters.delete(key)
  }

  /** Sessions held right now (expired ones not yet swept included). */
  get size (): number {
    return this.#sessions.size
  }

  get evictions (): number {
    return this.#evictions
  }

  stats (): StoreStats {
    return { cacheHits: this.#hits, cacheMisses: this.#misses }
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
  }
}

/** The embedded store, for development, tests and single-process apps without Redis. */
export function createMemoryStore (options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
