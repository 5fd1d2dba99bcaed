/**
 * The lifecycle service: the moves of a session — `login`, `regenerate`, the device binding
 * (`bind`), `logout`/`destroy` and `revokeOthers` — the only code that creates sessions under a
 * new id and ends them, keeping user indexes and the epoch in step. A request's ordinary writes
 * go back at `onSend` through write-back.ts; both build records with record-making.ts.
 *
 * Invariants it keeps (each with the store step that makes it hold, see store/scripts.ts):
 *   - Fixation: `login` always moves the session to a fresh id (OWASP Session Management Cheat
 *     Sheet, "Renew the Session ID After Any Privilege Level Change").
 *   - No data across users: a login as a different user starts empty except `keep`.
 *   - Revocation is final: a move deletes the old id first and must find it; a logged-in
 *     lineage moves only by compare-and-set on its index entry (ADMIT with `expect`), so a
 *     regenerate or same-user re-login racing a revoke fails with FST_SESSION_ENDED instead of
 *     resurrecting the session under a new id.
 *   - A move that fails leaves nothing listed that no cookie can reach.
 */
import { cleanIp, cleanUserAgent } from './client-info.ts'
import { toJson } from './field-codec.ts'
import { discard, dismissUser, durable, type Core } from './services.ts'
import { generateId, generateRef, storageHash } from './crypto/ids.ts'
import { SessionError, sessionError } from './errors.ts'
import type { IndexPruner } from './prune.ts'
import type { Continued, RecordMaker, Tagged } from './record-making.ts'
import type { SessionState } from './state.ts'
import type { RecordUpdate, SessionRecord } from './store/contract.ts'
import { isPlainObject, userIdArgument } from './option-checks.ts'

/** A move of a session to a new id (login, regenerate). */
interface Move {
  /** The new record under an epoch tag (made again if the store's epoch moved meanwhile). */
  readonly make: (tag: string) => SessionRecord
  readonly tagged: Tagged
  readonly hash: string
  readonly userId: string | undefined
  /**
   * The user index step; `expect`: the old storage hash the lineage must still point at;
   * `generation`: the index's revocation generation a password login read when it began.
   */
  readonly index: {
    readonly userKey: string, readonly expect: string | undefined, readonly generation?: string | undefined
  } | undefined
  /** The old session continues (regenerate, same-user re-login): it must still exist. */
  readonly continues: Continued | undefined
  /** Which data keys carry over from the old session. */
  readonly carries: (key: string) => boolean
  /** Keys this request set itself: never overwritten by what others wrote meanwhile. */
  readonly ours: ReadonlySet<string>
}

function invalid (detail: string): never {
  throw sessionError('FST_SESSION_INVALID_ARGUMENT', detail)
}

/** Device-bound sessions (dbsc/service.ts): the registration a login or regenerate asks for. */
export interface Registrar {
  /** The `Secure-Session-Registration` value for session `hash` (a challenge is stored for it). */
  registration (hash: string): Promise<string>
}

/**
 * Told of each record a login made and the store now holds as made (resolve.ts `issued`): the
 * user it is for, and the naming key generation its user key was named under.
 */
export type Issued = (record: SessionRecord, hash: string, userId: string, generation: number) => void

export class Lifecycle {
  readonly #core: Core
  readonly #records: RecordMaker
  readonly #pruner: IndexPruner
  readonly #registrar: Registrar | undefined
  readonly #issued: Issued | undefined

  constructor (core: Core, records: RecordMaker, pruner: IndexPruner, registrar?: Registrar, issued?: Issued) {
    this.#core = core
    this.#records = records
    this.#registrar = registrar
    this.#pruner = pruner
    this.#issued = issued
  }

  #run<T> (call: Promise<T>): Promise<T> {
    return this.#core.guard.run(call)
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
  async #move (state: SessionState, move: Move): Promise<SessionRecord> {
    const { config, store, keys, events, tally } = this.#core
    const old = state.record
    const oldHash = state.hash
    const { hash } = move
    const record = await this.#records.create(state, hash, move.tagged, move.make, move.continues)
    const now = config.clock()
    const index = move.index
    if (index !== undefined) {
      const indexKey = keys.index(index.userKey)
      const entry = { ref: record.ref, hash, expiresAt: record.absoluteExpiry, loginAt: record.authenticatedAt ?? now }
      const result = await this.#run(store.admit(indexKey, entry, {
        expect: index.expect,
        max: config.maxSessionsPerUser,
        now,
        ttlMs: config.absoluteTimeout,
        generation: index.generation,
      }))
      if (!result.admitted) {
        await discard(this.#core, [hash])
        this.#records.ended(state)
      }
      for (const e of result.evicted) events.emit('revoked', move.userId, e.ref)
      if (result.evicted.length > 0) {
        tally.revoked('limit')
        await discard(this.#core, result.evicted.map((e) => e.hash))
      }
      // Entries of sessions that idled out, pruned in the background (prune.ts).
      if (result.sample !== undefined && result.sample.length > 0) {
        this.#pruner.prune(indexKey, result.sample).catch(() => {})
      }
    }
    if (old === undefined || oldHash === undefined) return record
    const taken = await this.#run(store.take(keys.session(oldHash)))
    if (taken === undefined) {
      if (move.continues === undefined) return record
      if (index !== undefined) await this.#run(store.dismiss(keys.index(index.userKey), [{ ref: record.ref, hash }]))
      await discard(this.#core, [hash])
      this.#records.ended(state)
    }
    const delta = this.#delta(old, taken, oldHash, hash, move)
    if (delta === undefined) return record
    try {
      await this.#run(store.update(keys.session(hash), delta, 0))
    } catch (err) {
      // The old id is gone and the new one cannot take what was written to it meanwhile: the
      // session ends here, leaving nothing listed that no cookie can reach.
      if (index !== undefined) {
        await this.#run(store.dismiss(keys.index(index.userKey), [{ ref: record.ref, hash }])).catch(() => [])
      }
      await discard(this.#core, [hash])
      if (err instanceof SessionError && err.code === 'FST_SESSION_TOO_LARGE') this.#records.ended(state)
      throw err
    }
    return record
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

  #finish (state: SessionState, id: string, hash: string, record: SessionRecord, userId: string | undefined): void {
    state.rebind(id, hash, record, userId)
    state.cookie = 'set'
  }

  /** `generation`: the user index's revocation generation a password login read when it began. */
  async login (state: SessionState, userId: unknown, data: unknown, keep: unknown, generation?: string): Promise<void> {
    userIdArgument(userId, 'login: userId')
    if (data !== undefined && !isPlainObject(data)) invalid('login: data must be a plain object')
    if (keep !== undefined && (!Array.isArray(keep) || !keep.every((k) => typeof k === 'string'))) {
      invalid('login: keep must be an array of strings')
    }
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
    const continues = sameUser ? { record: old, hash: state.hash as string } : undefined
    const tagged = await this.#records.epochTag(state, hash, continues)
    const now = config.clock()
    const ref = sameUser ? old.ref : generateRef()
    const naming = keys.generation
    const userKey = keys.userKey(userId)
    const make = (epoch: string): SessionRecord => this.#records.seal(hash, {
      createdAt: old !== undefined && !otherUser ? old.createdAt : now,
      absoluteExpiry: now + config.absoluteTimeout,
      idleExpiry: now + config.idleTimeout,
      ref,
      epoch,
      user: codec.sealMeta('user', userId, hash),
      userKey,
      authenticatedAt: now,
      userAgent: config.sessionInfo.userAgent
        ? codec.sealMeta('userAgent', cleanUserAgent(state.client.headers['user-agent']), hash)
        : undefined,
      ip: config.sessionInfo.ip ? codec.sealMeta('ip', cleanIp(state.client.ip), hash) : undefined,
      fields: codec.encodeAll(plain, hash),
    })
    const oldUserId = state.userId
    const record = await this.#move(state, {
      make,
      tagged,
      hash,
      userId,
      index: { userKey, expect: sameUser ? state.hash : undefined, generation },
      continues,
      carries,
      ours,
    })
    if (otherUser && old.userKey !== undefined) {
      // The previous user's lineage ends with it, whatever id it holds by now.
      await this.#run(store.dismiss(keys.index(old.userKey), [{ ref: old.ref, hash: undefined }]))
      events.emit('logout', oldUserId, old.ref)
    }
    this.#finish(state, id, hash, record, userId)
    this.#issued?.(record, hash, userId, naming)
    this.#core.tally.login('ok')
    events.emit('login', userId, ref)
    await this.#askRegistration(state, hash)
  }

  /**
   * Device-bound sessions: a logged-in session just issued asks the browser to register a key
   * (a fresh single-use challenge). A store failure here costs the binding, not the login.
   */
  async #askRegistration (state: SessionState, hash: string): Promise<void> {
    if (this.#registrar === undefined || state.userId === undefined) return
    try {
      state.registration = await this.#registrar.registration(hash)
    } catch {
      this.#core.log.debug('device-bound session registration not offered: the challenge could not be stored')
    }
  }

  async regenerate (state: SessionState): Promise<void> {
    const old = state.record
    if (old === undefined || state.hash === undefined) {
      // Nothing stored yet: a new id is all it takes, and this request's data goes with it
      // (also past a device-bound session held for want of its bound cookie: a fresh start).
      state.id = generateId()
      state.hash = undefined
      state.held = undefined
      return
    }
    // A device binding moves with the session: a new registration would let whoever holds the
    // cookies (a copied jar, within the bound cookie's minutes) bind a key of their own. The
    // bound cookie of the old id is expired instead, so only the device's refresh revives it.
    const bound = old.bound === undefined
      ? undefined
      : this.#core.codec.openMeta('bound', old.bound, state.hash) ?? undefined
    const hash = await this.#renew(state, old, state.hash, bound)
    this.#core.events.emit('regenerated', state.userId, old.ref)
    if (bound !== undefined) state.expireBound = true
    else await this.#askRegistration(state, hash)
  }

  /**
   * Binds a device to the session (DBSC registration verified): the session moves to a new id
   * whose record carries the binding, sealed. Concurrent writes to the old id fail loudly, and a
   * touch prepared from the unbound record can never reseal the bound one.
   */
  async bind (state: SessionState, binding: string): Promise<void> {
    const old = state.record
    if (old === undefined || state.hash === undefined) throw sessionError('FST_SESSION_UNAUTHENTICATED')
    await this.#renew(state, old, state.hash, binding)
  }

  /** Moves a continuing session to a new id with `bound` as its binding; returns the new storage hash. */
  async #renew (state: SessionState, old: SessionRecord, oldHash: string, bound: string | undefined): Promise<string> {
    const { config, codec } = this.#core
    const id = generateId()
    const hash = storageHash(id)
    const continues = { record: old, hash: oldHash }
    const tagged = await this.#records.epochTag(state, hash, continues)
    const now = config.clock()
    const make = (epoch: string): SessionRecord => this.#records.seal(hash, {
      ...old,
      ...this.#records.meta(old, oldHash, hash),
      bound: codec.sealMeta('bound', bound, hash),
      epoch,
      idleExpiry: now + config.idleTimeout,
      fields: codec.encodeAll(state.plain(codec), hash),
    })
    const userId = state.userId
    const index = old.userKey === undefined ? undefined : { userKey: old.userKey, expect: oldHash }
    const record = await this.#move(state, {
      make, tagged, hash, userId, index, continues, carries: () => true, ours: new Set(state.dirty?.keys()),
    })
    this.#finish(state, id, hash, record, userId)
    return hash
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
}
