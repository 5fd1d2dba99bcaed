/**
 * The store contract shared by the Redis store and the embedded memory store.
 *
 * Keys handed to a store are already one-way names (see crypto/ids.ts): a store never sees a
 * raw session id. Values are strings (JSON text, or ciphertext for encrypted fields).
 */

/** A decoded session as it lives in a store. Immutable: stores replace, never mutate, records. */
export interface SessionRecord {
  readonly createdAt: number
  /** Deadline from creation (or last login): `absoluteTimeout`. */
  readonly absoluteExpiry: number
  /** Deadline from the last touch or write: `idleTimeout`. */
  readonly idleExpiry: number
  readonly userId: string | undefined
  readonly authenticatedAt: number | undefined
  /** Session data: field name → encoded value. */
  readonly fields: ReadonlyMap<string, string>
}

/** The changes of one request: only dirty fields are sent. */
export interface RecordUpdate {
  readonly set: ReadonlyMap<string, string>
  readonly del: readonly string[]
  /**
   * Compare-and-set: each field is replaced by `to` only if it still holds `from` (re-encryption
   * under a newer key must never overwrite a value another request wrote meanwhile).
   */
  readonly replace?: ReadonlyMap<string, { readonly from: string, readonly to: string }>
  /** New idle deadline when the session slides; `undefined` keeps the deadline and the TTL. */
  readonly idleExpiry: number | undefined
}

export interface IndexEntry {
  readonly member: string
  readonly score: number
}

export interface StoreStats {
  cacheHits: number
  cacheMisses: number
}

export interface SessionStore {
  /**
   * The record if it is held locally and known to be current (a client-side cache hit), with
   * no I/O; `null` when it is known not to exist; `undefined` means "ask `get`". Synchronous so
   * that a cached read stays synchronous.
   */
  peek (key: string): SessionRecord | null | undefined
  get (key: string): Promise<SessionRecord | undefined>
  /** Writes a whole new record with a TTL in ms. */
  create (key: string, record: SessionRecord, ttlMs: number): Promise<void>
  /**
   * Applies dirty fields to an existing record and, when `update.idleExpiry` is set, sets the
   * TTL to `ttlMs`; `false` (and no write) if the record no longer exists.
   */
  update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean>
  /** Deletes a record; `true` if it existed. */
  destroy (key: string): Promise<boolean>
  /** Adds `member` with `score` (its deadline, ms) to a user's index and sets the index TTL. */
  indexAdd (indexKey: string, member: string, score: number, ttlMs: number): Promise<void>
  indexRemove (indexKey: string, members: readonly string[]): Promise<void>
  indexRead (indexKey: string): Promise<IndexEntry[]>
  stats (): StoreStats
  close (): Promise<void>
}
