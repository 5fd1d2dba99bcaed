/**
 * Encoding of session field values on their way to and from the store: JSON text, encrypted
 * with the field cipher for fields under `encryption`.
 *
 * Protects against reading tampered or misplaced data as valid: a ciphertext that fails
 * authentication (moved from another session or field, or under an unknown key) reads as
 * absent and is reported, never as another plaintext and never as a 500. A plaintext value
 * found where a ciphertext is required (someone with write access to the store planting a
 * value) is rejected the same way.
 */
import { refOf } from './crypto/ids.ts'
import { sessionError } from './errors.ts'
import type { Manager } from './manager.ts'
import type { SessionRecord } from './store/types.ts'

function unreadable (m: Manager, record: SessionRecord, hash: string, key: string): undefined {
  m.log.warn({ sessionRef: refOf(hash), field: key }, 'encrypted session field could not be read')
  m.emit('decrypt_error', record.userId, refOf(hash), 'FST_SESSION_DECRYPT')
  return undefined
}

/** The JSON text of one stored field, decrypted; undefined if absent or unreadable. */
export function readField (m: Manager, record: SessionRecord, hash: string, key: string): string | undefined {
  const raw = record.fields.get(key)
  const cipher = m.cipher
  if (raw === undefined || cipher === undefined) return raw
  if (cipher.isCiphertext(raw)) {
    try {
      return cipher.decrypt(raw, hash, key)
    } catch {
      return unreadable(m, record, hash, key)
    }
  }
  return cipher.covers(key) ? unreadable(m, record, hash, key) : raw
}

/** Every readable stored field as JSON text. */
export function plainFields (m: Manager, record: SessionRecord, hash: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const key of record.fields.keys()) {
    const text = readField(m, record, hash, key)
    if (text !== undefined) out.set(key, text)
  }
  return out
}

/** JSON text → stored value, encrypting (bound to `hash` and the field) where configured. */
export function encodeFields (m: Manager, plain: ReadonlyMap<string, string>, hash: string): Map<string, string> {
  const cipher = m.cipher
  if (cipher === undefined) return new Map(plain)
  const out = new Map<string, string>()
  for (const [key, text] of plain) out.set(key, cipher.covers(key) ? cipher.encrypt(text, hash, key) : text)
  return out
}

/**
 * Fields not changed in this request but written under an older key (or stored in plaintext
 * although now covered): re-encrypted under the newest key, to be written with this request.
 */
export function staleFields (m: Manager, record: SessionRecord, hash: string, dirty: ReadonlyMap<string, unknown> | undefined): Map<string, string> | undefined {
  const cipher = m.cipher
  if (cipher === undefined) return undefined
  let out: Map<string, string> | undefined
  for (const [key, raw] of record.fields) {
    if (dirty?.has(key) === true || !cipher.covers(key) || !cipher.isCiphertext(raw) || !cipher.isStale(raw)) continue
    const text = readField(m, record, hash, key)
    if (text !== undefined) (out ??= new Map()).set(key, cipher.encrypt(text, hash, key))
  }
  return out
}

/** Approximate stored size of a record, for `maxSessionBytes`. */
export function recordBytes (record: SessionRecord): number {
  let bytes = 96 + (record.userId?.length ?? 0)
  for (const [key, value] of record.fields) bytes += key.length + value.length + 4
  return bytes
}

/** JSON text of a session value; undefined for `undefined`; throws for what JSON cannot hold. */
export function toJson (key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    throw sessionError('FST_SESSION_NOT_SERIALIZABLE', key)
  }
  if (text === undefined) throw sessionError('FST_SESSION_NOT_SERIALIZABLE', key)
  return text
}
