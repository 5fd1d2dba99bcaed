/**
 * The embedded memory store: same semantics as the Redis store (TTL per record, deadlines
 * checked by the plugin, only dirty fields applied, user index with its own TTL) inside one
 * process. For the demo, for tests, and for single-process apps without Redis.
 *
 * Protects against unbounded growth: at most `maxEntries` sessions; beyond that the least
 * recently used session is evicted (its user must log in again). Expired entries are removed
 * lazily on access and by a periodic sweep that does not keep the process alive.
 */
import { applyUpdate } from './codec.ts'
import type { IndexEntry, RecordUpdate, SessionRecord, SessionStore, StoreStats } from './types.ts'

export interface MemoryStoreOptions {
  /** Most sessions held; the least recently used is evicted beyond it (default 10 000). */
  maxEntries?: number
  /** How often expired entries are swept, ms (default 60 000). */
  sweepInterval?: number
}

interface Entry<T> { value: T, expiresAt: number }

export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, Entry<SessionRecord>>()
  readonly #indexes = new Map<string, Entry<Map<string, number>>>()
  readonly #maxEntries: number
  readonly #sweeper: NodeJS.Timeout
  #hits = 0
  #misses = 0
  #evictions = 0

  constructor (options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000
    const sweepInterval = options.sweepInterval ?? 60_000
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError('createMemoryStore: maxEntries must be a positive integer')
    if (!Number.isFinite(sweepInterval) || sweepInterval < 10) throw new TypeError('createMemoryStore: sweepInterval must be at least 10 ms')
    this.#maxEntries = maxEntries
    this.#sweeper = setInterval(() => this.sweep(), sweepInterval)
    this.#sweeper.unref()
  }

  #live (key: string): SessionRecord | undefined {
    const entry = this.#sessions.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
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

  async get (key: string): Promise<SessionRecord | undefined> {
    return this.peek(key) ?? undefined
  }

  async create (key: string, record: SessionRecord, ttlMs: number): Promise<void> {
    this.#sessions.delete(key)
    while (this.#sessions.size >= this.#maxEntries) {
      const oldest = this.#sessions.keys().next().value as string
      this.#sessions.delete(oldest)
      this.#evictions++
    }
    this.#sessions.set(key, { value: record, expiresAt: Date.now() + ttlMs })
  }

  async update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean> {
    const record = this.#live(key)
    if (record === undefined) return false
    const expiresAt = update.idleExpiry === undefined ? (this.#sessions.get(key) as Entry<SessionRecord>).expiresAt : Date.now() + ttlMs
    this.#sessions.set(key, { value: applyUpdate(record, update), expiresAt })
    return true
  }

  async destroy (key: string): Promise<boolean> {
    const existed = this.#live(key) !== undefined
    this.#sessions.delete(key)
    return existed
  }

  #index (indexKey: string): Map<string, number> | undefined {
    const entry = this.#indexes.get(indexKey)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#indexes.delete(indexKey)
      return undefined
    }
    return entry.value
  }

  async indexAdd (indexKey: string, member: string, score: number, ttlMs: number): Promise<void> {
    const members = this.#index(indexKey) ?? new Map<string, number>()
    const now = Date.now()
    for (const [m, s] of members) if (s < now) members.delete(m)
    members.set(member, score)
    this.#indexes.set(indexKey, { value: members, expiresAt: now + ttlMs })
  }

  async indexRemove (indexKey: string, members: readonly string[]): Promise<void> {
    const index = this.#index(indexKey)
    if (index === undefined) return
    for (const m of members) index.delete(m)
    if (index.size === 0) this.#indexes.delete(indexKey)
  }

  async indexRead (indexKey: string): Promise<IndexEntry[]> {
    const index = this.#index(indexKey)
    if (index === undefined) return []
    return [...index].map(([member, score]) => ({ member, score })).sort((a, b) => a.score - b.score)
  }

  /** Removes every expired session and index now. */
  sweep (): void {
    const now = Date.now()
    for (const [key, entry] of this.#sessions) if (entry.expiresAt <= now) this.#sessions.delete(key)
    for (const [key, entry] of this.#indexes) if (entry.expiresAt <= now) this.#indexes.delete(key)
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
