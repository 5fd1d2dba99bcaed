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
 * A ring none of the configured secrets can open (every secret replaced at once, or the ring
 * deleted) gets a new naming key: every logged-in session then fails its check (its index name
 * no longer matches its user) — closed, never open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { deriveKey, keyedName } from './derive.ts'
import { sessionError } from '../errors.ts'

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

/** Adds the given fields where absent (with `create`: all of them, only if none exists) and returns the whole ring. */
export type KeyringOp = (proposals: Record<string, string>, create?: boolean) => Promise<Record<string, string>>

/**
 * The deployment's naming key, made on first start and wrapped under every configured secret.
 * With `create: false` (operations tools), a ring the secrets cannot open is an error instead.
 */
export async function establishNamingKey (ring: KeyringOp, secrets: readonly Buffer[], create = true): Promise<Buffer> {
  const prints = secrets.map(fingerprint)
  let fields = await ring({})
  for (let attempt = 0; attempt < 3; attempt++) {
    const at = prints.findIndex((p) => fields[p] !== undefined)
    if (at === -1) {
      if (!create) break
      // No configured secret opens the ring (first start, all secrets replaced, or deleted): a
      // new key wrapped under every secret at once, written only if no instance sharing any of
      // these secrets was first (then that key is the one, whichever secret wrapped it).
      const fresh = randomBytes(32)
      fields = await ring(Object.fromEntries(secrets.map((secret, i) => [prints[i] as string, wrap(fresh, secret)])), true)
      continue
    }
    const naming = unwrap(fields[prints[at] as string] as string, secrets[at] as Buffer)
    if (naming === undefined) break
    const missing: Record<string, string> = {}
    secrets.forEach((secret, i) => { if (fields[prints[i] as string] === undefined) missing[prints[i] as string] = wrap(naming, secret) })
    if (Object.keys(missing).length > 0) await ring(missing)
    return naming
  }
  throw sessionError('FST_SESSION_KEYRING_INVALID')
}
