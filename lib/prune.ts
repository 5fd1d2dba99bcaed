/**
 * Pruning of user indexes at login. An index entry lives until its session's absolute deadline
 * (the ADMIT script drops those past it), but most sessions end earlier by idling out, and
 * their entries would pile up: a user who logs in often would get an index of thousands of
 * entries, each costing Redis memory and a read in `listUserSessions`. The index and the
 * records live on different keys (different cluster slots), so no script can see both; instead
 * one login in four (chosen at random) into a large index gets a few random other entries back
 * (`AdmitResult.sample`), and this asks whether their records exist (EXISTS, outside the local
 * cache) and dismisses the entries whose session is gone. O(sample) per sampled login, about two
 * EXISTS per login on average, nothing at all for an index below the sample floor.
 *
 * Protects against pruning a session that is moving: a login creates the record before its
 * index entry, but a move (regenerate, a same-user login) creates the new record, points the
 * entry at it and deletes the old one in separate store calls, so a missing record counts only
 * if it is still missing `grace` later (longer than the few store calls of a move, each bounded
 * by `storeTimeout`); and the dismissal is compare-and-set on the storage hash, so a lineage that
 * moved meanwhile stays.
 */
import type { Guard } from './store-deadline.ts'
import type { KeyNames } from './key-names.ts'
import type { IndexEntry, SessionStore } from './store/contract.ts'

/** Entries waiting for their second look at most; beyond it, new candidates are skipped. */
const MAX_PENDING = 4096

export class IndexPruner {
  readonly #store: SessionStore
  readonly #keys: KeyNames
  readonly #guard: Guard
  readonly #grace: number
  /** `<index key> <ref> <hash>` of entries whose record was missing once, waiting for the second look. */
  readonly #pending = new Set<string>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #closed = false

  constructor (store: SessionStore, keys: KeyNames, guard: Guard, grace: number) {
    this.#store = store
    this.#keys = keys
    this.#guard = guard
    this.#grace = grace
  }

  /** Entries whose record does not exist now (a call that fails counts as existing). */
  async #missing (entries: readonly IndexEntry[]): Promise<IndexEntry[]> {
    const exist = await Promise.all(entries.map((e) =>
      this.#guard.run(this.#store.exists(this.#keys.session(e.hash))).catch(() => true)))
    return entries.filter((_e, i) => !exist[i])
  }

  /** Checks a sample from a login; never throws (housekeeping must not fail a login). */
  async prune (indexKey: string, sample: readonly IndexEntry[]): Promise<void> {
    if (this.#closed) return
    const fresh = sample.filter((e) => !this.#pending.has(`${indexKey} ${e.ref} ${e.hash}`))
    const missing = await this.#missing(fresh)
    const candidates = missing.filter((e) =>
      this.#pending.size < MAX_PENDING && this.#pending.add(`${indexKey} ${e.ref} ${e.hash}`))
    if (candidates.length === 0 || this.#closed) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      this.#second(indexKey, candidates).catch(() => {})
    }, this.#grace)
    timer.unref()
    this.#timers.add(timer)
  }

  async #second (indexKey: string, candidates: readonly IndexEntry[]): Promise<void> {
    try {
      if (this.#closed) return
      const gone = await this.#missing(candidates)
      if (gone.length > 0 && !this.#closed) {
        await this.#guard.run(this.#store.dismiss(indexKey, gone.map((e) => ({ ref: e.ref, hash: e.hash }))))
      }
    } finally {
      for (const e of candidates) this.#pending.delete(`${indexKey} ${e.ref} ${e.hash}`)
    }
  }

  close (): void {
    this.#closed = true
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }
}
