/**
 * A protocol-level DBSC client, as a browser behaves (W3C WebAppSec DBSC draft): a WebCrypto
 * key pair (ES256 or RS256, non-extractable private key) and the draft's proof JWTs
 * (`typ: dbsc+jwt`, `jti` = the challenge, the public JWK in registrations).
 */
import { webcrypto } from 'node:crypto'
import { isInnerList, parseList } from '../../lib/dbsc/sf.ts'

export type Alg = 'ES256' | 'RS256'

const b64 = (bytes: ArrayBuffer | Uint8Array | string): string => Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes) : bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('base64url')

export interface DeviceKey {
  readonly alg: Alg
  readonly jwk: Record<string, unknown>
  sign (header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string>
}

export async function deviceKey (alg: Alg = 'ES256'): Promise<DeviceKey> {
  const params = alg === 'ES256'
    ? { name: 'ECDSA', namedCurve: 'P-256' }
    : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
  const pair = await webcrypto.subtle.generateKey(params, false, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const full = await webcrypto.subtle.exportKey('jwk', pair.publicKey)
  const jwk: Record<string, unknown> = alg === 'ES256' ? { kty: full.kty, crv: full.crv, x: full.x, y: full.y } : { kty: full.kty, n: full.n, e: full.e }
  return {
    alg,
    jwk,
    async sign (header, payload) {
      const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`
      const algorithm = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' }
      // WebCrypto's ECDSA signature is r||s, the JWS encoding (RFC 7518 §3.4).
      const sig = await webcrypto.subtle.sign(algorithm, pair.privateKey, Buffer.from(input))
      return `${input}.${b64(sig)}`
    },
  }
}

/** A registration proof over `challenge`, with the public key in the header. */
export function registrationProof (key: DeviceKey, challenge: string, extra: Record<string, unknown> = {}): Promise<string> {
  return key.sign({ alg: key.alg, typ: 'dbsc+jwt', jwk: key.jwk }, { jti: challenge, iat: Math.floor(Date.now() / 1000), ...extra })
}

/** A refresh proof over `challenge` (no key in the header, as the draft says). */
export function refreshProof (key: DeviceKey, challenge: string): Promise<string> {
  return key.sign({ alg: key.alg, typ: 'dbsc+jwt' }, { jti: challenge, iat: Math.floor(Date.now() / 1000) })
}

/** `"…"` as an RFC 9651 sf-string header value. */
export function sfString (value: string): string {
  return '"' + value.replace(/[\\"]/g, '\\$&') + '"'
}

/** The parsed `Secure-Session-Registration` header: algorithms, path, challenge. */
export function parseRegistration (header: unknown): { algs: string[], path: string, challenge: string } | undefined {
  if (typeof header !== 'string') return undefined
  const list = parseList(header)
  const first = list?.[0]
  if (first === undefined || !isInnerList(first)) return undefined
  const path = first.params.get('path')
  const challenge = first.params.get('challenge')
  if (typeof path !== 'string' || typeof challenge !== 'string') return undefined
  return { algs: first.items.map((i) => String((i.value as { value: string }).value)), path, challenge }
}

/** The parsed `Secure-Session-Challenge` header: challenge and session identifier. */
export function parseChallenge (header: unknown): { challenge: string, id: string } | undefined {
  if (typeof header !== 'string') return undefined
  const first = parseList(header)?.[0]
  if (first === undefined || isInnerList(first) || typeof first.value !== 'string') return undefined
  const id = first.params.get('id')
  return typeof id === 'string' ? { challenge: first.value, id } : undefined
}
