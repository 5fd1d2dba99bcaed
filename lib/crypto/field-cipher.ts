/**
 * Per-field encryption at rest: AES-256-GCM over the JSON text of one session field.
 *
 * Protects against: a copy of the store (dump, backup, replica, `MONITOR` output) revealing the
 * values of encrypted fields, and anyone with write access to the store moving a ciphertext to
 * another session or another field (the session binding and field name are authenticated as
 * AAD) or altering it (GCM tag). It does not hide field names, value sizes or timestamps.
 *
 * Format (see docs/encryption.md), never a prefix of JSON text:
 *
 *   ~1.<keyId>.<base64url(nonce[12] | ciphertext | tag[16])>        (no padding)
 *
 *   AAD = 0x01 | u8 len(keyId) | keyId | u32be len(binding) | binding | u32be len(field) | field
 *         (lengths in bytes; keyId ASCII, binding and field UTF-8)
 *
 * Untrusted input (whatever the store returns) is parsed strictly and every failure becomes the
 * same fixed `FST_SESSION_DECRYPT` error: no other exception type, no data in the message.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { sessionError } from '../errors.ts'
import type { EncryptionOptions } from '../public-types.ts'
import { parseKeyRing } from './encryption-keys.ts'
import type { RingKey } from './encryption-keys.ts'

export { generateEncryptionKey } from './encryption-keys.ts'

export interface FieldCipher {
  /** true if `field` is configured for encryption (fields list or '*'). */
  covers (field: string): boolean
  /** Encrypts the JSON text of `field` of the session whose storage binding is `binding`. */
  encrypt (json: string, binding: string, field: string): string
  /** Returns the JSON text; throws SessionError FST_SESSION_DECRYPT on any failure (unknown key id,
   *  bad encoding, auth failure, wrong binding/field) — fixed message, no data in it. */
  decrypt (encoded: string, binding: string, field: string): string
  /**
   * true if `encoded` is a ciphertext of this format (vs plain JSON text). Plain JSON never starts
   * with the format's marker.
   */
  isCiphertext (encoded: string): boolean
  /** true if `encoded` was written under a key other than keys[0] (so it should be re-encrypted on next write). */
  isStale (encoded: string): boolean
}

/** '~': JSON text (RFC 8259 §2) starts with whitespace, `{ [ " - 0-9 t f n`, never with '~'. */
export const CIPHERTEXT_MARKER = '~'
/** Format version, written in the header and bound in the AAD. */
export const FORMAT_VERSION = 1

const MARKER_CODE = 0x7e // '~'
const VERSION_CODE = 0x31 // '1'
const DOT_CODE = 0x2e // '.'
const HEADER_START = `${CIPHERTEXT_MARKER}${FORMAT_VERSION}.`

// NIST SP 800-38D §5.2.1.1 / §8.2.2: 96-bit random IVs; §5.2.1.2: full 128-bit tag.
const ALGORITHM = 'aes-256-gcm'
const NONCE_BYTES = 12
const TAG_BYTES = 16
const GCM_OPTIONS = { authTagLength: TAG_BYTES } as const

const PAYLOAD = /^[A-Za-z0-9_-]+$/
/** Reused AAD buffer size; longer bindings/fields fall back to a one-off allocation. */
const AAD_SCRATCH_BYTES = 1024

// Nonces are drawn from a batch of `crypto.randomBytes` output, each 12-byte slice used exactly
// once, then the batch is dropped for a new one (as Node's randomUUID caches entropy): one
// CSPRNG call costs ~3 µs, a third of an encryption. Nonces are public, so holding them is safe.
const NONCES_PER_BATCH = 128
let nonceBatch = Buffer.alloc(0)
let nonceOffset = 0

function freshNonce (): Buffer {
  if (nonceOffset === nonceBatch.length) {
    nonceBatch = randomBytes(NONCE_BYTES * NONCES_PER_BATCH)
    nonceOffset = 0
  }
  const nonce = nonceBatch.subarray(nonceOffset, nonceOffset + NONCE_BYTES)
  nonceOffset += NONCE_BYTES
  return nonce
}

interface PreparedKey {
  readonly id: string
  readonly key: KeyObject
  /** `~1.<id>.`, prepended to the base64url payload. */
  readonly header: string
  /** `0x01 | u8 len(id) | id`: the constant start of every AAD under this key. */
  readonly aadPrefix: Buffer
}

function prepare ({ id, key }: RingKey): PreparedKey {
  const idBytes = Buffer.from(id, 'latin1') // ids are [A-Za-z0-9_-]: one byte per character
  const aadPrefix = Buffer.allocUnsafe(2 + idBytes.length)
  aadPrefix[0] = FORMAT_VERSION
  aadPrefix[1] = idBytes.length
  idBytes.copy(aadPrefix, 2)
  return Object.freeze({ id, key, header: `${HEADER_START}${id}.`, aadPrefix })
}

/**
 * Writes the AAD into `scratch` (or a fresh buffer when it may not fit). Each variable part is
 * length-prefixed, so ('ab', 'c') and ('a', 'bc') give different AADs. The returned view is only
 * valid until the next call; `setAAD` copies it synchronously.
 */
function buildAad (scratch: Buffer, prefix: Buffer, binding: string, field: string): Buffer {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const worst = prefix.length + 8 + 3 * (binding.length + field.length)
  const out = worst <= scratch.length ? scratch : Buffer.allocUnsafe(worst)
  let offset = prefix.copy(out, 0)
  const bindingBytes = out.write(binding, offset + 4, 'utf8')
  out.writeUInt32BE(bindingBytes, offset)
  offset += 4 + bindingBytes
  const fieldBytes = out.write(field, offset + 4, 'utf8')
  out.writeUInt32BE(fieldBytes, offset)
  offset += 4 + fieldBytes
  return out.subarray(0, offset)
}

function seal (key: PreparedKey, scratch: Buffer, nonce: Buffer, json: string, binding: string, field: string): string {
  const cipher = createCipheriv(ALGORITHM, key.key, nonce, GCM_OPTIONS)
  cipher.setAAD(buildAad(scratch, key.aadPrefix, binding, field))
  const body = cipher.update(json, 'utf8')
  const tail = cipher.final() // empty for GCM, kept for correctness
  const tag = cipher.getAuthTag()
  const total = NONCE_BYTES + body.length + tail.length + TAG_BYTES
  const payload = tail.length === 0
    ? Buffer.concat([nonce, body, tag], total)
    : Buffer.concat([nonce, body, tail, tag], total)
  return key.header + payload.toString('base64url')
}

/** Value of a base64url character already known to be in the alphabet (RFC 4648 §5). */
function base64urlValue (code: number): number {
  if (code >= 0x61) return code - 0x61 + 26 // a-z
  if (code >= 0x41) return code === 0x5f ? 63 : code - 0x41 // A-Z, '_'
  if (code >= 0x30) return code - 0x30 + 52 // 0-9
  return 62 // '-'
}

/**
 * Unpadded base64url has one spelling per byte string only if the unused low bits of the last
 * character are zero and no character is left dangling (RFC 4648 §3.5). Without this check a
 * changed last character could decode to the same bytes.
 */
function isCanonicalLength (payload: string): boolean {
  const rest = payload.length & 3
  if (rest === 0) return true
  if (rest === 1) return false
  const last = base64urlValue(payload.charCodeAt(payload.length - 1))
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0
}

function parseFields (fields: unknown): ReadonlySet<string> | '*' {
  if (fields === '*') return '*'
  if (!Array.isArray(fields) || fields.length === 0) {
    throw sessionError('FST_SESSION_ENCRYPTION_OPTION',
      "encryption.fields must be '*' or a non-empty array of field names")
  }
  for (let i = 0; i < fields.length; i++) {
    const field: unknown = fields[i]
    if (typeof field !== 'string' || field.length === 0) {
      throw sessionError('FST_SESSION_ENCRYPTION_OPTION', `encryption.fields[${i}] must be a non-empty string`)
    }
  }
  return new Set(fields as string[]) // duplicates collapse
}

function parseRing (options: unknown): PreparedKey[] {
  if (options === null || typeof options !== 'object') {
    throw sessionError('FST_SESSION_ENCRYPTION_OPTION', 'encryption must be an object { keys, fields }')
  }
  return parseKeyRing((options as Partial<EncryptionOptions>).keys).map(prepare)
}

/**
 * Validates `options` once (register time) and returns the cipher used on the request path.
 * Throws `FST_SESSION_ENCRYPTION_OPTION` naming the offending option path, never its value.
 */
export function createFieldCipher (options: EncryptionOptions): FieldCipher {
  const ring = parseRing(options)
  const fields = parseFields(options.fields)
  const primary = ring[0] as PreparedKey
  const byId = new Map<string, PreparedKey>(ring.map((key) => [key.id, key]))
  const scratch = Buffer.allocUnsafe(AAD_SCRATCH_BYTES)

  /** The authenticated JSON text, or undefined for anything that is not a valid ciphertext. */
  function open (encoded: string, binding: string, field: string): string | undefined {
    if (typeof encoded !== 'string' ||
      encoded.charCodeAt(0) !== MARKER_CODE ||
      encoded.charCodeAt(1) !== VERSION_CODE ||
      encoded.charCodeAt(2) !== DOT_CODE) return undefined
    const dot = encoded.indexOf('.', 3)
    if (dot < 0) return undefined
    const key = byId.get(encoded.slice(3, dot))
    if (key === undefined) return undefined
    const payload = encoded.slice(dot + 1)
    if (!PAYLOAD.test(payload) || !isCanonicalLength(payload)) return undefined
    const raw = Buffer.from(payload, 'base64url')
    if (raw.length < NONCE_BYTES + TAG_BYTES) return undefined
    const decipher = createDecipheriv(ALGORITHM, key.key, raw.subarray(0, NONCE_BYTES), GCM_OPTIONS)
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
    decipher.setAAD(buildAad(scratch, key.aadPrefix, binding, field))
    const body = decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES))
    const tail = decipher.final() // throws if the tag does not verify
    return tail.length === 0 ? body.toString('utf8') : Buffer.concat([body, tail]).toString('utf8')
  }

  return Object.freeze({
    covers: fields === '*' ? () => true : (field: string) => fields.has(field),

    encrypt (json: string, binding: string, field: string): string {
      // NIST SP 800-38D §8.2.2: a fresh random 96-bit IV per invocation.
      return seal(primary, scratch, freshNonce(), json, binding, field)
    },

    decrypt (encoded: string, binding: string, field: string): string {
      let json: string | undefined
      try {
        json = open(encoded, binding, field)
      } catch {
        // Fall through: one fixed error for every failure, no cause attached.
      }
      if (json === undefined) throw sessionError('FST_SESSION_DECRYPT')
      return json
    },

    isCiphertext (encoded: string): boolean {
      // Everything with the marker is claimed by the format; a malformed one fails `decrypt`
      // instead of ever being read as plaintext.
      return typeof encoded === 'string' && encoded.charCodeAt(0) === MARKER_CODE
    },

    isStale (encoded: string): boolean {
      // Key ids never contain '.', so the header prefix identifies keys[0] exactly.
      return typeof encoded === 'string' && encoded.charCodeAt(0) === MARKER_CODE &&
        !encoded.startsWith(primary.header)
    },
  })
}

/**
 * @internal Known-answer tests only: encrypts under `options.keys[0]` with a caller-chosen nonce.
 * Never use it in production: repeating a nonce under one key breaks GCM's confidentiality and
 * authenticity (NIST SP 800-38D §8). Not exported from the package index.
 */
export function encryptWithNonce (
  options: EncryptionOptions, nonce: Buffer, json: string, binding: string, field: string
): string {
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== NONCE_BYTES) {
    throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`)
  }
  const primary = parseRing(options)[0] as PreparedKey
  return seal(primary, Buffer.allocUnsafe(AAD_SCRATCH_BYTES), Buffer.from(nonce), json, binding, field)
}
