/**
 * DBSC proofs: the JWTs a browser sends in `Secure-Session-Response` (W3C WebAppSec DBSC draft,
 * "DBSC Proof JWT Syntax"): header `{ typ: "dbsc+jwt", alg, jwk? }`, payload `{ jti, … }`, signed
 * with the session's key. Decoding is base64url JSON; every key operation is Node's `crypto`
 * (`createPublicKey` from a JWK, `verify`), nothing hand-rolled.
 *
 * Protects against:
 *   - algorithm confusion: only ES256 and RS256 verify (RFC 8725 §3.1: an allow-list, and the
 *     key's type must fit the algorithm); `none` and every HMAC algorithm are refused;
 *   - a proof made for another purpose: `typ` must be `dbsc+jwt` (RFC 8725 §3.11);
 *   - a "public" key that is a private one, or a weak one: a JWK with private members (`d`, `p`…)
 *     is refused, P-256 only for ES256, RSA moduli of 2048–8192 bits (no leading zero octet) and
 *     an odd public exponent of at least 65537 for RS256;
 *   - oversized or malformed input: length caps, strict base64url and JSON-object checks; every
 *     failure is a reason code, never an exception with the input in it.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto'

export type ProofAlg = 'ES256' | 'RS256'
export const ALGORITHMS: readonly ProofAlg[] = ['ES256', 'RS256']

/** The public members of a key, as RFC 7638 orders them for the thumbprint. */
export type PublicJwk =
  | { readonly kty: 'EC', readonly crv: 'P-256', readonly x: string, readonly y: string }
  | { readonly kty: 'RSA', readonly e: string, readonly n: string }

export interface DecodedProof {
  readonly alg: ProofAlg
  /** The key in the header (registration), public members only. */
  readonly jwk: PublicJwk | undefined
  readonly jti: string
  readonly authorization: string | undefined
  /** `header.payload`, the signed bytes. */
  readonly signingInput: string
  readonly signature: Buffer
}

/** Why a proof was refused (for logs at debug and events' absence of detail: no input in it). */
export type ProofFailure = 'malformed' | 'typ' | 'alg' | 'jwk' | 'signature'

export type Decoded =
  | { readonly ok: true, readonly proof: DecodedProof }
  | { readonly ok: false, readonly reason: ProofFailure }

const MAX_PROOF = 8 * 1024
const SEGMENT = /^[A-Za-z0-9_-]*$/
const B64URL = /^[A-Za-z0-9_-]+$/

function object (segment: string): Record<string, unknown> | undefined {
  if (!SEGMENT.test(segment)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(segment, 'base64url')))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  return parsed as Record<string, unknown>
}

function base64urlBytes (value: unknown): number | undefined {
  if (typeof value !== 'string' || !B64URL.test(value) || value.length > 2048) return undefined
  return Buffer.from(value, 'base64url').length
}

/** A public JWK for `alg`, reduced to its public members; undefined when it is anything else. */
export function publicJwk (value: unknown, alg: ProofAlg): PublicJwk | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const jwk = value as Record<string, unknown>
  // RFC 7518 §6.2.2 / §6.3.2: private members; a proof carries the public key only.
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) if (member in jwk) return undefined
  if (alg === 'ES256') {
    if (jwk['kty'] !== 'EC' || jwk['crv'] !== 'P-256' ||
      base64urlBytes(jwk['x']) !== 32 || base64urlBytes(jwk['y']) !== 32) return undefined
    return { kty: 'EC', crv: 'P-256', x: jwk['x'] as string, y: jwk['y'] as string }
  }
  if (jwk['kty'] !== 'RSA' || base64urlBytes(jwk['n']) === undefined || base64urlBytes(jwk['e']) === undefined) {
    return undefined
  }
  const n = Buffer.from(jwk['n'] as string, 'base64url')
  const e = Buffer.from(jwk['e'] as string, 'base64url')
  // RFC 7518 §6.3.1: unsigned big-endian, no leading zero octet (a padded modulus must not pass
  // for a longer one, nor give one key two thumbprints).
  if (n.length === 0 || e.length === 0 || e.length > 8 || n[0] === 0 || e[0] === 0) return undefined
  const bits = n.length * 8 - Math.clz32(n[0] as number) + 24
  const exponent = BigInt('0x' + e.toString('hex'))
  // An exponent of 1 (or any even one) makes signatures forgeable or keys invalid: 65537 and up, odd.
  if (bits < 2048 || bits > 8192 || exponent < 65537n || exponent % 2n === 0n) return undefined
  return { kty: 'RSA', e: jwk['e'] as string, n: jwk['n'] as string }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key. */
export function thumbprint (jwk: PublicJwk): string {
  // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
  const text = jwk.kty === 'EC'
    ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
    : JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })
  return createHash('sha256').update(text).digest('base64url')
}

/** A KeyObject for a public JWK (Node validates the point is on the curve). */
export function keyOf (jwk: PublicJwk): KeyObject | undefined {
  try {
    return createPublicKey({ key: { ...jwk }, format: 'jwk' })
  } catch {
    return undefined
  }
}

/**
 * Decodes a proof and checks its shape: `typ`, an allowed `alg`, a `jti`. `jwk` present and
 * valid when `needsKey` (registration); absent or valid otherwise (the draft says a refresh
 * proof carries none; one that does is checked against the session's key by the caller).
 */
export function decodeProof (jwt: string, needsKey: boolean): Decoded {
  if (jwt.length > MAX_PROOF) return { ok: false, reason: 'malformed' }
  const parts = jwt.split('.')
  if (parts.length !== 3) return { ok: false, reason: 'malformed' }
  const [h, p, s] = parts as [string, string, string]
  const header = object(h)
  const payload = object(p)
  if (header === undefined || payload === undefined || !B64URL.test(s)) return { ok: false, reason: 'malformed' }
  if (header['typ'] !== 'dbsc+jwt') return { ok: false, reason: 'typ' }
  const alg = header['alg']
  // RFC 8725 §3.1: the algorithm comes from an allow-list, never from the token alone ("none" refused).
  if (alg !== 'ES256' && alg !== 'RS256') return { ok: false, reason: 'alg' }
  // A JWS with `crit` names extensions this verifier does not implement (RFC 7515 §4.1.11).
  if ('crit' in header) return { ok: false, reason: 'malformed' }
  let jwk: PublicJwk | undefined
  if (header['jwk'] !== undefined) {
    jwk = publicJwk(header['jwk'], alg)
    if (jwk === undefined) return { ok: false, reason: 'jwk' }
  } else if (needsKey) {
    return { ok: false, reason: 'jwk' }
  }
  const jti = payload['jti']
  const authorization = payload['authorization']
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) return { ok: false, reason: 'malformed' }
  if (authorization !== undefined && typeof authorization !== 'string') return { ok: false, reason: 'malformed' }
  return {
    ok: true,
    proof: { alg, jwk, jti, authorization, signingInput: h + '.' + p, signature: Buffer.from(s, 'base64url') },
  }
}

/** Whether `proof` is signed by `key` under its algorithm (ES256: IEEE P1363 r||s, RFC 7518 §3.4). */
export function verifyProof (proof: DecodedProof, key: KeyObject): boolean {
  const data = Buffer.from(proof.signingInput, 'ascii')
  try {
    if (proof.alg === 'ES256') {
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1' ||
        proof.signature.length !== 64) return false
      return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, proof.signature)
    }
    if (key.asymmetricKeyType !== 'rsa') return false
    return verify('sha256', data, key, proof.signature)
  } catch {
    return false
  }
}
