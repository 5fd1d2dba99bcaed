/**
 * Maps records and index entries to the strings a store keeps, and back.
 *
 * A session is one hash: meta fields `m:*` (deadlines, lineage, epoch, user, seal, device binding) and data
 * fields `d:<name>`, so that only changed fields need writing. Decoding is strict: a hash
 * without every required meta field (e.g. a partial write to a key that had expired, or a
 * record of an older format) is not a session. Nothing here trusts what it decodes: the seal is
 * checked by the plugin (crypto/record-seal.ts).
 */
import type { IndexEntry, RecordUpdate, SessionRecord } from './contract.ts'

const CREATED = 'm:c'
const ABSOLUTE = 'm:a'
const IDLE = 'm:i'
const REF = 'm:r'
const EPOCH = 'm:g'
const USER = 'm:u'
const USER_KEY = 'm:k'
const AUTH = 'm:t'
const AGENT = 'm:ua'
const IP = 'm:ip'
const BOUND = 'm:b'
const SEAL = 'm:s'
const SEALED = 'm:f'
export const DATA = 'd:'
/** The hash fields a touch rewrites. */
export const IDLE_FIELD = IDLE
export const SEAL_FIELD = SEAL

function optional (out: string[], name: string, value: string | number | undefined): void {
  if (value !== undefined) out.push(name, String(value))
}

export function encodeRecord (record: SessionRecord): string[] {
  const out = [
    CREATED, String(record.createdAt), ABSOLUTE, String(record.absoluteExpiry), IDLE, String(record.idleExpiry),
    REF, record.ref, EPOCH, record.epoch, SEAL, record.seal, SEALED, JSON.stringify(record.sealed),
  ]
  optional(out, USER, record.user)
  optional(out, USER_KEY, record.userKey)
  optional(out, AUTH, record.authenticatedAt)
  optional(out, AGENT, record.userAgent)
  optional(out, IP, record.ip)
  optional(out, BOUND, record.bound)
  for (const [name, value] of record.fields) out.push(DATA + name, value)
  return out
}

/** An update as flat arguments: field/value pairs to set, field/from/to triples, fields to delete. */
export function encodeUpdate (update: RecordUpdate): { set: string[], cas: string[], del: string[] } {
  const touch = update.touch
  const set: string[] = []
  if (touch !== undefined) {
    set.push(IDLE, String(touch.idleExpiry), SEAL, touch.seal, SEALED, JSON.stringify(touch.sealed))
    // Meta values never appear or vanish on a record, but re-encryption changes them: written
    // with every seal, so that the seal and what it covers are always one writer's.
    optional(set, USER, touch.user)
    optional(set, AGENT, touch.userAgent)
    optional(set, IP, touch.ip)
    optional(set, BOUND, touch.bound)
  }
  for (const [name, value] of update.set) set.push(DATA + name, value)
  const cas: string[] = []
  for (const [name, { from, to }] of update.replace ?? []) cas.push(DATA + name, from, to)
  return { set, cas, del: update.del.map((name) => DATA + name) }
}

/** The sealed list of encrypted field names; undefined when it is not a JSON array of strings. */
function names (value: string | undefined): string[] | undefined {
  if (value === undefined) return []
  try {
    const parsed: unknown = JSON.parse(value)
    return Array.isArray(parsed) && parsed.every((n) => typeof n === 'string') ? parsed as string[] : undefined
  } catch {
    return undefined
  }
}

function toInt (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : undefined
}

export function decodeRecord (hash: Record<string, string>): SessionRecord | undefined {
  const createdAt = toInt(hash[CREATED])
  const absoluteExpiry = toInt(hash[ABSOLUTE])
  const idleExpiry = toInt(hash[IDLE])
  const ref = hash[REF]
  const epoch = hash[EPOCH]
  const seal = hash[SEAL]
  if (createdAt === undefined || absoluteExpiry === undefined || idleExpiry === undefined ||
    ref === undefined || epoch === undefined || seal === undefined) return undefined
  const authenticatedAt = toInt(hash[AUTH])
  if (hash[AUTH] !== undefined && authenticatedAt === undefined) return undefined
  const sealed = names(hash[SEALED])
  if (sealed === undefined) return undefined
  const fields = new Map<string, string>()
  for (const name in hash) {
    if (name.startsWith(DATA)) fields.set(name.slice(DATA.length), hash[name] as string)
  }
  return {
    createdAt,
    absoluteExpiry,
    idleExpiry,
    ref,
    epoch,
    user: hash[USER],
    userKey: hash[USER_KEY],
    authenticatedAt,
    userAgent: hash[AGENT],
    ip: hash[IP],
    ...(hash[BOUND] === undefined ? {} : { bound: hash[BOUND] }),
    sealed,
    seal,
    fields,
  }
}

/** Applies an update to a record (for stores that keep decoded records). */
export function applyUpdate (record: SessionRecord, update: RecordUpdate): SessionRecord {
  const fields = new Map(record.fields)
  for (const [name, value] of update.set) fields.set(name, value)
  for (const name of update.del) fields.delete(name)
  for (const [name, { from, to }] of update.replace ?? []) if (fields.get(name) === from) fields.set(name, to)
  const touch = update.touch
  return touch === undefined ? { ...record, fields } : { ...record, ...touch, fields }
}

/** Index entry value: `<hash> <expiresAt> <loginAt>` (a storage hash never contains a space). */
export function encodeEntry (entry: IndexEntry): string {
  return `${entry.hash} ${entry.expiresAt} ${entry.loginAt}`
}

export function decodeEntry (ref: string, value: string): IndexEntry | undefined {
  const parts = value.split(' ')
  if (parts.length !== 3) return undefined
  const expiresAt = toInt(parts[1])
  const loginAt = toInt(parts[2])
  if (expiresAt === undefined || loginAt === undefined || parts[0] === '') return undefined
  return { ref, hash: parts[0] as string, expiresAt, loginAt }
}

/**
 * Stored size of a record in UTF-8 bytes, as `maxSessionBytes` counts it: data names and values
 * (4 bytes each of overhead), the stored user, user agent and IP, and 160 for the rest of the
 * meta. The UPDATE script computes exactly this in Lua (`#` is a byte length there).
 */
export function storedBytes (record: Pick<SessionRecord, 'fields' | 'user' | 'userAgent' | 'ip'>): number {
  let bytes = 160 + Buffer.byteLength(record.user ?? '') + Buffer.byteLength(record.userAgent ?? '') +
    Buffer.byteLength(record.ip ?? '')
  for (const [key, value] of record.fields) bytes += Buffer.byteLength(key) + Buffer.byteLength(value) + 4
  return bytes
}

/** Approximate heap bytes of a record held in a local cache (UTF-16 strings, map overhead). */
export function heapBytes (record: SessionRecord): number {
  let bytes = 400 + 2 * (record.ref.length + record.epoch.length + record.seal.length + 16 * record.sealed.length +
    (record.user?.length ?? 0) + (record.userKey?.length ?? 0) + (record.userAgent?.length ?? 0) +
    (record.ip?.length ?? 0) + (record.bound?.length ?? 0))
  for (const [name, value] of record.fields) bytes += 80 + 2 * (name.length + value.length)
  return bytes
}
