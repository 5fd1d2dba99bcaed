/**
 * `request.session`: one request's view of a session.
 *
 * Reads are served from the record the manager found (decoded and decrypted lazily, once per
 * field per request; each request gets its own parsed copy, so a handler mutating a value can
 * never corrupt the shared cache). Writes are collected as dirty fields and committed once, at
 * `onSend`: only changed fields are written, nothing is written (and no cookie is sent) for a
 * request that changed nothing. Login, logout, regenerate and destroy act on the store at once.
 *
 * Protects against session fixation (`login` always moves the data to a fresh id and deletes
 * the old one — OWASP Session Management Cheat Sheet, "Renew the Session ID After Any Privilege
 * Level Change") and against announcing a session the store does not hold (the cookie is set
 * only after the write succeeded).
 */
import type { FastifyReply } from 'fastify'
import { generateId, refOf, storageHash } from './crypto/ids.ts'
import type { VerifiedCookie } from './crypto/signer.ts'
import { sessionError } from './errors.ts'
import { ttlOf, type Manager } from './manager.ts'
import type { SessionRecord } from './store/types.ts'
import type { SessionKey, SessionValue } from './types.ts'
import { encodeField, encodeFields, knownField, plainFields, recordBytes, readField, staleFields, toJson } from './fields.ts'

const NONE = 0
const SET = 1
const CLEAR = 2

export class Session {
  readonly #m: Manager
  #raw: string | undefined
  #verified: VerifiedCookie | undefined
  #record: SessionRecord | undefined
  #id: string | undefined
  #hash: string | undefined
  #dirty: Map<string, string | undefined> | undefined
  #values: Map<string, unknown> | undefined
  #cookie = NONE
  #clearSite = false
  #committed = false

  constructor (manager: Manager, raw?: string, verified?: VerifiedCookie, record?: SessionRecord) {
    this.#m = manager
    this.#raw = raw
    this.#verified = verified
    this.#record = record
    this.#id = verified?.id
    this.#hash = verified?.hash
  }

  get id (): string {
    this.#id ??= generateId()
    return this.#id
  }

  get #storageHash (): string {
    this.#hash ??= storageHash(this.id)
    return this.#hash
  }

  get isNew (): boolean { return this.#record === undefined }
  get userId (): string | undefined { return this.#record?.userId }
  get createdAt (): Date { return new Date(this.#record?.createdAt ?? Date.now()) }
  get authenticatedAt (): Date | undefined {
    const at = this.#record?.authenticatedAt
    return at === undefined ? undefined : new Date(at)
  }

  get expiresAt (): Date {
    const r = this.#record
    if (r === undefined) return new Date(Date.now() + this.#m.config.idleTimeout)
    return new Date(Math.min(r.idleExpiry, r.absoluteExpiry))
  }

  /** The JSON text of a field as stored (decrypted), or undefined if absent or unreadable. */
  #stored (key: string): string | undefined {
    const r = this.#record
    return r === undefined ? undefined : readField(this.#m, r, this.#storageHash, key)
  }

  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    const values = this.#values
    if (values !== undefined && values.has(key)) return values.get(key) as SessionValue<K>
    const text = this.#stored(key)
    let value: unknown
    if (text !== undefined) {
      try {
        value = JSON.parse(text)
      } catch {
        value = undefined // a corrupt stored value reads as absent
      }
    }
    (this.#values ??= new Map()).set(key, value)
    return value as SessionValue<K>
  }

  set<K extends SessionKey> (key: K, value: SessionValue<K>): void {
    if (typeof key !== 'string' || (key as string) === '') throw new TypeError('session.set: key must be a non-empty string')
    if (value === undefined) {
      this.delete(key)
      return
    }
    const text = toJson(key, value)
    if (text === undefined) throw sessionError('FST_SESSION_NOT_SERIALIZABLE', key)
    ;(this.#values ??= new Map()).set(key, value)
    // Setting the value already stored is not a change: no write. (Compared only against what is
    // known without work: an encrypted field not yet read in this record version is not decrypted
    // just to compare, so a blind set of an encrypted field is always written.)
    const record = this.#record
    if (this.#dirty?.has(key) !== true && record !== undefined && knownField(this.#m, record, key) === text) return
    ;(this.#dirty ??= new Map()).set(key, text)
  }

  delete (key: SessionKey): void {
    if (!this.has(key) && this.#dirty?.has(key) !== true) return
    ;(this.#values ??= new Map()).set(key, undefined)
    if (this.#record?.fields.has(key) === true) (this.#dirty ??= new Map()).set(key, undefined)
    else this.#dirty?.delete(key)
  }

  has (key: SessionKey): boolean {
    const values = this.#values
    if (values !== undefined && values.has(key)) return values.get(key) !== undefined
    return this.#record?.fields.has(key) === true
  }

  /** All current fields as JSON text (stored, decrypted, then this request's changes). */
  #plain (): Map<string, string> {
    const out = this.#record === undefined ? new Map<string, string>() : plainFields(this.#m, this.#record, this.#storageHash)
    for (const [key, text] of this.#dirty ?? []) {
      if (text === undefined) out.delete(key)
      else out.set(key, text)
    }
    return out
  }

  /** Moves the session (and its data) to a new id; with `bind`, as a fresh login of `bind.userId`. */
  async #move (bind?: { userId: string, data?: object }): Promise<void> {
    const m = this.#m
    const old = this.#record
    if (old === undefined && bind === undefined) {
      // Nothing stored yet: a new id is all it takes, and this request's data goes with it.
      this.#id = generateId()
      this.#hash = undefined
      return
    }
    const oldHash = old === undefined ? undefined : this.#storageHash
    const plain = this.#plain()
    if (bind?.data !== undefined) {
      for (const [key, value] of Object.entries(bind.data)) {
        const text = toJson(key, value)
        if (text === undefined) plain.delete(key)
        else plain.set(key, text)
      }
    }
    const now = Date.now()
    const id = generateId()
    const hash = storageHash(id)
    const config = m.config
    const record: SessionRecord = {
      createdAt: old?.createdAt ?? now,
      absoluteExpiry: bind !== undefined || old === undefined ? now + config.absoluteTimeout : old.absoluteExpiry,
      idleExpiry: now + config.idleTimeout,
      userId: bind !== undefined ? bind.userId : old?.userId,
      authenticatedAt: bind !== undefined ? now : old?.authenticatedAt,
      fields: encodeFields(m, plain, hash),
    }
    this.#checkSize(recordBytes(record))
    // Indexed before it exists, so a concurrent revokeUser cannot miss it (a member whose
    // session was never created is pruned when the index is read).
    if (record.userId !== undefined) await m.indexSession(record.userId, hash, record)
    await m.guard(m.store.create(m.sessionKey(hash), record, ttlOf(record, now)))
    if (oldHash !== undefined) {
      await m.guard(m.store.destroy(m.sessionKey(oldHash)))
      if (old?.userId !== undefined) await m.guard(m.store.indexRemove(m.indexKey(old.userId), [oldHash]))
    }
    this.#rebind(id, hash, record)
    // Only now that every step succeeded is the new session announced.
    this.#cookie = SET
    m.emit(bind !== undefined ? 'login' : 'regenerated', record.userId, refOf(hash))
  }

  regenerate (): Promise<void> {
    return this.#move()
  }

  login (userId: string, data?: object): Promise<void> {
    if (typeof userId !== 'string' || userId === '' || userId.length > 1024) {
      return Promise.reject(new TypeError('session.login: userId must be a non-empty string of at most 1024 characters'))
    }
    if (data !== undefined && (typeof data !== 'object' || data === null)) {
      return Promise.reject(new TypeError('session.login: data must be an object'))
    }
    return this.#move({ userId, data })
  }

  async destroy (): Promise<void> {
    await this.#end('destroyed')
  }

  async logout (): Promise<void> {
    await this.#end('logout')
    this.#clearSite = true
  }

  async #end (type: 'destroyed' | 'logout'): Promise<void> {
    const m = this.#m
    const old = this.#record
    if (old !== undefined) {
      const hash = this.#storageHash
      await m.guard(m.store.destroy(m.sessionKey(hash)))
      if (old.userId !== undefined) await m.guard(m.store.indexRemove(m.indexKey(old.userId), [hash]))
      m.emit(type, old.userId, refOf(hash))
    }
    // What follows in this request starts a new, empty session.
    this.#rebind(undefined, undefined, undefined)
    this.#cookie = CLEAR
  }

  /** Points this request at another session (or none): the old cookie's memo is forgotten. */
  #rebind (id: string | undefined, hash: string | undefined, record: SessionRecord | undefined): void {
    if (this.#raw !== undefined) this.#m.signer.forget(this.#raw)
    this.#raw = undefined
    this.#verified = undefined
    this.#id = id
    this.#hash = hash
    this.#record = record
    this.#dirty = undefined
    this.#values = undefined
  }

  #checkSize (bytes: number): void {
    if (bytes > this.#m.config.maxSessionBytes) throw sessionError('FST_SESSION_TOO_LARGE')
  }

  /**
   * Writes this request's changes (called once, from `onSend`). Returns undefined when there is
   * nothing to write, so the common read-only request stays synchronous.
   */
  commit (reply: FastifyReply): Promise<void> | undefined {
    if (this.#committed) return undefined
    this.#committed = true
    const m = this.#m
    const record = this.#record
    const dirty = this.#dirty !== undefined && this.#dirty.size > 0
    if (record === undefined) {
      if (dirty) return this.#create(reply)
      if (this.#cookie === CLEAR) this.#headers(reply, m.cookies.clear())
      return undefined
    }
    const now = Date.now()
    const config = m.config
    const touch = record.idleExpiry < record.absoluteExpiry && now - (record.idleExpiry - config.idleTimeout) >= config.touchInterval
    if (!dirty && !touch) {
      if (this.#cookie === SET || this.#verified?.stale === true) this.#headers(reply, this.#setCookie(record, now))
      else if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
      return undefined
    }
    // Fields under an older key ride along with a write that happens anyway (never a write of their own).
    const stale = m.cipher === undefined ? undefined : staleFields(m, record, this.#storageHash, this.#dirty)
    return this.#update(reply, record, now, dirty, touch, stale)
  }

  async #create (reply: FastifyReply): Promise<void> {
    const m = this.#m
    const now = Date.now()
    const hash = this.#storageHash
    const record: SessionRecord = {
      createdAt: now,
      absoluteExpiry: now + m.config.absoluteTimeout,
      idleExpiry: now + m.config.idleTimeout,
      userId: undefined,
      authenticatedAt: undefined,
      fields: encodeFields(m, this.#plain(), hash),
    }
    this.#checkSize(recordBytes(record))
    await m.guard(m.store.create(m.sessionKey(hash), record, ttlOf(record, now)))
    this.#record = record
    m.emit('created', undefined, refOf(hash))
    this.#headers(reply, this.#setCookie(record, now))
  }

  /**
   * Writes the dirty (and stale-key) fields. The idle deadline, the key's TTL and the cookie's
   * Max-Age slide only when a touch is due (once per `touchInterval`), like on reads: a write
   * between two touches leaves them as they are and sends no cookie.
   */
  async #update (reply: FastifyReply, record: SessionRecord, now: number, dirty: boolean, touch: boolean, stale: Map<string, string> | undefined): Promise<void> {
    const m = this.#m
    const hash = this.#storageHash
    const set = new Map<string, string>()
    const del: string[] = []
    const replace = new Map<string, { from: string, to: string }>()
    for (const [key, to] of stale ?? []) replace.set(key, { from: record.fields.get(key) as string, to })
    for (const [key, text] of this.#dirty ?? []) {
      if (text === undefined) del.push(key)
      else set.set(key, encodeField(m, key, text, hash))
    }
    const fields = new Map(record.fields)
    for (const key of del) fields.delete(key)
    for (const [key, value] of set) fields.set(key, value)
    for (const [key, { to }] of replace) fields.set(key, to)
    const idleExpiry = touch ? now + m.config.idleTimeout : undefined
    const next: SessionRecord = { ...record, idleExpiry: idleExpiry ?? record.idleExpiry, fields }
    this.#checkSize(recordBytes(next))
    let applied: boolean
    try {
      applied = await m.guard(m.store.update(m.sessionKey(hash), { set, del, replace, idleExpiry }, touch ? ttlOf(next, now) : 0))
    } catch (err) {
      // A failed touch alone does not fail a read: the session just slides later.
      if (dirty) throw err
      if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
      return
    }
    if (!applied) {
      // Revoked or expired while this request ran: its writes are dropped with it.
      this.#headers(reply, m.cookies.clear())
      return
    }
    this.#record = next
    if (touch || this.#cookie === SET || this.#verified?.stale === true) this.#headers(reply, this.#setCookie(next, now))
    else if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
  }

  #setCookie (record: SessionRecord, now: number): string {
    const m = this.#m
    const value = this.#raw !== undefined && this.#verified?.stale !== true ? this.#raw : m.signer.sign(this.id)
    return m.cookies.set(value, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
  }

  #headers (reply: FastifyReply, cookie: string): void {
    reply.header('set-cookie', cookie)
    // A response that sets the session cookie must not be stored by shared caches (RFC 9111 §5.2.2.5).
    if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
    if (this.#clearSite) reply.header('clear-site-data', this.#m.config.clearSiteData)
  }
}
