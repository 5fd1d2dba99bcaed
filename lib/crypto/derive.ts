/**
 * Keys derived from a root key — a cookie-signing secret, or the naming key (crypto/naming.ts) —
 * one per purpose, so that no key serves two
 * purposes (NIST SP 800-108 / RFC 5869 §3.2: domain separation by label) and a leak of one
 * derived key reveals neither the secret nor the other keys.
 *
 * derived(secret, label) = HMAC-SHA256(secret, "fastify-hardened-session/" + label)
 *
 * The secret has at least 256 bits (checked at register), so one HMAC is a sound extractor and
 * expander for a single 256-bit output. Rotation follows `secrets`: index 0 derives the keys
 * that write, every index derives keys that verify or look up.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'

export type Purpose =
  'record-seal' | 'epoch-mac' | 'user-index' | 'login-throttle' | 'naming-fingerprint' | 'naming-wrap'
  | 'bound-cookie' | 'bound-challenge'

export function deriveKey (secret: Buffer, purpose: Purpose): KeyObject {
  const bytes = createHmac('sha256', secret).update(`fastify-hardened-session/${purpose}`).digest()
  try {
    return createSecretKey(bytes)
  } finally {
    bytes.fill(0)
  }
}

/** One derived key per secret, in the order of `secrets`. */
export function deriveKeys (secrets: readonly Buffer[], purpose: Purpose): KeyObject[] {
  return secrets.map((secret) => deriveKey(secret, purpose))
}

/** A keyed one-way name (base64url HMAC-SHA256) of `value` under `key`. */
export function keyedName (key: KeyObject, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url')
}
