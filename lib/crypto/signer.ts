/**
 * Cookie signing: `<id>.<HMAC-SHA256(secret, id) base64url>`.
 *
 * Protects against forged or tampered cookies. The first secret signs and every secret
 * verifies (rotation); comparison is constant-time (`timingSafeEqual`) after a fixed-length
 * check. Successful verifications are memoised by the exact cookie string in a bounded cache so
 * that a busy session pays its HMAC once, not on every request; failures are never cached, and
 * the memo lives and dies with this signer (a new secrets list makes a new signer).
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import { BoundedCache } from '../lru.ts'
import { ID_LENGTH, isWellFormedId, storageHash } from './ids.ts'

const SIG_LENGTH = 43 // 32-byte HMAC-SHA256 in base64url without padding
export const COOKIE_VALUE_LENGTH = ID_LENGTH + 1 + SIG_LENGTH
const SIG_PATTERN = /^[A-Za-z0-9_-]{43}$/

export interface VerifiedCookie {
  readonly id: string
  /** Storage hash of the id (see ids.ts); computed once per distinct cookie. */
  readonly hash: string
  /** True when an older secret verified it: the cookie should be re-issued with `secrets[0]`. */
  readonly stale: boolean
}

export class Signer {
  readonly #keys: KeyObject[]
  readonly #memo: BoundedCache<string, VerifiedCookie>

  constructor (secrets: ReadonlyArray<string | Buffer>, memoSize: number) {
    this.#keys = secrets.map((s) => createSecretKey(typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s)))
    this.#memo = new BoundedCache(memoSize)
  }

  #mac (key: KeyObject, id: string): string {
    return createHmac('sha256', key).update(id).digest('base64url')
  }

  /**
   * The cookie value of `id`, signed with `secrets[0]`. With `remember`, it is also kept as
   * verified (it verifies by construction: this process just signed it), so the request that
   * brings it back pays no HMAC.
   */
  sign (id: string, remember = false): string {
    const value = `${id}.${this.#mac(this.#keys[0] as KeyObject, id)}`
    if (remember) this.#memo.set(value, Object.freeze({ id, hash: storageHash(id), stale: false }))
    return value
  }

  /** The verified cookie, or `undefined` for anything that is not a cookie we signed. */
  verify (value: string): VerifiedCookie | undefined {
    const memo = this.#memo.get(value)
    if (memo !== undefined) return memo
    if (value.length !== COOKIE_VALUE_LENGTH || value.charCodeAt(ID_LENGTH) !== 46 /* . */) return undefined
    const id = value.slice(0, ID_LENGTH)
    const sig = value.slice(ID_LENGTH + 1)
    if (!isWellFormedId(id) || !SIG_PATTERN.test(sig)) return undefined
    const given = Buffer.from(sig, 'latin1')
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = Buffer.from(this.#mac(this.#keys[i] as KeyObject, id), 'latin1')
      // Constant-time comparison of equal-length values (OWASP: avoid timing oracles on MACs).
      if (timingSafeEqual(expected, given)) {
        const hash = storageHash(id)
        const verified: VerifiedCookie = Object.freeze({ id, hash, stale: i > 0 })
        this.#memo.set(value, verified)
        return verified
      }
    }
    return undefined
  }

  /** Forget a cookie (its session ended), so a later reuse pays a full verification again. */
  forget (value: string): void {
    this.#memo.delete(value)
  }
}
