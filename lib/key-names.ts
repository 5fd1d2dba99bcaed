/**
 * The names of everything the plugin keeps in a store, under `keyPrefix`.
 *
 * Protects against the store revealing who uses the application: session keys are SHA-256 of
 * the id (crypto/ids.ts); a user's index key is a keyed hash of the user id under the naming
 * key (crypto/naming.ts: random, kept wrapped in the store, stable across rotations of
 * `secrets`), because a plain hash of an e-mail address is reversed by a dictionary. A session
 * record carries its index name (sealed), so the per-request check never hashes the user id.
 *
 *   <prefix><hash>        session record (43 base64url characters, no ':')
 *   <prefix>u:<hmac>      a user's index
 *   <prefix>t:<c>         login-throttle counters: 64 bucket hashes without a TTL (never
 *                         evicted by a volatile-* policy), fields `<kind>:<hmac>` (defences/throttle.ts)
 *   <prefix>epoch         the global revocation epoch
 *   <prefix>epoch{<tag>}  on a Redis Cluster, a copy of it in every hash slot (store/cluster.ts
 *                         `slotTag`): a record's epoch lives on the record's own shard
 *   <prefix>keyring       the naming key, wrapped under each secret
 *   <prefix>c:<hmac>      a device-bound session challenge, single-use, with a TTL
 *                         (dbsc/challenge.ts: named by a keyed hash of the challenge)
 */
import type { KeyObject } from 'node:crypto'
import { deriveKey, keyedName } from './crypto/derive.ts'
import { keySlot, SLOTS, slotTag } from './store/cluster.ts'

/** The ring's key name (before the naming key is known). */
export function keyringKey (prefix: string): string {
  return prefix + 'keyring'
}

/**
 * Login-throttle counters: per folded account, per user, a user's share of an account's count,
 * per client; 'n' is never written.
 */
export type ThrottleKind = 'a' | 'u' | 's' | 'i' | 'n'

export class KeyNames {
  readonly prefix: string
  /** The epoch every instance reads at start and `revokeAll` raises first. */
  readonly epoch: string
  /** Whether the store is a Redis Cluster: one epoch copy per hash slot. */
  readonly sharded: boolean
  /** Counts naming-key changes (a ring adopted from another instance): names made before are stale. */
  generation = 0
  #userKey!: KeyObject
  #throttleKey!: KeyObject
  /** MAC key of the revocation epoch (crypto/epoch.ts). */
  epochMacKey!: KeyObject

  constructor (prefix: string, naming: Buffer, sharded = false) {
    this.prefix = prefix
    this.epoch = prefix + 'epoch'
    this.sharded = sharded
    this.#use(naming)
  }

  #use (naming: Buffer): void {
    this.#userKey = deriveKey(naming, 'user-index')
    this.#throttleKey = deriveKey(naming, 'login-throttle')
    this.epochMacKey = deriveKey(naming, 'epoch-mac')
  }

  /** Another naming key is the deployment's now: every name derived from the old one changes. */
  rekey (naming: Buffer): void {
    this.#use(naming)
    this.generation++
  }

  session (hash: string): string {
    return this.prefix + hash
  }

  /** The epoch copy a record stored under `recordKey` is checked against (the record's slot on a cluster). */
  epochOf (recordKey: string): string {
    return this.sharded ? `${this.epoch}{${slotTag(keySlot(recordKey))}}` : this.epoch
  }

  /** Every key holding the epoch: the main one first. */
  epochCopies (): string[] {
    if (!this.sharded) return [this.epoch]
    const out = [this.epoch]
    for (let slot = 0; slot < SLOTS; slot++) out.push(`${this.epoch}{${slotTag(slot)}}`)
    return out
  }

  /** The index-name suffix of `userId`'s sessions. */
  userKey (userId: string): string {
    return keyedName(this.#userKey, userId)
  }

  index (userKey: string): string {
    return this.prefix + 'u:' + userKey
  }

  /**
   * A login-throttle counter (defences/throttle.ts): field `<kind>:<hmac(kind:value)>` of the bucket
   * hash named by the HMAC's first character (64 buckets), or of `bucket` (a counter that
   * must change atomically with another one lives in its bucket).
   */
  throttle (kind: ThrottleKind, value: string, bucket?: string): { readonly key: string, readonly field: string } {
    const name = keyedName(this.#throttleKey, kind + ':' + value)
    return { key: bucket ?? this.prefix + 't:' + name.charAt(0), field: kind + ':' + name }
  }
}
