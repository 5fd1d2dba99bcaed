/**
 * The lifecycle service: the only code that creates, updates, moves and ends sessions in the
 * store, and keeps user indexes and the epoch in step with them.
 *
 * Invariants it keeps (each with the store step that makes it hold, see store/scripts.ts):
 *   - Fixation: `login` always moves the session to a fresh id (OWASP Session Management Cheat
 *     Sheet, "Renew the Session ID After Any Privilege Level Change").
 *   - No data across users: a login as a different user starts empty except `keep`.
 *   - Revocation is final: a move deletes the old id first and must find it; a logged-in
 *     lineage moves only by compare-and-set on its index entry (ADMIT with `expect`), so a
 *     regenerate or same-user re-login racing a revoke fails with FST_SESSION_ENDED instead of
 *     resurrecting the session under a new id.
 *   - A session is announced (cookie set) only after every store step succeeded; a request whose
 *     session ended meanwhile never sends a cookie (it would overwrite a newer one) and never
 *     loses a write silently (409 FST_SESSION_ENDED).
 *   - Only changed fields are written; the idle deadline, key TTL and cookie slide at most once
 *     per `touchInterval`.
 */
import type { FastifyReply } from 'fastify'
import { cleanIp, cleanUserAgent } from './client-info.ts'
import { toJson } from './field-codec.ts'
import { storedBytes } from './store/record-encoding.ts'
import { discard, dismissUser, durable, ttlOf, type Core } from './services.ts'
import { epochTag } from './crypto/epoch.ts'
import { generateId, generateRef, storageHash } from './crypto/ids.ts'
import { SessionError, sessionError } from './errors.ts'
import type { ResponseHeaders } from './headers.ts'
import { loginWithPassword, type PasswordLoginArgs, type PasswordLoginDeps, type PasswordLoginResult } from './defences/password-login.ts'
import type { IndexPruner } from './prune.ts'
import type { SessionOps } from './session.ts'
import type { SessionState } from './state.ts'
import type { RecordUpdate, SessionRecord } from './store/contract.ts'
import { isPlainObject, userIdArgument } from './option-checks.ts'

type Unsealed = Omit<SessionRecord, 'seal' | 'sealed'>

/** A move of a session to a new id (login, regenerate). */
interface Move {
  readonly record: SessionRecord
  readonly hash: string
  readonly userId: string | undefined
  /**
   * The user index step; `expect`: the old storage hash the lineage must still point at;
   * `generation`: the index's revocation generation a password login read when it began.
   */
  readonly index: { readonly userKey: string, readonly expect: string | undefined, readonly generation?: string | undefined } | undefined
  /** The old session continues (regenerate, same-user re-login): it must still exist. */
  readonly continues: boolean
  /** Which data keys carry over from the old session. */
  readonly carries: (key: string) => boolean
  /** Keys this request set itself: never overwritten by what others wrote meanwhile. */
  readonly ours: ReadonlySet<string>
}

function invalid (detail: string): never {
  throw sessionError('FST_SESSION_INVALID_ARGUMENT', detail)
}

export class Lifecycle implements SessionOps {
  readonly #core: Core
  readonly #headers: ResponseHeaders
  readonly #passwordLogin: PasswordLoginDeps
  readonly #pruner: IndexPruner

  constructor (core: Core, headers: ResponseHeaders, passwordLogin: Omit<PasswordLoginDeps, 'login' | 'generation' | 'tally'>, pruner: IndexPruner) {
    this.#core = core
    this.#headers = headers
    this.#passwordLogin = {
      ...passwordLogin,
      tally: core.tally,
      generation: (userId) => core.guard.run(core.store.generation(core.keys.index(core.keys.userKey(userId)))),
      login: (state, userId, data, generation) => this.login(state, userId, data, undefined, generation),
    }
    this.#pruner = pruner
  }

  loginWithPassword (state: SessionState, args: PasswordLoginArgs): Promise<PasswordLoginResult> {
    return loginWithPassword(this.#passwordLogin, state, args)
  }

  get codec (): Core['codec'] { return this.#core.codec }
  get idleTimeout (): number { return this.#core.config.idleTimeout }
  now (): number { return this.#core.config.clock() }

  #sized<R extends SessionRecord> (record: R): R {
    // maxSessionBytes counts UTF-8 bytes as stored, not UTF-16 code units.
    if (storedBytes(record) > this.#core.config.maxSessionBytes) throw sessionError('FST_SESSION_TOO_LARGE')
    return record
  }

  /** Seals a record: its encrypted fields become required (a store writer's removal is detected). */
  #seal (hash: string, record: Unsealed): SessionRecord {
    const sealed = { ...record, sealed: this.#core.codec.sealedNames(record.fields) }
    return this.#sized({ ...sealed, seal: this.#core.sealer.seal(hash, sealed) })
  }

  #run<T> (call: Promise<T>): Promise<T> {
    return this.#core.guard.run(call)
  }

  /** The session ended while this request ran: no cookie is sent (a newer one may exist). */
  #ended (state: SessionState): never {
    state.rebind(undefined, undefined, undefined, undefined)
    state.cookie = 'none'
    throw sessionError('FST_SESSION_ENDED')
  }

  /**
   * Moves a session to a new id, in the order that keeps every invariant:
   *   1. the new record is created (a record without its index entry is no session yet);
   *   2. its lineage is admitted to the user's index — compare-and-set for a lineage that
   *      continues (a revocation meanwhile makes it fail: FST_SESSION_ENDED, nothing revived);
   *   3. the old id is taken (deleted and read in one step): writes that landed on it since this
   *      request began are carried over, and later writes to it fail loudly. A continuing
   *      session whose old id is gone (logged out meanwhile) ends here.
   */
  async #move (state: SessionState, move: Move): Promise<void> {
    const { config, store, keys, events, tally } = this.#core
    const old = state.record
    const oldHash = state.hash
    const { record, hash } = move
    const now = config.clock()
    await this.#run(store.create(keys.session(hash), record, ttlOf(record, now)))
    const index = move.index
    if (index !== undefined) {
      const indexKey = keys.index(index.userKey)
      const entry = { ref: record.ref, hash, expiresAt: record.absoluteExpiry, loginAt: record.authenticatedAt ?? now }
      const result = await this.#run(store.admit(indexKey, entry, { expect: index.expect, max: config.maxSessionsPerUser, now, ttlMs: config.absoluteTimeout, generation: index.generation }))
      if (!result.admitted) {
        await discard(this.#core, [hash])
        this.#ended(state)
      }
      for (const e of result.evicted) events.emit('revoked', move.userId, e.ref)
      if (result.evicted.length > 0) {
        tally.revoked('limit')
        await discard(this.#core, result.evicted.map((e) => e.hash))
      }
      // Entries of sessions that idled out, pruned in the background (prune.ts).
      if (result.sample !== undefined && result.sample.length > 0) this.#pruner.prune(indexKey, result.sample).catch(() => {})
    }
    if (old === undefined || oldHash === undefined) return
    const taken = await this.#run(store.take(keys.session(oldHash)))
    if (taken === undefined) {
      if (!move.continues) return
      if (index !== undefined) await this.#run(store.dismiss(keys.index(index.userKey), [{ ref: record.ref, hash }]))
      await discard(this.#core, [hash])
      this.#ended(state)
    }
    const delta = this.#delta(old, taken, oldHash, hash, move)
    if (delta === undefined) return
    try {
      await this.#run(store.update(keys.session(hash), delta, 0))
    } catch (err) {
      // The old id is gone and the new one cannot take what was written to it meanwhile: the
      // session ends here, leaving nothing listed that no cookie can reach.
      if (index !== undefined) await this.#run(store.dismiss(keys.index(index.userKey), [{ ref: record.ref, hash }])).catch(() => [])
      await discard(this.#core, [hash])
      if (err instanceof SessionError && err.code === 'FST_SESSION_TOO_LARGE') this.#ended(state)
      throw err
    }
  }

  /** Fields another request changed on the old id after this one loaded it (and not changed here). */
  #delta (old: SessionRecord, taken: SessionRecord, from: string, to: string, move: Move): RecordUpdate | undefined {
    const { codec, config } = this.#core
    const set = new Map<string, string>()
    const del: string[] = []
    const removed = (key: string): void => {
      // An encrypted field is deleted by a tombstone, so the new record's seal keeps holding.
      const tombstone = codec.remove(key, to)
      if (tombstone === undefined) del.push(key)
      else set.set(key, tombstone)
    }
    for (const [key, value] of taken.fields) {
      if (move.ours.has(key) || !move.carries(key) || old.fields.get(key) === value) continue
      const text = codec.read(taken, from, key)
      if (text !== undefined) set.set(key, codec.encode(key, text, to))
      else if (old.fields.has(key)) removed(key)
    }
    for (const key of old.fields.keys()) {
      if (!taken.fields.has(key) && !move.ours.has(key) && move.carries(key)) removed(key)
    }
    // Each carried write was accepted within maxSessionBytes on its own; together with this
    // request's changes they may go past it, up to twice.
    return set.size + del.length === 0 ? undefined : { set, del, maxBytes: 2 * config.maxSessionBytes }
  }

  /** The record's meta values (user, user agent, IP) re-encrypted for `hash` under the newest key. */
  #meta (record: SessionRecord, from: string, hash: string): Pick<SessionRecord, 'user' | 'userAgent' | 'ip'> {
    const { codec } = this.#core
    const move = (name: 'user' | 'userAgent' | 'ip', stored: string | undefined): string | undefined =>
      codec.sealMeta(name, codec.openMeta(name, stored, from) ?? undefined, hash)
    return { user: move('user', record.user), userAgent: move('userAgent', record.userAgent), ip: move('ip', record.ip) }
  }

  /**
   * The epoch tag for a new record with storage hash `hash`, from its epoch copy read fresh (a
   * local copy may predate a `revokeAll` elsewhere by the moment its invalidation takes).
   * `continues`: the old record of a continuing session, which must carry the epoch current
   * now, or `revokeAll` ended it (FST_SESSION_ENDED).
   */
  async #epochTag (state: SessionState, hash: string, continues?: { readonly record: SessionRecord, readonly hash: string }): Promise<string> {
    const { epochs, keys } = this.#core
    const key = keys.epochOf(keys.session(hash))
    let epoch: string | undefined
    if (continues !== undefined) {
      const oldKey = keys.epochOf(keys.session(continues.hash))
      const current = await epochs.fresh(oldKey)
      if (!epochs.matches(current, continues.hash, continues.record.epoch)) this.#ended(state)
      if (oldKey === key) epoch = current
    }
    return epochTag(epoch ?? await epochs.fresh(key), hash)
  }

  #finish (state: SessionState, id: string, hash: string, record: SessionRecord, userId: string | undefined): void {
    state.rebind(id, hash, record, userId)
    state.cookie = 'set'
  }

  /** `generation`: the user index's revocation generation a password login read when it began. */
  async login (state: SessionState, userId: unknown, data: unknown, keep: unknown, generation?: string): Promise<void> {
    userIdArgument(userId, 'login: userId')
    if (data !== undefined && !isPlainObject(data)) invalid('login: data must be a plain object')
    if (keep !== undefined && (!Array.isArray(keep) || !keep.every((k) => typeof k === 'string'))) invalid('login: keep must be an array of strings')
    if (state.foreign) throw sessionError('FST_SESSION_CSRF')
    const { config, keys, codec, store, events } = this.#core
    const old = state.record
    const sameUser = old !== undefined && state.userId === userId
    const otherUser = old !== undefined && state.userId !== undefined && !sameUser
    // A different user must not inherit the previous user's data (e.g. a passed second factor).
    const carries = otherUser ? (key: string) => (keep as string[] | undefined)?.includes(key) === true : () => true
    const plain = new Map([...state.plain(codec)].filter(([key]) => carries(key)))
    const ours = new Set(state.dirty?.keys())
    for (const [key, value] of Object.entries((data ?? {}) as Record<string, unknown>)) {
      const text = toJson(value)
      ours.add(key)
      if (text === undefined) plain.delete(key)
      else plain.set(key, text)
    }
    // A re-login of the same user continues its lineage (it keeps its place under the cap);
    // anything else starts a new one under the epoch current now.
    const id = generateId()
    const hash = storageHash(id)
    const epoch = await this.#epochTag(state, hash, sameUser ? { record: old, hash: state.hash as string } : undefined)
    const now = config.clock()
    const ref = sameUser ? old.ref : generateRef()
    const userKey = keys.userKey(userId)
    const record = this.#seal(hash, {
      createdAt: old !== undefined && !otherUser ? old.createdAt : now,
      absoluteExpiry: now + config.absoluteTimeout,
      idleExpiry: now + config.idleTimeout,
      ref,
      epoch,
      user: codec.sealMeta('user', userId, hash),
      userKey,
      authenticatedAt: now,
      userAgent: config.sessionInfo.userAgent ? codec.sealMeta('userAgent', cleanUserAgent(state.client.headers['user-agent']), hash) : undefined,
      ip: config.sessionInfo.ip ? codec.sealMeta('ip', cleanIp(state.client.ip), hash) : undefined,
      fields: codec.encodeAll(plain, hash),
    })
    const oldUserId = state.userId
    await this.#move(state, { record, hash, userId, index: { userKey, expect: sameUser ? state.hash : undefined, generation }, continues: sameUser, carries, ours })
    if (otherUser && old.userKey !== undefined) {
      // The previous user's lineage ends with it, whatever id it holds by now.
      await this.#run(store.dismiss(keys.index(old.userKey), [{ ref: old.ref, hash: undefined }]))
      events.emit('logout', oldUserId, old.ref)
    }
    this.#finish(state, id, hash, record, userId)
    this.#core.tally.login('ok')
    events.emit('login', userId, ref)
  }

  async regenerate (state: SessionState): Promise<void> {
    const { config, codec } = this.#core
    const old = state.record
    const oldHash = state.hash
    if (old === undefined || oldHash === undefined) {
      // Nothing stored yet: a new id is all it takes, and this request's data goes with it.
      state.id = generateId()
      state.hash = undefined
      return
    }
    const id = generateId()
    const hash = storageHash(id)
    const epoch = await this.#epochTag(state, hash, { record: old, hash: oldHash })
    const now = config.clock()
    const record = this.#seal(hash, {
      ...old,
      ...this.#meta(old, oldHash, hash),
      epoch,
      idleExpiry: now + config.idleTimeout,
      fields: codec.encodeAll(state.plain(codec), hash),
    })
    const userId = state.userId
    const index = old.userKey === undefined ? undefined : { userKey: old.userKey, expect: oldHash }
    await this.#move(state, { record, hash, userId, index, continues: true, carries: () => true, ours: new Set(state.dirty?.keys()) })
    this.#finish(state, id, hash, record, userId)
    this.#core.events.emit('regenerated', userId, old.ref)
  }

  async end (state: SessionState, type: 'destroyed' | 'logout'): Promise<void> {
    const { keys, store, events } = this.#core
    const record = state.record
    const hash = state.hash
    if (record !== undefined && hash !== undefined) {
      // The index entry is the authority: once it is gone the session is dead on every instance.
      // By lineage, whatever id it holds by now: a regenerate racing this logout cannot save it.
      const indexKey = record.userKey === undefined ? undefined : keys.index(record.userKey)
      if (indexKey !== undefined) await this.#run(store.dismiss(indexKey, [{ ref: record.ref, hash: undefined }]))
      await this.#run(store.destroy(keys.session(hash)))
      await durable(this.#core, indexKey === undefined ? [keys.session(hash)] : [indexKey, keys.session(hash)])
      this.#core.tally.revoked(type === 'logout' ? 'logout' : 'destroy')
      events.emit(type, state.userId, record.ref)
    }
    // What follows in this request starts a new, empty session. A cross-site request carried
    // no cookie and ended nothing: it must not delete the visitor's cookie either.
    state.rebind(undefined, undefined, undefined, undefined)
    if (state.foreign) return
    state.cookie = 'clear'
    if (type === 'logout') state.clearSite = true
  }

  async revokeOthers (state: SessionState): Promise<number> {
    const { config, keys, events } = this.#core
    const record = state.record
    const userId = state.userId
    if (record?.userKey === undefined || userId === undefined) throw sessionError('FST_SESSION_UNAUTHENTICATED')
    const removed = await dismissUser(this.#core, keys.index(record.userKey), record.ref)
    this.#core.tally.revoked('others')
    const now = config.clock()
    const live = removed.filter((e) => e.expiresAt > now)
    for (const e of live) events.emit('revoked', userId, e.ref)
    return live.length
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
      if (dirty) return this.#create(state, reply)
      if (state.cookie === 'clear') this.#headers.clear(reply, state)
      return undefined
    }
    const { config, codec } = this.#core
    const now = config.clock()
    // A record sealed under an older secret is resealed at once, like a cookie is re-signed, so
    // that the old secret can be dropped once every active session has been seen.
    // A re-signed cookie also goes through the store: if the session ended meanwhile, no cookie.
    const touch = state.reseal || state.staleCookie || (record.idleExpiry < record.absoluteExpiry && now - (record.idleExpiry - config.idleTimeout) >= config.touchInterval)
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
    const value = state.raw !== undefined && !state.staleCookie ? state.raw : this.#core.signer.sign(state.id as string)
    this.#headers.set(reply, state, value, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
  }

  async #create (state: SessionState, reply: FastifyReply): Promise<void> {
    const { config, codec, store, keys, events } = this.#core
    const id = state.id ??= generateId()
    const hash = state.hash ??= storageHash(id)
    const epoch = await this.#epochTag(state, hash)
    const now = config.clock()
    const ref = state.ref ??= generateRef()
    const record = this.#seal(hash, {
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
    await this.#run(store.create(keys.session(hash), record, ttlOf(record, now)))
    state.record = record
    events.emit('created', undefined, ref)
    this.#announce(state, reply, record, now, true)
  }

  /**
   * Writes the dirty (and stale-key) fields. The idle deadline, the key's TTL and the cookie's
   * Max-Age slide only when a touch is due; a touch also reseals the record (with `secrets[0]`).
   */
  async #update (state: SessionState, reply: FastifyReply, record: SessionRecord, now: number, dirty: boolean, due: boolean, stale: Map<string, string> | undefined): Promise<void> {
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
    const meta = touch && codec.metaStale(record) ? this.#meta(record, hash, hash) : undefined
    const next = touch ? this.#seal(hash, { ...record, ...meta, idleExpiry: now + config.idleTimeout, fields }) : this.#sized({ ...record, fields })
    let applied: boolean
    try {
      const update: RecordUpdate = {
        set,
        del,
        replace,
        maxBytes: config.maxSessionBytes,
        touch: touch ? { idleExpiry: next.idleExpiry, seal: next.seal, sealed: next.sealed, user: next.user, userAgent: next.userAgent, ip: next.ip } : undefined,
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
      if (dirty) this.#ended(state)
      this.#headers.personal(reply)
      return
    }
    state.record = next
    this.#announce(state, reply, next, now, touch)
  }
}
