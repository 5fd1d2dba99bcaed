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

/**
 * Decrypted fields of the records held in the process-local cache, so a busy session pays each
 * decryption once per version of its record, not once per request (a record object is never
 * mutated: any change in the store replaces it, and this entry goes with it). `null` marks a
 * field that failed, so it is reported once per record version. Plaintext lives here only as
 * long as the record object does, in the same process that serves it to handlers anyway: the
 * encryption protects data at rest in the store.
 */
const decrypted = new WeakMap<SessionRecord, Map<string, string | null>>()

/** The JSON text of one stored field, decrypted; undefined if absent or unreadable. */
export function readField (m: Manager, record: SessionRecord, hash: string, key: string): string | undefined {
  const raw = record.fields.get(key)
  const cipher = m.cipher
  if (raw === undefined || cipher === undefined) return raw
  let memo = decrypted.get(record)
  const known = memo?.get(key)
  if (known !== undefined) return known ?? undefined
  let text: string | undefined
  if (cipher.isCiphertext(raw)) {
    try {
      text = cipher.decrypt(raw, hash, key)
    } catch {
      text = unreadable(m, record, hash, key)
    }
  } else {
    text = cipher.covers(key) ? unreadable(m, record, hash, key) : raw
  }
  if (memo === undefined) decrypted.set(record, memo = new Map())
  memo.set(key, text ?? null)
  return text
}

/**
 * The JSON text of a stored field if it is known without decrypting (plain, or already
 * decrypted for this record version); undefined otherwise.
 */
export function knownField (m: Manager, record: SessionRecord, key: string): string | undefined {
  const raw = record.fields.get(key)
  const cipher = m.cipher
  if (raw === undefined || cipher === undefined) return raw
  if (!cipher.isCiphertext(raw)) return cipher.covers(key) ? undefined : raw
  return decrypted.get(record)?.get(key) ?? undefined
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
export function encodeField (m: Manager, key: string, text: string, hash: string): string {
  const cipher = m.cipher
  return cipher !== undefined && cipher.covers(key) ? cipher.encrypt(text, hash, key) : text
}

export function encodeFields (m: Manager, plain: ReadonlyMap<string, string>, hash: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const [key, text] of plain) out.set(key, encodeField(m, key, text, hash))
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
