/**
 * The seal of a session record: HMAC-SHA256 under a key derived from `secrets`, over the
 * session's storage hash and every meta field (deadlines, lineage, epoch, user, login time,
 * login user agent and IP).
 *
 * Protects against a writer of the store (an exposed or compromised Redis): without the
 * secrets, nobody can make a record claim a user, move one session's identity to another key
 * (the storage hash is sealed), push a deadline out, or fake a recent login. Such a record is
 * no session. What a writer can still do is delete (a denial of service) or put back a record
 * it copied earlier (a replay, bounded by that record's own sealed deadlines); data fields are
 * authenticated only when encrypted (docs/security.md).
 *
 * Rotation: `secrets[0]`'s key seals; every secret's key verifies, and a record verified by an
 * older one is resealed on its next touch.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { SessionRecord } from '../store/types.ts'
import { deriveKeys } from './derive.ts'

export type SealCheck = 'valid' | 'stale' | 'invalid'
type Sealed = Omit<SessionRecord, 'seal' | 'fields'>

/** The sealed content, as an unambiguous encoding (a JSON array of strings, numbers and nulls). */
function content (hash: string, r: Sealed): string {
  return JSON.stringify([
    1, hash, r.createdAt, r.absoluteExpiry, r.idleExpiry, r.ref, r.epoch,
    r.user ?? null, r.userKey ?? null, r.authenticatedAt ?? null, r.userAgent ?? null, r.ip ?? null,
  ])
}

export class RecordSealer {
  readonly #keys: KeyObject[]

  constructor (secrets: readonly Buffer[]) {
    this.#keys = deriveKeys(secrets, 'record-seal')
  }

  seal (hash: string, record: Sealed): string {
    return createHmac('sha256', this.#keys[0] as KeyObject).update(content(hash, record)).digest('base64url')
  }

  check (hash: string, record: SessionRecord): SealCheck {
    const given = Buffer.from(record.seal, 'base64url')
    if (given.length !== 32) return 'invalid'
    const text = content(hash, record)
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = createHmac('sha256', this.#keys[i] as KeyObject).update(text).digest()
      // Constant-time comparison (OWASP: no timing oracle on MACs).
      if (timingSafeEqual(expected, given)) return i === 0 ? 'valid' : 'stale'
    }
    return 'invalid'
  }
}
