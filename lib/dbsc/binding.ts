/**
 * A session's device binding: the DBSC session identifier the browser knows it by, and the
 * public key that must sign every refresh. Kept in the session record as one meta value
 * (`m:b`), covered by the record's seal and encrypted like the other meta values when
 * encryption is configured (codec.ts `sealMeta('bound', …)`): a store writer can neither swap
 * the key nor remove the binding (either breaks the seal: the record is no session).
 */
import { randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { keyOf, publicJwk, thumbprint, type ProofAlg, type PublicJwk } from './proof.ts'

export interface Binding {
  /** The DBSC `session_identifier` (random, 128 bits; unrelated to the session id). */
  readonly id: string
  readonly alg: ProofAlg
  readonly jwk: PublicJwk
  /** RFC 7638 thumbprint of `jwk`: what a bound cookie is tied to. */
  readonly thumb: string
}

/** A binding with its key parsed (kept per record object, so a refresh parses it once). */
export interface OpenBinding extends Binding {
  readonly key: KeyObject
}

export function newBinding (alg: ProofAlg, jwk: PublicJwk): Binding {
  return { id: randomBytes(16).toString('base64url'), alg, jwk, thumb: thumbprint(jwk) }
}

export function encodeBinding (binding: Binding): string {
  return JSON.stringify({ v: 1, id: binding.id, alg: binding.alg, jwk: binding.jwk })
}

/** The binding of a stored (and already seal-checked, decrypted) value; undefined if malformed. */
export function decodeBinding (text: string): OpenBinding | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { v, id, alg, jwk } = parsed as Record<string, unknown>
  if (v !== 1 || typeof id !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(id)) return undefined
  if (alg !== 'ES256' && alg !== 'RS256') return undefined
  const pub = publicJwk(jwk, alg)
  const key = pub === undefined ? undefined : keyOf(pub)
  if (pub === undefined || key === undefined) return undefined
  return { id, alg, jwk: pub, thumb: thumbprint(pub), key }
}
