/**
 * The naming key: a random 256-bit key that names what must stay findable by a plain value —
 * user indexes (by user id) and login-throttle counters (by account and IP) — as keyed hashes,
 * so a copy of the store does not say who uses the application.
 *
 * Why not derive it from `secrets`: those rotate, and a user's index must keep one name across a
 * rotation, or a session filed under the old name can no longer be listed or revoked by user id
 * once the old secret is gone (and `maxSessionsPerUser` would count two indexes). So the naming
 * key is made once, at random, and kept in the store *wrapped* (AES-256-GCM) under a key derived
 * from each secret — a store reader without the secrets cannot unwrap it. Every instance adds a
 * wrapping for each of its secrets, so after `[NEW, OLD]` → `[NEW]` the key is still there.
 *
 *   <prefix>keyring   hash: fingerprint(secret) → base64url(nonce ‖ ciphertext ‖ tag)
 *
 * There is one naming key per deployment, always (keyring.ts keeps it so while processes run):
 * a ring that the configured secrets do not open is refused, never replaced by a second key, and
 * a ring lost from the store is restored by the processes that hold its key; a new key is made
 * only where no session it would have named can exist.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { deriveKey, keyedName } from './derive.ts'
import type { KeyringChange } from '../store/contract.ts'

const AAD = Buffer.from('fastify-hardened-session/naming-key/v1')

/** Which secret wrapped an entry: a keyed hash of a constant, revealing nothing of the secret. */
export function fingerprint (secret: Buffer): string {
  return keyedName(deriveKey(secret, 'naming-fingerprint'), 'v1')
}

export function wrap (naming: Buffer, secret: Buffer): string {
  const nonce = randomBytes(12) // NIST SP 800-38D §8.2.2: a fresh random 96-bit IV
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secret, 'naming-wrap'), nonce)
  cipher.setAAD(AAD)
  const body = Buffer.concat([cipher.update(naming), cipher.final()])
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')
}

export function unwrap (wrapped: string, secret: Buffer): Buffer | undefined {
  const raw = Buffer.from(wrapped, 'base64url')
  if (raw.length !== 12 + 32 + 16) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(secret, 'naming-wrap'), raw.subarray(0, 12))
    decipher.setAAD(AAD)
    decipher.setAuthTag(raw.subarray(44))
    return Buffer.concat([decipher.update(raw.subarray(12, 44)), decipher.final()])
  } catch {
    return undefined
  }
}

/** A new naming key: 256 bits from the OS CSPRNG. */
export function newNamingKey (): Buffer {
  return randomBytes(32)
}

/**
 * What a ring is to a holder of `secrets`:
 *   - `open`: an entry of one of them opens, giving the naming key;
 *   - `empty`: there is no ring;
 *   - `altered`: an entry of one of them exists but does not open (a store writer changed it);
 *   - `foreign`: entries exist, none of them for these secrets (wrong secrets, or every secret
 *     replaced at once).
 */
export type RingState =
  | { readonly kind: 'open', readonly naming: Buffer }
  | { readonly kind: 'empty' | 'altered' | 'foreign' }

export function openRing (fields: Readonly<Record<string, string>>, secrets: readonly Buffer[]): RingState {
  let altered = false
  for (const secret of secrets) {
    const wrapped = fields[fingerprint(secret)]
    if (wrapped === undefined) continue
    const naming = unwrap(wrapped, secret)
    if (naming !== undefined) return { kind: 'open', naming }
    altered = true
  }
  if (altered) return { kind: 'altered' }
  return { kind: Object.keys(fields).length === 0 ? 'empty' : 'foreign' }
}

/**
 * The writes that make `fields` hold `naming` under every one of `secrets`: an entry where one
 * is missing, and a replacement (compare-and-set on what was read) where one does not open to it.
 */
export function wrappingsFor (
  naming: Buffer, secrets: readonly Buffer[], fields: Readonly<Record<string, string>>
): KeyringChange[] {
  const out: KeyringChange[] = []
  for (const secret of secrets) {
    const field = fingerprint(secret)
    const held = fields[field]
    if (held !== undefined && unwrap(held, secret)?.equals(naming) === true) continue
    out.push({ field, value: wrap(naming, secret), expect: held })
  }
  return out
}
