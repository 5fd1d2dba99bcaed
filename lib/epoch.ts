/**
 * The global revocation epoch as this process knows it: the newest value it has seen, the copy a
 * record is checked against, and `revokeAll`.
 *
 * Protects against an epoch going back or being planted:
 *   - every read raises the store's copy to the newest epoch this process has seen (the EPOCH
 *     script), so a copy deleted, rolled back to a saved value, or lost with a Redis restart or
 *     failover is restored by the first process that reads it, and a process never accepts an
 *     epoch older than one it has seen;
 *   - a copy that does not verify (crypto/epoch.ts: a writer's own value, say the largest
 *     counter) is replaced by the newest known one, compare-and-set;
 *   - a change of the main copy by another client (and any moment invalidations may have been
 *     missed) makes this process read it at once, so a rolled-back or planted value is put right
 *     within milliseconds while any process that saw the newer one runs.
 * Records carry a tag of the epoch's id (crypto/epoch.ts), never the epoch itself.
 */
import { epochTag, EpochAuthority, type Epoch } from './crypto/epoch.ts'
import { sessionError } from './errors.ts'
import type { Guard } from './store-deadline.ts'
import { POLL_UNWATCHED_MS } from './keyring.ts'
import type { KeyNames } from './key-names.ts'
import type { SessionStore } from './store/contract.ts'

/** Stored values verified lately (a handful in practice: one per epoch and slot copy). */
const VERIFIED_MAX = 256

export class EpochKeeper {
  readonly #store: SessionStore
  readonly #keys: KeyNames
  readonly #guard: Guard
  readonly #authority: EpochAuthority
  readonly #verified = new Map<string, Epoch | null>()
  /** The newest epoch seen; before the first read, a first epoch to propose where none exists. */
  #known: Epoch
  #seen = false
  #generation = 0
  #healing = false
  #poll: NodeJS.Timeout | undefined
  #stop: (() => void) | undefined

  constructor (store: SessionStore, keys: KeyNames, guard: Guard) {
    this.#store = store
    this.#keys = keys
    this.#guard = guard
    this.#authority = new EpochAuthority(() => keys.epochMacKey, keys.prefix)
    this.#known = this.#authority.next(0)
  }

  /** The value a store copy is raised to when it is missing or older. */
  get known (): string {
    return this.#known.value
  }

  #verify (value: string): Epoch | undefined {
    if (this.#generation !== this.#keys.generation) {
      // Another naming key was adopted (a ring made afresh after a restart, or an operator's
      // reset-keyring): the epoch starts over with it. Nothing signed under the old key verifies
      // now, and the newest epoch known under it is forgotten, never restored.
      this.#generation = this.#keys.generation
      this.#verified.clear()
      this.#known = this.#authority.next(0)
      this.#seen = false
    }
    let epoch = this.#verified.get(value)
    if (epoch === undefined) {
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.clear()
      this.#verified.set(value, epoch = this.#authority.verify(value) ?? null)
    }
    return epoch ?? undefined
  }

  /**
   * The id of a value just read from the store (raised by the script, so never older than the
   * newest known); a value that does not verify is replaced first.
   */
  accept (epochKey: string, value: string): string | Promise<string> {
    const epoch = this.#verify(value)
    if (epoch === undefined) return this.#repair(epochKey, value)
    if (!this.#seen || epoch.n > this.#known.n) {
      this.#known = epoch
      this.#seen = true
    }
    return epoch.id
  }

  async #repair (epochKey: string, bad: string): Promise<string> {
    let held = bad
    for (let attempt = 0; attempt < 3; attempt++) {
      held = await this.#guard.run(this.#store.replaceEpoch(epochKey, held, this.#known.value))
      if (this.#verify(held) !== undefined) return await this.accept(epochKey, held)
    }
    // A writer replacing the copy as fast as it is repaired: no epoch can be trusted for now.
    throw sessionError('FST_SESSION_STORE_UNAVAILABLE',
      'the revocation epoch in the store keeps changing to values that do not verify')
  }

  /** The epoch copy held locally (and verified): its stored value and id; undefined when not held. */
  held (epochKey: string): Epoch | undefined {
    const value = this.#store.peekEpoch(epochKey)
    return value === undefined ? undefined : this.#verify(value)
  }

  /** The id of the epoch copy for a record key: from the copy held locally, or read. */
  current (epochKey: string): string | Promise<string> {
    return this.held(epochKey)?.id ?? this.fresh(epochKey)
  }

  /** The id of the epoch copy read from the store now (never a local copy), raised to the newest known. */
  fresh (epochKey: string): Promise<string> {
    return this.#guard.run(this.#store.getEpoch(epochKey, this.#known.value))
      .then((value) => this.accept(epochKey, value))
  }

  /** Whether a record's tag was made under the epoch `id`. */
  matches (id: string, hash: string, tag: string): boolean {
    return epochTag(id, hash) === tag
  }

  /**
   * `revokeAll`: every copy raised to the next epoch (the main copy first). A failure part-way
   * leaves copies older than the main one, which their next read (or the next call) raises.
   */
  async bump (durable: boolean): Promise<void> {
    await this.fresh(this.#keys.epoch) // the newest epoch any process wrote
    const next = this.#authority.next(this.#known.n)
    const copies = this.#keys.epochCopies()
    await this.#guard.run(this.#store.bumpEpoch(copies, next.value))
    this.accept(this.#keys.epoch, next.value)
    // A raise leaves a copy with a larger counter alone: read the main copy again, so that one a
    // writer planted meanwhile (it does not verify) is replaced before this resolves.
    await this.fresh(this.#keys.epoch)
    if (durable && this.#store.durable !== undefined) await this.#guard.run(this.#store.durable(copies))
  }

  /**
   * Reads the main copy whenever another client changed it or changes may have been missed, so
   * that a copy rolled back, planted or lost is put right at once.
   */
  watch (): void {
    const main = this.#keys.epoch
    this.#stop = this.#store.watch?.((key) => {
      if (key === main || key === null) this.#heal()
    })
    // Without client-side caching, nothing tells of a change: look now and then.
    if (this.#store.watch !== undefined && this.#store.notifies !== true) {
      this.#poll = setInterval(() => { this.#heal() }, POLL_UNWATCHED_MS)
      this.#poll.unref()
    }
  }

  #heal (): void {
    if (this.#healing) return
    this.#healing = true
    // After the current event-loop turn: a burst of invalidations costs one read.
    setImmediate(() => {
      this.#healing = false
      this.fresh(this.#keys.epoch).catch(() => {}) // a store outage is reported by the guard; the next change retries
    })
  }

  close (): void {
    clearInterval(this.#poll)
    this.#stop?.()
  }
}
