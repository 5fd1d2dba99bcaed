/**
 * Encryption key ring: validation, import and generation of the AES-256 keys used for per-field
 * encryption at rest.
 *
 * Protects against: weak or malformed keys slipping into production (wrong length, sloppy
 * encodings), key material leaking through errors, logs or `util.inspect`, and ambiguous key ids
 * in the ciphertext header. Keys are imported once, at register time, into `KeyObject`s; the
 * caller's strings are never kept, and the temporary decoded bytes are zeroed.
 */
import { createSecretKey, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { sessionError } from '../errors.ts'
import type { EncryptionKey } from '../public-types.ts'

/** AES-256 key length in bytes (FIPS 197). */
export const KEY_BYTES = 32

/** Longest key id; ids go into every ciphertext header, so keep them short. */
export const MAX_KEY_ID_LENGTH = 32

/** Key ids are header-safe: no '.', which separates the header parts, and no other punctuation. */
const KEY_ID = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_KEY_ID_LENGTH}}$`)

// Clean base64 (RFC 4648 §4, optional padding) or base64url (RFC 4648 §5, optional padding);
// one alphabet per string, no whitespace, no line breaks.
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/

/** A validated key: the `KeyObject` and its id. Never holds the key as a string. */
export interface RingKey {
  readonly id: string
  readonly key: KeyObject
}

function fail (detail: string): never {
  throw sessionError('FST_SESSION_ENCRYPTION_OPTION', detail)
}

/**
 * Decodes a base64 / base64url key string strictly, or returns undefined. Non-canonical input
 * (wrong padding, non-zero trailing bits) is rejected so that one key has one spelling.
 */
function decodeKeyString (text: string): Buffer | undefined {
  const alphabet = BASE64.test(text) ? 'base64' : BASE64URL.test(text) ? 'base64url' : undefined
  if (alphabet === undefined) return undefined
  const body = text.replace(/=+$/, '')
  const padded = text.length !== body.length
  if (padded && text.length % 4 !== 0) return undefined
  if (body.length % 4 === 1) return undefined
  const bytes = Buffer.from(body, alphabet)
  if (bytes.toString(alphabet).replace(/=+$/, '') !== body) {
    bytes.fill(0)
    return undefined
  }
  return bytes
}

function importKey (value: unknown, path: string): KeyObject {
  const message = `${path} must be ${KEY_BYTES} bytes: a Buffer or a base64 / base64url string`
  if (typeof value === 'string') {
    const bytes = decodeKeyString(value)
    if (bytes === undefined) fail(message)
    try {
      if (bytes.length !== KEY_BYTES) fail(message)
      // createSecretKey copies the bytes into the KeyObject.
      return createSecretKey(bytes)
    } finally {
      bytes.fill(0)
    }
  }
  if (value instanceof Uint8Array) {
    if (value.byteLength !== KEY_BYTES) fail(message)
    // createSecretKey copies the bytes: later changes to the caller's Buffer do not change the key.
    return createSecretKey(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
  }
  return fail(message)
}

/**
 * Validates `encryption.keys` and imports every key. Errors name the option path
 * (`encryption.keys[1].key`) and never contain key material.
 */
export function parseKeyRing (keys: unknown): RingKey[] {
  if (!Array.isArray(keys) || keys.length === 0) {
    fail('encryption.keys must be a non-empty array of { id, key }')
  }
  const seen = new Set<string>()
  const ring: RingKey[] = []
  for (let i = 0; i < keys.length; i++) {
    const entry: unknown = keys[i]
    const path = `encryption.keys[${i}]`
    if (entry === null || typeof entry !== 'object') fail(`${path} must be an object { id, key }`)
    const { id, key } = entry as Partial<EncryptionKey>
    if (typeof id !== 'string' || !KEY_ID.test(id)) {
      fail(`${path}.id must be 1 to ${MAX_KEY_ID_LENGTH} characters of [A-Za-z0-9_-]`)
    }
    if (seen.has(id)) fail(`${path}.id duplicates an earlier key id`)
    seen.add(id)
    ring.push(Object.freeze({ id, key: importKey(key, `${path}.key`) }))
  }
  return ring
}

/** A fresh random AES-256 key, base64url without padding (43 characters). */
export function generateEncryptionKey (): string {
  return randomBytes(KEY_BYTES).toString('base64url')
}
