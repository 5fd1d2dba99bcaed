/**
 * The bound cookie: the short-lived credential of a device-bound session, which only a holder of
 * the session's private key can renew (the refresh endpoint asks for a signed proof first).
 *
 *   value = <expiry, ms, base36> "." base64url(HMAC-SHA256(k, "<storage hash>.<expiry>.<thumbprint>.<binding id>"))
 *
 * `k` is derived from the cookie-signing secrets (crypto/derive.ts, label "bound-cookie"): the
 * first secret issues, every secret verifies. The expiry is inside the MAC, so a copied cookie
 * stops working at that instant whatever the copier's cookie jar does; the storage hash and the
 * key thumbprint are inside it, so a cookie of one session (or of a previous binding) is
 * nothing to another. Checking it costs no store access: verified values are memoised by the
 * exact cookie string (failures never are), so a cached read pays a map look-up.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import { deriveKeys } from '../crypto/derive.ts'
import { BoundedCache } from '../lru.ts'
import type { Binding } from './binding.ts'

interface Verified {
  readonly hash: string
  readonly thumb: string
  readonly id: string
  readonly expiresAt: number
}

const VALUE = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/

export class BoundCookies {
  readonly #keys: KeyObject[]
  readonly #memo: BoundedCache<string, Verified>

  constructor (secrets: readonly Buffer[], memoSize: number) {
    this.#keys = deriveKeys(secrets, 'bound-cookie')
    this.#memo = new BoundedCache(memoSize)
  }

  #mac (key: KeyObject, hash: string, expiresAt: number, binding: Pick<Binding, 'thumb' | 'id'>): Buffer {
    return createHmac('sha256', key).update(`${hash}.${expiresAt}.${binding.thumb}.${binding.id}`).digest()
  }

  /** A cookie value for session `hash` bound by `binding`, valid until `expiresAt` (ms). */
  issue (hash: string, binding: Pick<Binding, 'thumb' | 'id'>, expiresAt: number): string {
    const mac = this.#mac(this.#keys[0] as KeyObject, hash, expiresAt, binding).toString('base64url')
    return `${expiresAt.toString(36)}.${mac}`
  }

  /** Whether `value` is a live bound cookie of session `hash` under `binding` at `now`. */
  check (value: string | undefined, hash: string, binding: Pick<Binding, 'thumb' | 'id'>, now: number): boolean {
    if (value === undefined) return false
    const memo = this.#memo.get(value)
    if (memo !== undefined) {
      return memo.hash === hash && memo.thumb === binding.thumb && memo.id === binding.id && now < memo.expiresAt
    }
    const m = VALUE.exec(value)
    if (m === null) return false
    const expiresAt = parseInt(m[1] as string, 36)
    if (!Number.isSafeInteger(expiresAt) || now >= expiresAt) return false
    const given = Buffer.from(m[2] as string, 'base64url')
    for (const key of this.#keys) {
      // Constant-time comparison of equal-length MACs (OWASP: no timing oracle).
      if (timingSafeEqual(this.#mac(key, hash, expiresAt, binding), given)) {
        this.#memo.set(value, { hash, thumb: binding.thumb, id: binding.id, expiresAt })
        return true
      }
    }
    return false
  }
}
