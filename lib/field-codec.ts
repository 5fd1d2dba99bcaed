/**
 * The field codec: session values on their way to and from the store. JSON text, encrypted with
 * the field cipher for fields under `encryption`; identity meta (user id, login user agent and
 * IP) is encrypted whenever encryption is configured. Pure: built once from the cipher, no I/O.
 *
 * Protects against reading tampered or misplaced data as valid: a ciphertext that fails
 * authentication (moved from another session or field, or under an unknown key) reads as
 * absent and is reported, never as another plaintext and never as a 500. A plaintext value
 * found where a ciphertext is required (a store writer planting a value) is rejected the same way.
 * Deleting an encrypted field leaves an encrypted tombstone (an empty text, which no JSON value
 * is) instead of removing it, so that the record seal can require every encrypted field it has
 * seen to exist (`sealedNames`): a store writer's removal is detected, a deletion is not.
 */
import type { FieldCipher } from './crypto/field-cipher.ts'
import { sessionError } from './errors.ts'
import type { SessionRecord } from './store/contract.ts'

export interface FieldCodec {
  /** The JSON text of one stored field, decrypted; undefined if absent or unreadable. */
  read (record: SessionRecord, hash: string, key: string): string | undefined
  /** The JSON text of a stored field if known without decrypting; undefined otherwise. */
  known (record: SessionRecord, key: string): string | undefined
  /** Whether the record holds a readable value for `key` (a tombstone is none). */
  has (record: SessionRecord, hash: string, key: string): boolean
  /** What a deletion of `key` stores: an encrypted tombstone, or undefined (the field is removed). */
  remove (key: string, hash: string): string | undefined
  /** The encrypted data fields of `fields` (values and tombstones), sorted: what the seal requires to exist. */
  sealedNames (fields: ReadonlyMap<string, string>): string[]
  /** Whether writing `set` adds an encrypted field that `record`'s seal does not yet require. */
  widens (record: SessionRecord, set: ReadonlyMap<string, string>): boolean
  /** Every readable stored field as JSON text. */
  plain (record: SessionRecord, hash: string): Map<string, string>
  /** JSON text → stored value, encrypted (bound to `hash` and the field) where configured. */
  encode (key: string, text: string, hash: string): string
  encodeAll (plain: ReadonlyMap<string, string>, hash: string): Map<string, string>
  /** Fields written under an older key (not changed in this request), re-encrypted under the newest. */
  stale (
    record: SessionRecord, hash: string, dirty: ReadonlyMap<string, unknown> | undefined
  ): Map<string, string> | undefined
  /** A meta value (user id, user agent, IP, device binding) as stored: encrypted when encryption is configured. */
  sealMeta (name: MetaName, value: string | undefined, hash: string): string | undefined
  /** A stored meta value, decrypted; `null` when it cannot be read. */
  openMeta (name: MetaName, stored: string | undefined, hash: string): string | undefined | null
  /** Whether a meta value is stored in plaintext or under an older key: re-encrypt it on the next touch. */
  metaStale (record: SessionRecord): boolean
}

export type MetaName = 'user' | 'userAgent' | 'ip' | 'bound'

/**
 * Meta values are bound to `<hash>#meta` (a storage hash never contains '#'), so no data field's
 * ciphertext, whatever its name, can be moved into a meta value or back.
 */
const metaBinding = (hash: string): string => hash + '#meta'
/** Marks a meta value stored in plaintext (ciphertexts start with '~'). */
const PLAIN_META = 'p:'

/** The plaintext of an encrypted deletion: no JSON text is empty. */
const TOMBSTONE = ''

/** Reports a field that could not be read (the plugin logs and emits `decrypt_error`). */
export type Unreadable = (record: SessionRecord, hash: string, key: string) => void

export function createFieldCodec (cipher: FieldCipher | undefined, unreadable: Unreadable): FieldCodec {
  /**
   * Decrypted fields of records held in a local cache, so a busy session pays each decryption
   * once per version of its record, not once per request (records are immutable: a change in
   * the store replaces the object, and this entry goes with it). `null` marks a field that
   * failed, so it is reported once per record version.
   */
  const decrypted = new WeakMap<SessionRecord, Map<string, string | null>>()

  const read = (record: SessionRecord, hash: string, key: string): string | undefined => {
    const raw = record.fields.get(key)
    if (raw === undefined || cipher === undefined) return raw
    let memo = decrypted.get(record)
    const known = memo?.get(key)
    if (known !== undefined) return known === null || known === TOMBSTONE ? undefined : known
    let text: string | undefined
    if (cipher.isCiphertext(raw)) {
      try {
        text = cipher.decrypt(raw, hash, key)
      } catch {
        unreadable(record, hash, key)
      }
    } else if (cipher.covers(key)) {
      unreadable(record, hash, key)
    } else {
      text = raw
    }
    if (memo === undefined) decrypted.set(record, memo = new Map())
    memo.set(key, text ?? null)
    return text === TOMBSTONE ? undefined : text
  }

  const encode = (key: string, text: string, hash: string): string =>
    cipher !== undefined && cipher.covers(key) ? cipher.encrypt(text, hash, key) : text

  return Object.freeze({
    read,
    encode,

    known (record: SessionRecord, key: string): string | undefined {
      const raw = record.fields.get(key)
      if (raw === undefined || cipher === undefined) return raw
      if (!cipher.isCiphertext(raw)) return cipher.covers(key) ? undefined : raw
      const text = decrypted.get(record)?.get(key)
      return text === null || text === TOMBSTONE ? undefined : text
    },

    has (record: SessionRecord, hash: string, key: string): boolean {
      const raw = record.fields.get(key)
      if (raw === undefined) return false
      return cipher === undefined || !cipher.isCiphertext(raw) ? true : read(record, hash, key) !== undefined
    },

    remove (key: string, hash: string): string | undefined {
      return cipher !== undefined && cipher.covers(key) ? cipher.encrypt(TOMBSTONE, hash, key) : undefined
    },

    sealedNames (fields: ReadonlyMap<string, string>): string[] {
      if (cipher === undefined) return []
      const out: string[] = []
      for (const [key, raw] of fields) if (cipher.covers(key) && cipher.isCiphertext(raw)) out.push(key)
      return out.sort()
    },

    widens (record: SessionRecord, set: ReadonlyMap<string, string>): boolean {
      if (cipher === undefined) return false
      for (const [key, raw] of set) {
        if (cipher.covers(key) && cipher.isCiphertext(raw) && !record.sealed.includes(key)) return true
      }
      return false
    },

    plain (record: SessionRecord, hash: string): Map<string, string> {
      const out = new Map<string, string>()
      for (const key of record.fields.keys()) {
        const text = read(record, hash, key)
        if (text !== undefined) out.set(key, text)
      }
      return out
    },

    encodeAll (plain: ReadonlyMap<string, string>, hash: string): Map<string, string> {
      const out = new Map<string, string>()
      for (const [key, text] of plain) out.set(key, encode(key, text, hash))
      return out
    },

    stale (
      record: SessionRecord, hash: string, dirty: ReadonlyMap<string, unknown> | undefined
    ): Map<string, string> | undefined {
      if (cipher === undefined) return undefined
      let out: Map<string, string> | undefined
      for (const [key, raw] of record.fields) {
        if (dirty?.has(key) === true || !cipher.covers(key) || !cipher.isCiphertext(raw) ||
          !cipher.isStale(raw)) continue
        const text = read(record, hash, key)
        if (text !== undefined) (out ??= new Map()).set(key, cipher.encrypt(text, hash, key))
      }
      return out
    },

    sealMeta (name: MetaName, value: string | undefined, hash: string): string | undefined {
      if (value === undefined) return undefined
      return cipher === undefined ? PLAIN_META + value : cipher.encrypt(value, metaBinding(hash), name)
    },

    openMeta (name: MetaName, stored: string | undefined, hash: string): string | undefined | null {
      if (stored === undefined) return undefined
      // Plaintext is accepted even with encryption on (it was, or later will be, resealed): meta
      // values are covered by the record's seal, so a store writer cannot plant one.
      if (stored.startsWith(PLAIN_META)) return stored.slice(PLAIN_META.length)
      if (cipher === undefined || !cipher.isCiphertext(stored)) return null
      try {
        return cipher.decrypt(stored, metaBinding(hash), name)
      } catch {
        return null
      }
    },

    metaStale (record: SessionRecord): boolean {
      if (cipher === undefined) return false
      const stale = (stored: string | undefined): boolean =>
        stored !== undefined && (stored.startsWith(PLAIN_META) || cipher.isStale(stored))
      return stale(record.user) || stale(record.userAgent) || stale(record.ip) || stale(record.bound)
    },
  })
}

/**
 * JSON text of a session value; undefined for `undefined`; throws for what JSON cannot hold. The
 * error names neither the key nor the value (both are application data, often attacker-chosen),
 * nor carries JSON.stringify's own message (a circular structure's message quotes property names).
 */
export function toJson (value: unknown): string | undefined {
  if (value === undefined) return undefined
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    throw sessionError('FST_SESSION_NOT_SERIALIZABLE')
  }
  if (text === undefined) throw sessionError('FST_SESSION_NOT_SERIALIZABLE')
  return text
}
