/**
 * The write-back at `onSend`: the one place a request's changes reach the store after its
 * handler ran, and the session's response headers are chosen (through headers.ts).
 *
 * Invariants it keeps:
 *   - A session is announced (cookie set) only after its store write succeeded; a request whose
 *     session ended meanwhile never sends a cookie (it would overwrite a newer one) and never
 *     loses a write silently (409 FST_SESSION_ENDED).
 *   - Only changed fields are written; the idle deadline, key TTL and cookie slide at most once
 *     per `touchInterval`; a record sealed under an older secret is resealed with a write.
 *   - A request that changed nothing and needs no touch writes nothing and stays synchronous.
 */
import type { FastifyReply } from 'fastify'
import { generateId, generateRef, storageHash } from './crypto/ids.ts'
import { sessionError } from './errors.ts'
import type { ResponseHeaders } from './headers.ts'
import type { RecordMaker } from './record-making.ts'
import { ttlOf, type Core } from './services.ts'
import type { SessionState } from './state.ts'
import type { RecordUpdate, SessionRecord } from './store/contract.ts'

export class WriteBack {
  readonly #core: Core
  readonly #headers: ResponseHeaders
  readonly #records: RecordMaker

  constructor (core: Core, headers: ResponseHeaders, records: RecordMaker) {
    this.#core = core
    this.#headers = headers
    this.#records = records
  }

  #run<T> (call: Promise<T>): Promise<T> {
    return this.#core.guard.run(call)
  }

  /**
   * Writes this request's changes (called once, from `onSend`). Returns undefined when there is
   * nothing to write, so the common read-only request stays synchronous.
   */
  commit (state: SessionState, reply: FastifyReply): Promise<void> | undefined {
    if (state.committed) return undefined
    state.committed = true
    const record = state.record
    const dirty = state.dirty !== undefined && state.dirty.size > 0
    if (record === undefined) {
      if (dirty && state.foreign) throw sessionError('FST_SESSION_CSRF')
      // A device-bound session without its bound cookie: no new session replaces it (its cookie
      // stays for the refresh to revive); only a login or regenerate starts over.
      if (dirty && state.held !== undefined) return undefined
      if (dirty) return this.#create(state, reply)
      if (state.cookie === 'clear') this.#headers.clear(reply, state)
      return undefined
    }
    const { config, codec } = this.#core
    const now = config.clock()
    // A record sealed under an older secret is resealed at once, like a cookie is re-signed, so
    // that the old secret can be dropped once every active session has been seen.
    // A re-signed cookie also goes through the store: if the session ended meanwhile, no cookie.
    const touch = state.reseal || state.staleCookie || (record.idleExpiry < record.absoluteExpiry &&
      now - (record.idleExpiry - config.idleTimeout) >= config.touchInterval)
    if (!dirty && !touch) {
      this.#announce(state, reply, record, now, false)
      return undefined
    }
    // Fields under an older key ride along with a write that happens anyway (never a write of their own).
    const stale = codec.stale(record, state.hash as string, state.dirty)
    return this.#update(state, reply, record, now, dirty, touch, stale)
  }

  /** Headers of a response whose session exists: the cookie when it is new, slid or re-signed. */
  #announce (state: SessionState, reply: FastifyReply, record: SessionRecord, now: number, slid: boolean): void {
    if (!slid && state.cookie !== 'set' && !state.staleCookie) {
      this.#headers.personal(reply)
      return
    }
    // A cookie signed here is remembered as verified: the next request brings it back.
    const value = state.raw !== undefined && !state.staleCookie
      ? state.raw
      : this.#core.signer.sign(state.id as string, true)
    this.#headers.set(reply, state, value, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
    // DBSC (W3C WebAppSec draft): the response that sets a logged-in session asks for a key.
    if (state.registration !== undefined) reply.header('secure-session-registration', state.registration)
  }

  async #create (state: SessionState, reply: FastifyReply): Promise<void> {
    const { config, codec, events } = this.#core
    const id = state.id ??= generateId()
    const hash = state.hash ??= storageHash(id)
    const tagged = await this.#records.epochTag(state, hash)
    const now = config.clock()
    const ref = state.ref ??= generateRef()
    const make = (epoch: string): SessionRecord => this.#records.seal(hash, {
      createdAt: now,
      absoluteExpiry: now + config.absoluteTimeout,
      idleExpiry: now + config.idleTimeout,
      ref,
      epoch,
      user: undefined,
      userKey: undefined,
      authenticatedAt: undefined,
      userAgent: undefined,
      ip: undefined,
      fields: codec.encodeAll(state.plain(codec), hash),
    })
    const record = await this.#records.create(state, hash, tagged, make)
    state.record = record
    events.emit('created', undefined, ref)
    this.#announce(state, reply, record, now, true)
  }

  /**
   * Writes the dirty (and stale-key) fields. The idle deadline, the key's TTL and the cookie's
   * Max-Age slide only when a touch is due; a touch also reseals the record (with `secrets[0]`).
   */
  async #update (
    state: SessionState,
    reply: FastifyReply,
    record: SessionRecord,
    now: number,
    dirty: boolean,
    due: boolean,
    stale: Map<string, string> | undefined
  ): Promise<void> {
    const { config, codec, store, keys } = this.#core
    const hash = state.hash as string
    const set = new Map<string, string>()
    const del: string[] = []
    const replace = new Map<string, { from: string, to: string }>()
    for (const [key, to] of stale ?? []) replace.set(key, { from: record.fields.get(key) as string, to })
    for (const [key, text] of state.dirty ?? []) {
      if (text !== undefined) set.set(key, codec.encode(key, text, hash))
      else {
        // An encrypted field is deleted by a tombstone: the seal may require it to exist.
        const tombstone = codec.remove(key, hash)
        if (tombstone === undefined) del.push(key)
        else set.set(key, tombstone)
      }
    }
    // A new encrypted field is sealed with the write that adds it, so removing it is detected.
    const touch = due || codec.widens(record, set)
    const fields = new Map(record.fields)
    for (const key of del) fields.delete(key)
    for (const [key, value] of set) fields.set(key, value)
    for (const [key, { to }] of replace) fields.set(key, to)
    const meta = touch && codec.metaStale(record) ? this.#records.meta(record, hash, hash) : undefined
    const next = touch
      ? this.#records.seal(hash, { ...record, ...meta, idleExpiry: now + config.idleTimeout, fields })
      : this.#records.sized({ ...record, fields })
    let applied: boolean
    try {
      const update: RecordUpdate = {
        set,
        del,
        replace,
        maxBytes: config.maxSessionBytes,
        touch: touch
          ? {
              idleExpiry: next.idleExpiry,
              seal: next.seal,
              sealed: next.sealed,
              user: next.user,
              userAgent: next.userAgent,
              ip: next.ip,
              bound: next.bound,
            }
          : undefined,
      }
      applied = await this.#run(store.update(keys.session(hash), update, ttlOf(next, now)))
    } catch (err) {
      // A failed touch alone does not fail a read: the session just slides later.
      if (dirty) throw err
      this.#headers.personal(reply)
      return
    }
    if (!applied) {
      // Ended (revoked, logged out, moved by a concurrent login) while this request ran. No
      // cookie: a newer session cookie may already be in the browser.
      if (dirty) this.#records.ended(state)
      this.#headers.personal(reply)
      return
    }
    state.record = next
    this.#announce(state, reply, next, now, touch)
  }
}
