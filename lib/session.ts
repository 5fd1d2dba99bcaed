/**
 * `request.session`: one request's view of a session. It holds data and what changed, nothing
 * else; everything that touches the store is elsewhere: the moves (login, regenerate, logout,
 * destroy, revokeOthers) are the lifecycle service's (lifecycle.ts), reached through `SessionOps`
 * (wired in plugin.ts, with `loginWithPassword`), and the commit at `onSend` is write-back.ts's.
 *
 * Reads come from the record the request began with, decoded (and decrypted) lazily, once per
 * field per request; each request parses its own copy, so a handler mutating a value can never
 * corrupt a cached record. Writes are collected as dirty fields: only changed fields are
 * written, and nothing at all for a request that changed nothing.
 */
import { generateId, generateRef } from './crypto/ids.ts'
import { sessionError } from './errors.ts'
import { toJson } from './field-codec.ts'
import type { PasswordLoginArgs, PasswordLoginResult } from './defences/password-login.ts'
import type { FieldCodec } from './field-codec.ts'
import type { SessionState } from './state.ts'
import type { SessionKey, SessionValue } from './public-types.ts'

/**
 * The operations `request.session` delegates to (plugin.ts wires them to lifecycle.ts and
 * defences/password-login.ts).
 */
export interface SessionOps {
  readonly codec: FieldCodec
  readonly idleTimeout: number
  now (): number
  login (state: SessionState, userId: unknown, data: unknown, keep: unknown): Promise<void>
  regenerate (state: SessionState): Promise<void>
  end (state: SessionState, type: 'destroyed' | 'logout'): Promise<void>
  revokeOthers (state: SessionState): Promise<number>
  loginWithPassword (state: SessionState, args: PasswordLoginArgs): Promise<PasswordLoginResult>
}

export interface LoginOptions {
  /** When the session belonged to a different user: the data keys to carry over (all others are dropped). */
  keep?: string[]
}

/** The state behind a session, for the plugin's hooks (not part of the public API). */
export let stateOf: (session: Session) => SessionState

function checkKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '') {
    throw sessionError('FST_SESSION_INVALID_ARGUMENT', 'session data keys must be non-empty strings')
  }
}

export class Session {
  readonly #s: SessionState
  readonly #ops: SessionOps

  static {
    stateOf = (session) => session.#s
  }

  constructor (ops: SessionOps, state: SessionState) {
    this.#ops = ops
    this.#s = state
  }

  /** The session id (256 random bits). Never log it. */
  get id (): string {
    return (this.#s.id ??= generateId())
  }

  /** Short, non-reversible reference (the one events and `listUserSessions` use). */
  get ref (): string {
    return (this.#s.ref ??= generateRef())
  }

  /** `true` until the session exists in the store (a handler set data, or `login` ran). */
  get isNew (): boolean { return this.#s.record === undefined }
  /** The user bound by `login`; `undefined` for an anonymous session and after `logout`. */
  get userId (): string | undefined { return this.#s.userId }
  /** When the session was created (kept by `regenerate` and a same-user re-login). */
  get createdAt (): Date { return new Date(this.#s.record?.createdAt ?? this.#ops.now()) }

  /** When `login` last ran for this session (for step-up checks; see `requireFreshLogin`). */
  get authenticatedAt (): Date | undefined {
    const at = this.#s.record?.authenticatedAt
    return at === undefined ? undefined : new Date(at)
  }

  /** min(last activity + `idleTimeout`, start + `absoluteTimeout`). */
  get expiresAt (): Date {
    const r = this.#s.record
    if (r === undefined) return new Date(this.#ops.now() + this.#ops.idleTimeout)
    return new Date(Math.min(r.idleExpiry, r.absoluteExpiry))
  }

  /**
   * This request's own copy of a value (mutating it saves nothing: call `set`); `undefined` when
   * absent or unreadable.
   */
  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    const s = this.#s
    const values = s.values
    if (values !== undefined && values.has(key)) return values.get(key) as SessionValue<K>
    const record = s.record
    const text = record === undefined || s.hash === undefined ? undefined : this.#ops.codec.read(record, s.hash, key)
    let value: unknown
    if (text !== undefined) {
      try {
        value = JSON.parse(text)
      } catch {
        value = undefined // a corrupt stored value reads as absent
      }
    }
    (s.values ??= new Map()).set(key, value)
    return value as SessionValue<K>
  }

  /**
   * Sets a JSON-serialisable value, written at the end of the request (only changed fields are
   * written). Throws `FST_SESSION_NOT_SERIALIZABLE` for a value JSON cannot hold.
   */
  set<K extends SessionKey> (key: K, value: SessionValue<K>): void {
    checkKey(key)
    if (value === undefined) {
      this.delete(key)
      return
    }
    const s = this.#s
    const text = toJson(value)
    ;(s.values ??= new Map()).set(key, value)
    // Setting the value already stored is not a change: no write. (Compared only against what is
    // known without work: an encrypted field not yet read in this record version is not decrypted
    // just to compare, so a blind set of an encrypted field is always written.)
    const record = s.record
    if (s.dirty?.has(key) !== true && record !== undefined && this.#ops.codec.known(record, key) === text) return
    ;(s.dirty ??= new Map()).set(key, text)
  }

  /** Removes a value (written at the end of the request). */
  delete (key: SessionKey): void {
    checkKey(key)
    const s = this.#s
    if (!this.has(key) && s.dirty?.has(key) !== true) return
    ;(s.values ??= new Map()).set(key, undefined)
    if (s.record?.fields.has(key) === true) (s.dirty ??= new Map()).set(key, undefined)
    else s.dirty?.delete(key)
  }

  /** Whether the session holds a value for `key`. */
  has (key: SessionKey): boolean {
    const values = this.#s.values
    if (values !== undefined && values.has(key)) return values.get(key) !== undefined
    const { record, hash } = this.#s
    return record !== undefined && hash !== undefined && this.#ops.codec.has(record, hash, key)
  }

  /** New id, data kept, old id deleted. Rejects with FST_SESSION_ENDED if the session was revoked meanwhile. */
  regenerate (): Promise<void> {
    return this.#ops.regenerate(this.#s)
  }

  /**
   * New id bound to `userId`, `data` merged in, absolute timeout restarted. Data of an anonymous
   * session or of the same user is kept; a session of a different user starts empty except `keep`.
   */
  login (userId: string, data?: object, options?: LoginOptions): Promise<void> {
    return this.#ops.login(this.#s, userId, data, options?.keep)
  }

  /** Deletes the session from the store and expires the cookie. */
  destroy (): Promise<void> {
    return this.#ops.end(this.#s, 'destroyed')
  }

  /** `destroy` + removal from the user's sessions + `Clear-Site-Data`. */
  logout (): Promise<void> {
    return this.#ops.end(this.#s, 'logout')
  }

  /** Ends every other session of this session's user, on every instance; returns how many. */
  revokeOthers (): Promise<number> {
    return this.#ops.revokeOthers(this.#s)
  }

  /**
   * The whole password login: origin check, throttle, constant-cost argon2id verify, `login()`
   * on success. Rejects with 429 FST_SESSION_LOGIN_THROTTLED (and `Retry-After`) while throttled.
   */
  loginWithPassword (args: PasswordLoginArgs): Promise<PasswordLoginResult> {
    return this.#ops.loginWithPassword(this.#s, args)
  }
}
