/**
 * The store contract shared by the Redis store and the embedded memory store.
 *
 * A store keeps three kinds of data, all under names the plugin chooses (see key-names.ts; a store
 * never sees a raw session id, user id or IP):
 *   - session records, one per session, with a TTL;
 *   - one index per user: lineage reference → the storage hash currently holding that lineage.
 *     The index is the authority for logged-in sessions: a record whose (ref, hash) is not in
 *     its user's index is no session, so removing an entry revokes, atomically and at once;
 *   - one global revocation epoch (on a cluster, a copy of it in every hash slot): every record
 *     carries a tag of the epoch it was issued under, and a record whose tag does not match the
 *     current epoch is no session (`revokeAll`).
 * Every operation touches one key (a cache miss: a record and its epoch copy, which a cluster
 * keeps in one hash slot), so the layout works unchanged on Redis Cluster.
 *
 * `peek*` methods are synchronous reads of what the store holds locally and knows to be current
 * (a client-side cache hit); `undefined` means "ask the `get*` method".
 */

/** A session as it lives in a store. Immutable: stores replace, never mutate, records. */
export interface SessionRecord {
  readonly createdAt: number
  /** Deadline from creation or the last login: `absoluteTimeout`. */
  readonly absoluteExpiry: number
  /** Deadline from the last touch: `idleTimeout`. */
  readonly idleExpiry: number
  /** Lineage reference: random, stable across regenerate and same-user re-login. */
  readonly ref: string
  /** Tag of the global revocation epoch the session was issued under (crypto/epoch.ts). */
  readonly epoch: string
  /** The user id as stored (a ciphertext when encryption is configured). */
  readonly user: string | undefined
  /** Suffix of the user's index key (a keyed hash of the user id). */
  readonly userKey: string | undefined
  readonly authenticatedAt: number | undefined
  /** Login user agent and IP as stored (ciphertexts when encryption is configured). */
  readonly userAgent: string | undefined
  readonly ip: string | undefined
  /**
   * The device binding (DBSC: the session identifier and public key, dbsc/binding.ts) as stored
   * (a ciphertext when encryption is configured); absent on a session no device is bound to.
   * A record gains one only when it is created (a move), never by an update.
   */
  readonly bound?: string | undefined
  /**
   * Encrypted data fields that must exist (as a value, or as an encrypted tombstone once
   * deleted): a field removed by a store writer is detected (crypto/record-seal.ts).
   */
  readonly sealed: readonly string[]
  /** MAC over the key prefix, the storage hash and every field above (crypto/record-seal.ts). */
  readonly seal: string
  /** Session data: field name → encoded value (JSON text or ciphertext). */
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
  /**
   * The most stored bytes (`storedBytes` in store/codec.ts) the session may have after this
   * update; over it, nothing is written and the store throws `FST_SESSION_TOO_LARGE`. Checked
   * atomically, so parallel writes cannot add up past it.
   */
  readonly maxBytes: number
  /**
   * A reseal (the session slides, or gains an encrypted field): every sealed value that can
   * change, written together with the seal that covers them, so that of two concurrent reseals
   * the store always holds one whole, consistent set.
   */
  readonly touch?: Pick<SessionRecord, 'idleExpiry' | 'seal' | 'sealed' | 'user' | 'userAgent' | 'ip' | 'bound'>
}

/** One lineage in a user's index. */
export interface IndexEntry {
  readonly ref: string
  /** Storage hash of the session currently holding this lineage. */
  readonly hash: string
  /** Absolute deadline of that session (ms). */
  readonly expiresAt: number
  /** When the lineage was last logged in (ms): the oldest are evicted first. */
  readonly loginAt: number
}

export interface AdmitOptions {
  /**
   * Compare-and-set: the entry is written only if the lineage currently points at this hash
   * (regenerate, same-user re-login). `undefined`: a new lineage, written unconditionally.
   */
  readonly expect: string | undefined
  /** Most live lineages the user may have; the oldest others are removed beyond it. */
  readonly max: number
  /** Now (ms): entries past their deadline are pruned. */
  readonly now: number
  /** TTL of the index key (ms). */
  readonly ttlMs: number
  /**
   * The index's revocation generation as read when the login began (`generation()`): the entry
   * is written only if no `revokeUser`/`revokeOthers` replaced it since. `undefined`: not checked.
   */
  readonly generation?: string | undefined
}

/** The epoch copy a new record is checked against as it is written (`create`). */
export interface EpochCheck {
  readonly key: string
  /** The stored value (`<n>.<token>.<mac>`) the record's tag was made under. */
  readonly value: string
  /** The newest epoch the caller knows: the copy is raised to it first (as `getEpoch` does). */
  readonly known: string
}

export interface AdmitResult {
  /** false: `expect` did not match (the lineage was revoked or moved meanwhile); nothing written. */
  readonly admitted: boolean
  /** Lineages removed to respect `max`. */
  readonly evicted: readonly IndexEntry[]
  /**
   * A few other lineages of a large index, picked at random, whose sessions the caller may check
   * and `dismiss` if they ended (idled out): the store cannot see other keys in the same step.
   */
  readonly sample?: readonly IndexEntry[]
}

export type KeyringMode = 'set' | 'create' | 'reset'

/** One field of the naming key ring to write. */
export interface KeyringChange {
  readonly field: string
  readonly value: string
  /** The value the field must hold for the write to happen; undefined: it must be absent. */
  readonly expect?: string | undefined
}

/** A throttle counter after a hit: its count and the ms until its window ends (0 when none runs). */
export interface HitCount {
  readonly count: number
  readonly ttlMs: number
}

/** Counters of a store's process-local cache (`fastify.session.stats()`). */
export interface StoreStats {
  /** Reads answered from the local cache, with no command sent. */
  cacheHits: number
  /** Reads that had to ask the store. */
  cacheMisses: number
  /** Invalidations Redis pushed to this process (keys changed by other clients); absent without them. */
  invalidations?: number
  /** Entries held in the local cache now (records, index entries, epoch copies); absent without one. */
  cacheEntries?: number
}

export interface SessionStore {
  /** A record held locally and known to be current; `null`: known absent; `undefined`: ask `getWithEpoch`. */
  peek (key: string): SessionRecord | null | undefined
  /** A read that leaves no trace in any local cache (listings, operations). */
  read (key: string): Promise<SessionRecord | undefined>
  /**
   * Writes a whole new record with a TTL in ms. With `epoch` (the record's epoch copy and the
   * value its tag was made under), in the same step: the copy is raised to `epoch.known` as
   * `getEpoch` does, and the record is written only if the copy then holds exactly that value;
   * otherwise nothing is written and the copy's value is returned (a `revokeAll` elsewhere that
   * this process has not heard of yet). Resolves `undefined` when the record was written.
   */
  create (key: string, record: SessionRecord, ttlMs: number, epoch?: EpochCheck): Promise<string | undefined>
  /**
   * Applies an update to an existing record and, with `update.touch`, sets the TTL to `ttlMs`;
   * `false` (and no write) if the record no longer exists.
   */
  update (key: string, update: RecordUpdate, ttlMs: number): Promise<boolean>
  /** Deletes a record; `true` if it existed. */
  destroy (key: string): Promise<boolean>
  /** Deletes a record and returns it as it was at that moment, atomically (a move's last read). */
  take (key: string): Promise<SessionRecord | undefined>

  /** The lineage's entry if held locally and current; `null`: known absent; `undefined`: ask. */
  peekMember (indexKey: string, ref: string): IndexEntry | null | undefined
  getMember (indexKey: string, ref: string): Promise<IndexEntry | null>
  /** Writes `entry` into the index atomically with the `expect` check, pruning and the cap. */
  admit (indexKey: string, entry: IndexEntry, options: AdmitOptions): Promise<AdmitResult>
  /**
   * Removes the listed lineages that still point at the given hash (any hash when it is
   * `undefined`); returns the removed entries.
   */
  dismiss (
    indexKey: string, members: ReadonlyArray<{ readonly ref: string, readonly hash: string | undefined }>
  ): Promise<IndexEntry[]>
  /**
   * Removes every lineage except `keepRef`, atomically, and replaces the index's revocation
   * generation by `generation` (kept at least `ttlMs`); returns the removed entries.
   */
  dismissAll (indexKey: string, keepRef: string | undefined, generation: string, ttlMs: number): Promise<IndexEntry[]>
  /** Every entry, read without caching. */
  members (indexKey: string): Promise<IndexEntry[]>

  /** The epoch copy held locally; `undefined`: ask `getEpoch`. */
  peekEpoch (epochKey: string): string | undefined
  /**
   * An epoch copy, read from the backend, raised first to `known` (the caller's newest known
   * epoch, crypto/epoch.ts) when it is missing, malformed or older: an epoch never goes back.
   */
  getEpoch (epochKey: string, known: string): Promise<string>
  /**
   * A session and its epoch copy (as `getEpoch`) in one round trip: a cache miss. With
   * `indexPrefix` (the prefix of user index keys), a store that can read the logged-in record's
   * index entry in the same step returns it as `member` (`null`: no entry for its lineage);
   * `member` undefined: not read, ask `getMember`.
   */
  getWithEpoch (
    key: string, epochKey: string, known: string, indexPrefix?: string
  ): Promise<{ record: SessionRecord | undefined, epoch: string, member?: IndexEntry | null }>
  /**
   * Sets an epoch copy to `next` only if it still holds `expected` (one that did not verify);
   * returns its value after.
   */
  replaceEpoch (epochKey: string, expected: string, next: string): Promise<string>
  /** Raises every epoch copy to `next` (`revokeAll`): every record tagged under another epoch is no session. */
  bumpEpoch (epochKeys: readonly string[], next: string): Promise<void>
  /** Whether a key exists (the naming key ring's guard: are there sessions it named?). */
  exists (key: string): Promise<boolean>

  /** A user index's revocation generation ('' when none): read when a password login begins. */
  generation (indexKey: string): Promise<string>

  /**
   * Login-throttle counters: `field` of the hash `key` (a bucket shared by many counters, with
   * no TTL, so that no volatile-* eviction policy can drop a counter: a missing counter would
   * read as a fresh one). A counter holds its count and the end of its window; a counter whose
   * window ended counts as zero. Each call also removes a few fields of the bucket whose window
   * ended, so a bucket holds about as many fields as it has live counters.
   *
   * `hit` adds one (a counter at zero starts a window of `windowMs`) and, with `share`, adds one
   * to that field too, a share of this counter that `release` can take back. Returns the count
   * after the hit and the ms left in its window.
   */
  hit (key: string, field: string, windowMs: number, share?: string): Promise<HitCount>
  /** The count as `hit` would see it, without counting (and without writing a counter). */
  readHits (key: string, field: string): Promise<HitCount>
  /** Takes one hit back (a reserved attempt that succeeded); never below zero. */
  unhit (key: string, field: string): Promise<void>
  /** Takes the `share` field's count (from this window) out of the counter, and deletes `share`. */
  release (key: string, field: string, share: string): Promise<void>
  /** Deletes a counter. */
  clearHits (key: string, field: string): Promise<void>

  /**
   * The naming key ring (crypto/naming.ts). `set` (default): each change is written only where
   * the field holds `expect` (absent when undefined). `create`: every change, only if the ring
   * does not exist at all. `reset`: the ring becomes exactly the changes (an operator starting
   * over: every session ends). Returns every field after.
   */
  keyring (key: string, changes: readonly KeyringChange[], mode?: KeyringMode): Promise<Record<string, string>>

  /**
   * Resolves once every change written by this process to the masters holding `keys` has been
   * acknowledged by at least one replica of each master that has replicas (`WAIT`); rejects with
   * FST_SESSION_STORE_UNAVAILABLE when none acknowledges in time. Absent: nothing to wait for.
   */
  durable? (keys: readonly string[]): Promise<void>
  /**
   * Calls `listener` with the name of every key under the prefix changed by another client, and
   * with `null` whenever changes may have been missed (reconnect, flush, failover). Returns how
   * to stop. Absent: the store is this process's alone (memory).
   */
  watch? (listener: (key: string | null) => void): () => void
  /**
   * Whether `watch` hears of changes made by other clients (a connection with client-side
   * caching); without it, only of moments changes may have been missed (a reconnect).
   */
  readonly notifies?: boolean
  /**
   * Refuses every command from now on (the coded 503): this process's naming key is no longer the
   * deployment's. Absent: the store is this process's alone (memory).
   */
  fence? (reason: string): void
  /** Whether epochs are kept per hash slot (a Redis Cluster). */
  readonly sharded?: boolean

  /**
   * A store call took longer than `storeTimeout`: stop serving anything held locally until a
   * round trip to the backend succeeds again (the link may be stalled, invalidations with it).
   * Returns true when the store found a stalled link and reports its outage itself.
   */
  suspect? (): boolean | void
  stats (): StoreStats
  close (): Promise<void>
}
