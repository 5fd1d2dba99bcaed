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
 *   <prefix>t:a|i:<hmac>  login-throttle counters (per account, per client)
 *   <prefix>epoch         the global revocation epoch
 *   <prefix>keyring       the naming key, wrapped under each secret
 */
import type { KeyObject } from 'node:crypto'
import { deriveKey, keyedName } from './crypto/derive.ts'

/** The ring's key name (before the naming key is known). */
export function keyringKey (prefix: string): string {
  return prefix + 'keyring'
}

export class KeyNames {
  readonly prefix: string
  readonly epoch: string
  readonly #userKey: KeyObject
  readonly #throttleKey: KeyObject

  constructor (prefix: string, naming: Buffer) {
    this.prefix = prefix
    this.epoch = prefix + 'epoch'
    this.#userKey = deriveKey(naming, 'user-index')
    this.#throttleKey = deriveKey(naming, 'login-throttle')
  }

  session (hash: string): string {
    return this.prefix + hash
  }

  /** The index-name suffix of `userId`'s sessions. */
  userKey (userId: string): string {
    return keyedName(this.#userKey, userId)
  }

  index (userKey: string): string {
    return this.prefix + 'u:' + userKey
  }

  /** A login-throttle counter: `kind` 'a' (account) or 'i' (client), keyed by a hash of `value`. */
  throttle (kind: 'a' | 'i', value: string): string {
    return this.prefix + 't:' + kind + ':' + keyedName(this.#throttleKey, value)
  }
}
