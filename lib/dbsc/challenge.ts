/**
 * DBSC challenges: the values a browser must sign (`jti` of its proof), single-use and
 * short-lived, kept in the store so that every instance (and every Cluster shard) agrees on
 * whether one was used.
 *
 *   <prefix>c:<keyed hash of the challenge>   one challenge: the session's storage hash, the
 *                                             purpose, the deadline, a MAC over them; a TTL
 *
 * A challenge is consumed with the store's `take` (read and delete in one step): of two proofs
 * over one challenge — a replay, or two racing requests — exactly one finds it, on any
 * instance. The key name is a keyed hash, so the store never holds a challenge that could be
 * signed; the record is MAC'd, so a store writer cannot plant one for another session or purpose
 * (it still needs the private key to use it). A challenge for registration is useless to a
 * refresh and the reverse; one issued to another session is refused, compared in constant time.
 *
 * The record reuses the session record shape (stores already read, write and expire it); its
 * fields are the challenge's, not a session's, and its name is nothing a session lookup reaches.
 */
import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import { deriveKeys, keyedName } from '../crypto/derive.ts'
import type { Guard } from '../store-deadline.ts'
import { BoundedCache } from '../lru.ts'
import type { SessionRecord, SessionStore } from '../store/contract.ts'

export type ChallengePurpose = 'register' | 'refresh'

export interface ChallengeDeps {
  readonly store: SessionStore
  readonly guard: Guard
  readonly prefix: string
  readonly secrets: readonly Buffer[]
  readonly clock: () => number
  /** How long a challenge may be answered (ms). */
  readonly ttlMs: number
}

export class Challenges {
  readonly #deps: ChallengeDeps
  readonly #keys: KeyObject[]
  /** The outstanding refresh challenge per session, re-sent while more than half its life is left. */
  readonly #outstanding = new BoundedCache<string, { readonly value: string, readonly expiresAt: number }>(4096)

  constructor (deps: ChallengeDeps) {
    this.#deps = deps
    this.#keys = deriveKeys(deps.secrets, 'bound-challenge')
  }

  #name (challenge: string): string {
    return this.#deps.prefix + 'c:' + keyedName(this.#keys[0] as KeyObject, 'name:' + challenge)
  }

  #mac (key: KeyObject, name: string, hash: string, purpose: ChallengePurpose, expiresAt: number): Buffer {
    return createHmac('sha256', key).update(JSON.stringify([name, hash, purpose, expiresAt])).digest()
  }

  /**
   * A new challenge for session `hash`, stored; for a refresh, the outstanding one while fresh
   * unless `renew` (the last answer named a challenge that could not be used).
   */
  async issue (hash: string, purpose: ChallengePurpose, renew = false): Promise<string> {
    const { store, guard, clock, ttlMs } = this.#deps
    const now = clock()
    if (purpose === 'refresh' && !renew) {
      const held = this.#outstanding.get(hash)
      if (held !== undefined && held.expiresAt - now > ttlMs / 2) return held.value
    }
    // 256 bits from the OS CSPRNG: unguessable, never repeated.
    const value = randomBytes(32).toString('base64url')
    const name = this.#name(value)
    const expiresAt = now + ttlMs
    const record: SessionRecord = {
      createdAt: now,
      absoluteExpiry: expiresAt,
      idleExpiry: expiresAt,
      ref: purpose,
      epoch: '-',
      user: undefined,
      userKey: undefined,
      authenticatedAt: undefined,
      userAgent: undefined,
      ip: undefined,
      sealed: [],
      seal: this.#mac(this.#keys[0] as KeyObject, name, hash, purpose, expiresAt).toString('base64url'),
      fields: new Map([['h', hash]]),
    }
    await guard.run(store.create(name, record, ttlMs))
    if (purpose === 'refresh') this.#outstanding.set(hash, { value, expiresAt })
    return value
  }

  /**
   * Consumes `challenge` (whatever the outcome, it cannot be answered again) and tells whether it
   * was issued to session `hash` for `purpose` and is still fresh.
   */
  async take (challenge: string, hash: string, purpose: ChallengePurpose): Promise<boolean> {
    const { store, guard, clock } = this.#deps
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) return false
    const name = this.#name(challenge)
    const record = await guard.run(store.take(name))
    const stored = record?.fields.get('h')
    // A used challenge is never re-sent, to this session or the one it was issued to.
    for (const owner of stored === undefined ? [hash] : [hash, stored]) {
      if (this.#outstanding.get(owner)?.value === challenge) this.#outstanding.delete(owner)
    }
    if (record === undefined || clock() >= record.absoluteExpiry || record.ref !== purpose) return false
    const given = Buffer.from(record.seal, 'base64url')
    if (stored === undefined || given.length !== 32) return false
    let sealed = false
    for (const key of this.#keys) {
      // Constant-time comparison (OWASP: no timing oracle on MACs).
      if (timingSafeEqual(this.#mac(key, name, stored, purpose, record.absoluteExpiry), given)) sealed = true
    }
    const a = Buffer.from(stored)
    const b = Buffer.from(hash)
    return sealed && a.length === b.length && timingSafeEqual(a, b)
  }
}
