/**
 * Maps a SessionRecord to the flat field/value pairs of a Redis hash and back.
 *
 * Deadlines travel with the data (`m:a`, `m:i`), so a copy served from any cache can be checked
 * locally; data fields are `d:<name>` so that only changed fields need writing. Decoding is
 * strict: a hash without both deadlines (e.g. a partial write to a key that had expired) is
 * not a session.
 */
import type { RecordUpdate, SessionRecord } from './types.ts'

const CREATED = 'm:c'
const ABSOLUTE = 'm:a'
const IDLE = 'm:i'
const USER = 'm:u'
const AUTH = 'm:t'
const DATA = 'd:'

export function encodeRecord (record: SessionRecord): string[] {
  const out = [CREATED, String(record.createdAt), ABSOLUTE, String(record.absoluteExpiry), IDLE, String(record.idleExpiry)]
  if (record.userId !== undefined) out.push(USER, record.userId)
  if (record.authenticatedAt !== undefined) out.push(AUTH, String(record.authenticatedAt))
  for (const [name, value] of record.fields) out.push(DATA + name, value)
  return out
}

export function encodeUpdate (update: RecordUpdate): { set: string[], cas: string[], del: string[] } {
  const set = update.idleExpiry === undefined ? [] : [IDLE, String(update.idleExpiry)]
  for (const [name, value] of update.set) set.push(DATA + name, value)
  const cas: string[] = []
  for (const [name, { from, to }] of update.replace ?? []) cas.push(DATA + name, from, to)
  return { set, cas, del: update.del.map((name) => DATA + name) }
}

function toInt (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : undefined
}

export function decodeRecord (hash: Record<string, string>): SessionRecord | undefined {
  const absoluteExpiry = toInt(hash[ABSOLUTE])
  const idleExpiry = toInt(hash[IDLE])
  const createdAt = toInt(hash[CREATED])
  if (absoluteExpiry === undefined || idleExpiry === undefined || createdAt === undefined) return undefined
  const fields = new Map<string, string>()
  for (const name in hash) {
    if (name.startsWith(DATA)) fields.set(name.slice(DATA.length), hash[name] as string)
  }
  return {
    createdAt,
    absoluteExpiry,
    idleExpiry,
    userId: hash[USER],
    authenticatedAt: toInt(hash[AUTH]),
    fields,
  }
}

/** Applies an update to a record (for stores that keep decoded records). */
export function applyUpdate (record: SessionRecord, update: RecordUpdate): SessionRecord {
  const fields = new Map(record.fields)
  for (const [name, value] of update.set) fields.set(name, value)
  for (const name of update.del) fields.delete(name)
  for (const [name, { from, to }] of update.replace ?? []) if (fields.get(name) === from) fields.set(name, to)
  return { ...record, idleExpiry: update.idleExpiry ?? record.idleExpiry, fields }
}
