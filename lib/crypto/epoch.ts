/**
 * The global revocation epoch as a value: `<n>.<token>.<mac>` — a counter that only grows, 128
 * random bits, and a MAC under a key derived from the naming key (crypto/naming.ts: shared by
 * every process of the deployment, unknown to the store, and unchanged when `secrets` rotate, so
 * old and new processes of a rolling rotation verify each other's epochs) — and the tag a
 * session record carries instead of the epoch itself.
 *
 * Protects against undoing or disabling `revokeAll` through the store:
 *   - a record stores only HMAC-SHA256(`<n>.<token>`, storage hash) (its epoch *tag*), never the
 *     token: after `revokeAll` replaced the token, nothing in the store reveals the old one, so
 *     no value a store writer can read there brings it back;
 *   - the counter lets every process refuse an epoch older than one it has seen (a writer
 *     putting back a saved copy, a replica that missed the change) and restore the newer one;
 *   - the MAC keeps a writer from planting an epoch of its own (say, the largest counter, so no
 *     later `revokeAll` could go past it): an epoch that does not verify is replaced.
 * What a saved copy still allows is stated in docs/security.md.
 */
import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import { sessionError } from '../errors.ts'

const MAX_COUNTER = 999_999_999_999_999

/** n (1 to 15 digits), a 128-bit token, a 128-bit MAC; the EPOCH script parses the same shape. */
const EPOCH = /^([1-9][0-9]{0,14})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/

export interface Epoch {
  readonly n: number
  /** `<n>.<token>`: what record tags are made from (the same under any secret). */
  readonly id: string
  /** The stored value, MAC included. */
  readonly value: string
}

/** What a record issued under the epoch `id` carries: a tag that does not reveal the epoch's token. */
export function epochTag (id: string, hash: string): string {
  return createHmac('sha256', id).update(hash).digest('base64url').slice(0, 22)
}

export class EpochAuthority {
  readonly #key: () => KeyObject
  readonly #prefix: string

  /**
   * `key`: the current MAC key (it changes only when the process adopts another naming key);
   * `prefix`: an epoch copied to another key prefix does not verify there.
   */
  constructor (key: () => KeyObject, prefix: string) {
    this.#key = key
    this.#prefix = prefix
  }

  #mac (id: string): Buffer {
    return createHmac('sha256', this.#key()).update(this.#prefix).update('\0').update(id).digest().subarray(0, 16)
  }

  /** The epoch after `n`: the counter plus one, a new random token, signed with the current key. */
  next (n: number): Epoch {
    // Fifteen digits: ten revokeAll a second for three million years. A writer holding the naming
    // key could plant the largest one; revokeAll then fails loudly rather than doing nothing.
    if (n + 1 > MAX_COUNTER) {
      throw sessionError('FST_SESSION_STORE_UNAVAILABLE',
        'the revocation epoch counter is at its largest value: reset-keyring starts it over')
    }
    const id = `${n + 1}.${randomBytes(16).toString('base64url')}`
    return { n: n + 1, id, value: `${id}.${this.#mac(id).toString('base64url')}` }
  }

  /** A stored value, if well-formed and signed with one of the secrets. */
  verify (value: unknown): Epoch | undefined {
    if (typeof value !== 'string') return undefined
    const m = EPOCH.exec(value)
    if (m === null) return undefined
    const id = `${m[1] as string}.${m[2] as string}`
    const given = Buffer.from(m[3] as string, 'base64url')
    // Constant-time comparison (no timing oracle on MACs).
    if (!timingSafeEqual(this.#mac(id), given)) return undefined
    return { n: Number(m[1]), id, value }
  }
}
