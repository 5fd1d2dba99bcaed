/**
 * The seal of a session record: HMAC-SHA256 under a key derived from `secrets`, over the key
 * prefix, the session's storage hash, every meta field (deadlines, lineage, epoch tag, user,
 * login time, login user agent and IP, device binding) and the names of its encrypted data fields.
 *
 * Protects against a writer of the store (an exposed or compromised Redis): without the
 * secrets, nobody can make a record claim a user, move one session's identity to another key
 * (the storage hash is sealed) or to another application's prefix, push a deadline out, fake a
 * recent login, or remove an encrypted data field (each must still exist, as a value or as the
 * encrypted tombstone a deletion leaves: field-codec.ts). Such a record is no session. What a writer
 * can still do is delete (a denial of service) or put back a record it copied earlier (a
 * replay, bounded by that record's own sealed deadlines); data fields are authenticated only
 * when encrypted (docs/security.md).
 *
 * Rotation: `secrets[0]`'s key seals; every secret's key verifies, and a record verified by an
 * older one is resealed on its next touch.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { SessionRecord } from '../store/contract.ts'
import { deriveKeys } from './derive.ts'

export type SealCheck = 'valid' | 'stale' | 'invalid'
type Sealed = Omit<SessionRecord, 'seal' | 'fields'>

/** The sealed content, as an unambiguous encoding (a JSON array of strings, numbers, nulls and one array). */
function content (prefix: string, hash: string, r: Sealed): string {
  return JSON.stringify([
    2, prefix, hash, r.createdAt, r.absoluteExpiry, r.idleExpiry, r.ref, r.epoch,
    r.user ?? null, r.userKey ?? null, r.authenticatedAt ?? null, r.userAgent ?? null, r.ip ?? null, r.sealed,
    // The device binding, on records that have one (records without one seal as before).
    ...(r.bound === undefined ? [] : [r.bound]),
  ])
}

export class RecordSealer {
  readonly #keys: KeyObject[]
  readonly #prefix: string

  /** `prefix`: the store's key prefix, so that a record copied under another prefix is no session there. */
  constructor (secrets: readonly Buffer[], prefix: string) {
    this.#keys = deriveKeys(secrets, 'record-seal')
    this.#prefix = prefix
  }

  seal (hash: string, record: Sealed): string {
    return createHmac('sha256', this.#keys[0] as KeyObject)
      .update(content(this.#prefix, hash, record))
      .digest('base64url')
  }

  check (hash: string, record: SessionRecord): SealCheck {
    const given = Buffer.from(record.seal, 'base64url')
    if (given.length !== 32) return 'invalid'
    const text = content(this.#prefix, hash, record)
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = createHmac('sha256', this.#keys[i] as KeyObject).update(text).digest()
      // Constant-time comparison (OWASP: no timing oracle on MACs).
      if (timingSafeEqual(expected, given)) return i === 0 ? 'valid' : 'stale'
    }
    return 'invalid'
  }
}
