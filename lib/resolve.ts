/**
 * Cookie header → the request's session state, in four stops: cookie → verified id → store (or
 * its local cache) → a record that passes every check. Synchronous when every look-up is a
 * local cache hit, so the common authenticated read creates no promise and sends no command.
 *
 * A record is a session only if all of these hold (anything else is "no session", never an error):
 *   1. its seal verifies for this storage hash (a store writer cannot forge, move or extend it);
 *   2. now is before both its idle and absolute deadline;
 *   3. its epoch tag matches the current global epoch (`revokeAll`; on a cluster, the copy in
 *      the record's own slot, so a shard failing over stops only the sessions it holds);
 *   4. when logged in: its user's index maps its lineage to exactly this storage hash
 *      (`revokeUser`, `revokeSession`, `revokeOthers`, logout, a regenerate elsewhere);
 *   5. when a device is bound to it (DBSC): the request carries a live bound cookie for it
 *      (dbsc/bound-cookie.ts; checked without the store). Without one the session is held
 *      aside for the refresh endpoint, and the request has no session. With `deviceBound`
 *      switched off, a bound session is no session at all.
 */
import { cookieValues } from './cookie.ts'
import { BoundedCache } from './lru.ts'
import type { VerifiedCookie } from './crypto/signer.ts'
import type { Core } from './services.ts'
import { SessionState, type ClientInfo } from './state.ts'
import type { IndexEntry, SessionRecord } from './store/contract.ts'

/** At most this many cookies of our name are verified per request (one HMAC per secret each). */
const MAX_CANDIDATES = 3

/** What checking a record object once established (records are immutable). */
interface View {
  readonly hash: string
  /** `KeyNames.generation` when checked: a naming key adopted since makes the view stale. */
  readonly generation: number
  readonly ok: boolean
  /** Sealed under an older secret, or meta stored under an older encryption key. */
  readonly reseal: boolean
  readonly userId: string | undefined
  /** The key of the user's index (a logged-in record), named once per record, not per request. */
  readonly indexKey: string | undefined
  /** The epoch copy the record is checked against (its slot's, on a cluster). */
  readonly epochKey: string
  /** The last epoch value its tag was compared with, and the outcome (one HMAC per epoch, not per request). */
  epoch: string | undefined
  epochOk: boolean
}

/** The bound-cookie check of device-bound sessions (dbsc/service.ts). */
export interface BoundCheck {
  readonly cookieName: string
  /** Whether `cookie` is a live bound cookie of the session `hash` holding `record`. */
  verified (cookie: string | undefined, hash: string, record: SessionRecord): boolean
}

interface Found {
  readonly state: SessionState
  readonly raw: string
  readonly verified: VerifiedCookie
  readonly record: SessionRecord
  readonly view: View
  /** The record's index entry as read with it on a miss (`null`: none); undefined: not read. */
  readonly member: IndexEntry | null | undefined
}

export class Resolver {
  readonly #core: Core
  readonly #views = new WeakMap<SessionRecord, View>()
  /**
   * The store key of a verified cookie (the signer memoises verified cookies): named once per
   * cookie, not per request, so a cached read hashes no freshly built key string.
   */
  readonly #keys = new WeakMap<VerifiedCookie, string>()
  /**
   * Storage hashes found dead by a fresh read (revoked, moved, older epoch): final, since a
   * lineage never returns to a hash and the epoch never goes back. A replayed dead cookie then
   * costs no store access.
   */
  readonly #dead: BoundedCache<string, true>
  readonly #bound: BoundCheck | undefined
  /** User index keys' prefix, for a miss to read the index entry with the record (one Redis, not a cluster). */
  readonly #indexPrefix: string | undefined

  constructor (core: Core, bound?: BoundCheck) {
    this.#core = core
    this.#bound = bound
    this.#indexPrefix = core.keys.sharded ? undefined : core.keys.index('')
    this.#dead = new BoundedCache(Math.max(64, core.config.cacheSize >> 2))
  }

  /**
   * `cookies`: the request's cookies as `@fastify/cookie` parsed them (one value per name), or
   * `null` when they were not parsed (then the header is scanned here).
   */
  begin (
    header: string | undefined, cookies: Record<string, string | undefined> | null, client: ClientInfo
  ): SessionState | Promise<SessionState> {
    const state = new SessionState(client)
    if (header === undefined) return state
    const name = this.#core.config.cookie.name
    const first = cookies?.[name]
    if (cookies !== null && first === undefined) return state
    const bound = this.#bound
    if (bound !== undefined) {
      state.boundCookie = cookies !== null ? cookies[bound.cookieName] : cookieValues(header, bound.cookieName, 1)[0]
    }
    const begun = this.#first(state, first === undefined ? cookieValues(header, name, MAX_CANDIDATES) : [first])
    if (begun !== undefined) return begun
    // A parser keeps one value per name; a shadowed cookie of the same name may be the real one.
    if (first !== undefined) {
      const others = cookieValues(header, name, MAX_CANDIDATES).filter((v) => v !== first)
      const shadowed = this.#first(state, others)
      if (shadowed !== undefined) return shadowed
    }
    // Attacker-controlled input: no store lookup, a debug line, an event; never an error.
    this.#core.log.debug('session cookie rejected')
    this.#core.events.emit('invalid_cookie')
    return state
  }

  /** The first candidate that verifies, looked up; `undefined` when none verifies. */
  #first (state: SessionState, candidates: readonly string[]): SessionState | Promise<SessionState> | undefined {
    const core = this.#core
    for (const raw of candidates) {
      const verified = core.signer.verify(raw)
      if (verified === undefined) continue
      if (this.#dead.get(verified.hash) === true) return this.#none(state, raw)
      let key = this.#keys.get(verified)
      if (key === undefined) this.#keys.set(verified, key = core.keys.session(verified.hash))
      const record = core.store.peek(key)
      if (record === undefined) {
        // A miss: the record and its epoch copy in one round trip.
        const { epochs } = core
        const epochKey = core.keys.epochOf(key)
        const read = core.store.getWithEpoch(key, epochKey, epochs.known, this.#indexPrefix)
        return core.guard.run(read).then(async ({ record: r, epoch, member }) =>
          await this.#check(state, raw, verified, r ?? null, await epochs.accept(epochKey, epoch), member))
      }
      return this.#check(state, raw, verified, record, undefined, undefined)
    }
    return undefined
  }

  /** Seal and identity of a record, checked once per record object. */
  view (record: SessionRecord, hash: string): View {
    const { sealer, codec, keys } = this.#core
    const known = this.#views.get(record)
    if (known !== undefined && known.hash === hash && known.generation === keys.generation) return known
    const seal = sealer.check(hash, record)
    let ok = seal !== 'invalid' && (record.user === undefined) === (record.userKey === undefined) &&
      // Every encrypted field the seal names still exists (a deletion leaves a tombstone).
      record.sealed.every((name) => record.fields.has(name))
    let userId: string | undefined
    if (ok && record.user !== undefined) {
      const opened = codec.openMeta('user', record.user, hash)
      // A logged-in session lives in its user's index under the naming key's name, and nowhere else.
      if (opened === null || opened === undefined || record.userKey !== keys.userKey(opened)) ok = false
      else userId = opened
    }
    return this.#remember(record, hash, keys.generation, ok, seal === 'stale' || codec.metaStale(record), userId)
  }

  /** Keeps the view of a record object whose seal and identity were checked (or are known). */
  #remember (
    record: SessionRecord, hash: string, generation: number, ok: boolean, reseal: boolean, userId: string | undefined
  ): View {
    const { keys } = this.#core
    const view: View = {
      hash,
      generation,
      ok,
      reseal,
      userId,
      indexKey: record.userKey === undefined ? undefined : keys.index(record.userKey),
      epochKey: keys.epochOf(keys.session(hash)),
      epoch: undefined,
      epochOk: false,
    }
    this.#views.set(record, view)
    return view
  }

  /**
   * A record a login of this process just made (lifecycle.ts `Issued`): its view is known without
   * checking it (sealed here with the current secret, meta under the current key, user key named
   * for `userId`), so the request that brings its cookie back pays no seal HMAC, no decryption of
   * the user and no user-key HMAC. Only for that record object: a record read back from the store
   * is a new object, checked in full. Not if a naming key was adopted since its user key was named.
   */
  issued (record: SessionRecord, hash: string, userId: string, generation: number): void {
    if (generation !== this.#core.keys.generation || record.userKey === undefined) return
    this.#remember(record, hash, generation, true, false, userId)
  }

  #none (state: SessionState, raw: string): SessionState {
    this.#core.signer.forget(raw)
    return state
  }

  #check (
    state: SessionState,
    raw: string,
    verified: VerifiedCookie,
    record: SessionRecord | null,
    fetched: string | undefined,
    member: IndexEntry | null | undefined
  ): SessionState | Promise<SessionState> {
    if (record === null) return this.#none(state, raw)
    const core = this.#core
    const view = this.view(record, verified.hash)
    if (!view.ok) {
      core.log.warn('session record failed its integrity check (written by something other than this plugin)')
      core.events.emit('invalid_record', undefined, undefined, 'FST_SESSION_RECORD_INVALID')
      return this.#none(state, raw)
    }
    const now = core.config.clock()
    if (now >= record.idleExpiry || now >= record.absoluteExpiry) {
      core.events.emit('expired', view.userId, record.ref)
      return this.#none(state, raw)
    }
    const found: Found = { state, raw, verified, record, view, member }
    const epoch = fetched ?? core.epochs.current(view.epochKey)
    return typeof epoch === 'string'
      ? this.#epochChecked(found, epoch, fetched !== undefined)
      : epoch.then((e) => this.#epochChecked(found, e, true))
  }

  /** Whether the record's tag was made under `epoch` (memoised per record and epoch value). */
  #tagged ({ view, verified, record }: Found, epoch: string): boolean {
    if (view.epoch !== epoch) {
      view.epochOk = this.#core.epochs.matches(epoch, verified.hash, record.epoch)
      view.epoch = epoch
    }
    return view.epochOk
  }

  /**
   * A record that a cached epoch or index entry rejects is checked once more against a fresh
   * read: the local copy may predate a change made elsewhere a moment ago (a regenerate, a
   * re-login, a login after `revokeAll`), and a session just issued must work on every instance
   * at once. A local copy that accepts is trusted: invalidations of it are in flight at most.
   */
  #dismissed (found: Found): SessionState {
    this.#dead.set(found.verified.hash, true)
    return this.#none(found.state, found.raw)
  }

  #epochChecked (found: Found, epoch: string, fresh: boolean): SessionState | Promise<SessionState> {
    const { record } = found
    const { store, epochs } = this.#core
    if (!this.#tagged(found, epoch)) {
      if (fresh) return this.#dismissed(found)
      return epochs.fresh(found.view.epochKey).then((e) => this.#epochChecked(found, e, true))
    }
    const indexKey = found.view.indexKey
    if (indexKey === undefined) return this.#bind(found)
    // Read with the record (a miss on one Redis): as fresh as the record itself.
    if (found.member !== undefined) return this.#indexed(found, found.member, true)
    const entry = store.peekMember(indexKey, record.ref)
    if (entry === undefined) return this.#fetchMember(found, indexKey)
    return this.#indexed(found, entry, false)
  }

  #fetchMember (found: Found, indexKey: string): Promise<SessionState> {
    const { store, guard } = this.#core
    return guard.run(store.getMember(indexKey, found.record.ref)).then((e) => this.#indexed(found, e, true))
  }

  #indexed (found: Found, entry: IndexEntry | null, fresh: boolean): SessionState | Promise<SessionState> {
    if (entry !== null && entry.hash === found.verified.hash) return this.#bind(found)
    return fresh ? this.#dismissed(found) : this.#fetchMember(found, found.view.indexKey as string)
  }

  #bind ({ state, raw, verified, record, view }: Found): SessionState {
    if (record.bound !== undefined) {
      // A session bound to a device is never served as a bearer session: with deviceBound
      // switched off there is no bound cookie to check, so it is no session (a fresh login is).
      if (this.#bound === undefined) return this.#none(state, raw)
      if (!this.#bound.verified(state.boundCookie, verified.hash, record)) {
        state.held = { hash: verified.hash, record, userId: view.userId }
        return state
      }
    }
    state.raw = raw
    state.staleCookie = verified.stale
    state.reseal = view.reseal
    state.id = verified.id
    state.hash = verified.hash
    state.ref = record.ref
    state.record = record
    state.userId = view.userId
    return state
  }
}
