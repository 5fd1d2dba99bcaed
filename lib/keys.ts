/**
 * The names of everything the plugin keeps in a store, under `keyPrefix`.
 *
 * Protects against the store revealing who uses the application: session keys are SHA-256 of
 * the id (crypto/ids.ts), and a user's index key is a keyed hash of the user id (a plain hash
 * of an e-mail address is reversed by a dictionary). The keyed hash follows `secrets`: new
 * indexes are named with `secrets[0]`'s key, and lookups by user id try every secret's name,
 * so rotation never orphans an index. A session record carries its index name (sealed), so the
 * per-request check never hashes the user id.
 *
 *   <prefix><hash>        session record (43 base64url characters, no ':')
 *   <prefix>u:<hmac>      a user's index
 *   <prefix>epoch         the global revocation epoch
 */
import type { KeyObject } from 'node:crypto'
import { deriveKeys, keyedName } from './crypto/derive.ts'

export class KeyNames {
  readonly prefix: string
  readonly epoch: string
  readonly #userKeys: KeyObject[]

  constructor (prefix: string, secrets: readonly Buffer[]) {
    this.prefix = prefix
    this.epoch = prefix + 'epoch'
    this.#userKeys = deriveKeys(secrets, 'user-index')
  }

  session (hash: string): string {
    return this.prefix + hash
  }

  /** The index-name suffix new sessions of `userId` are filed under. */
  userKey (userId: string): string {
    return keyedName(this.#userKeys[0] as KeyObject, userId)
  }

  /** Every index-name suffix `userId` may have sessions under (one per secret, newest first). */
  userKeys (userId: string): string[] {
    return [...new Set(this.#userKeys.map((key) => keyedName(key, userId)))]
  }

  index (userKey: string): string {
    return this.prefix + 'u:' + userKey
  }
}
