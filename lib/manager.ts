/**
 * The session manager: turns a Cookie header into a `Session` (cookie → verified id → store →
 * session), guards every store call with `storeTimeout`, reports outages once, and serves the
 * instance-wide operations (`revokeUser`, `listUserSessions`, `stats`).
 *
 * Protects against: stale reads (a cached record past its deadline is rejected locally),
 * hanging requests (every store call has a deadline: one plain timer per call, no per-command
 * AbortSignal), log floods during an outage (one error line per outage, one line on recovery),
 * and leaking identifiers (events and logs carry only a short one-way reference).
 */
import type { FastifyBaseLogger } from 'fastify'
import { cookieValues, type CookieWriter } from './cookie.ts'
import { refOf, userHash } from './crypto/ids.ts'
import type { Signer, VerifiedCookie } from './crypto/signer.ts'
import type { FieldCipher } from './crypto/field-cipher.ts'
import { sessionError, SessionError } from './errors.ts'
import type { Config } from './options.ts'
import { Session } from './session.ts'
import type { SessionRecord, SessionStore, StoreStats } from './store/types.ts'
import type { SessionEventType, SessionInfo } from './types.ts'

export function isLive (record: SessionRecord, now: number): boolean {
  return now < record.idleExpiry && now < record.absoluteExpiry
}

/** TTL of a record's store key: until its first deadline, at least 1 ms. */
export function ttlOf (record: SessionRecord, now: number): number {
  return Math.max(1, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
}

export class Manager {
  readonly config: Config
  readonly store: SessionStore
  readonly signer: Signer
  readonly cipher: FieldCipher | undefined
  readonly cookies: CookieWriter
  readonly log: FastifyBaseLogger
  #down = false

  constructor (config: Config, store: SessionStore, signer: Signer, cipher: FieldCipher | undefined, cookies: CookieWriter, log: FastifyBaseLogger) {
    this.config = config
    this.store = store
    this.signer = signer
    this.cipher = cipher
    this.cookies = cookies
    this.log = log
  }

  sessionKey (hash: string): string {
    return this.config.keyPrefix + hash
  }

  indexKey (userId: string): string {
    return this.config.keyPrefix + 'u:' + userHash(userId)
  }

  emit (type: SessionEventType, userId?: string, sessionRef?: string, code?: string): void {
    const onEvent = this.config.onEvent
    if (onEvent === undefined) return
    try {
      onEvent({ type, at: new Date(), userId, sessionRef, code })
    } catch (err) {
      // An audit hook must not break the request; its error is the application's to see.
      this.log.error({ err }, 'session onEvent handler threw')
    }
  }

  /** The store went away: log and report once per outage. */
  storeDown (err: unknown): void {
    if (this.#down) return
    this.#down = true
    const name = err instanceof Error ? err.name : 'Error'
    const message = err instanceof SessionError ? 'timed out' : err instanceof Error ? err.message : 'unknown error'
    this.log.error({ store: { name, message } }, 'session store unavailable; requests that need a session get 503 until it recovers')
    this.emit('store_error', undefined, undefined, 'FST_SESSION_STORE_UNAVAILABLE')
  }

  storeUp (): void {
    if (!this.#down) return
    this.#down = false
    this.log.info('session store recovered')
  }

  /** Runs a store call with `storeTimeout`; any failure becomes FST_SESSION_STORE_UNAVAILABLE (503). */
  guard<T> (call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = sessionError('FST_SESSION_STORE_UNAVAILABLE')
        this.storeDown(err)
        reject(err)
      }, this.config.storeTimeout)
      call.then((value) => {
        clearTimeout(timer)
        this.storeUp()
        resolve(value)
      }, (err: unknown) => {
        clearTimeout(timer)
        this.storeDown(err)
        reject(sessionError('FST_SESSION_STORE_UNAVAILABLE'))
      })
    })
  }

  /** Cookie header → session; synchronous when the session is absent or a local cache hit. */
  begin (header: string | undefined): Session | Promise<Session> {
    if (header === undefined) return new Session(this)
    const values = cookieValues(header, this.config.cookie.name)
    if (values.length === 0) return new Session(this)
    for (const raw of values) {
      const verified = this.signer.verify(raw)
      if (verified === undefined) continue
      const key = this.sessionKey(verified.hash)
      const cached = this.store.peek(key)
      if (cached !== undefined) return this.#resume(raw, verified, cached)
      return this.guard(this.store.get(key)).then((record) => this.#resume(raw, verified, record ?? null))
    }
    // Attacker-controlled input: no store lookup, a debug line, an event; never an error.
    this.log.debug('session cookie rejected')
    this.emit('invalid_cookie')
    return new Session(this)
  }

  #resume (raw: string, verified: VerifiedCookie, record: SessionRecord | null): Session {
    if (record === null) {
      this.signer.forget(raw)
      return new Session(this)
    }
    if (!isLive(record, Date.now())) {
      this.signer.forget(raw)
      this.emit('expired', record.userId, verified.ref)
      return new Session(this)
    }
    return new Session(this, raw, verified, record)
  }

  /** Adds a session to its user's index, revoking the oldest beyond `maxSessionsPerUser`. */
  async indexSession (userId: string, hash: string, record: SessionRecord): Promise<void> {
    const indexKey = this.indexKey(userId)
    await this.guard(this.store.indexAdd(indexKey, hash, record.absoluteExpiry, this.config.absoluteTimeout))
    if (this.config.maxSessionsPerUser === Number.MAX_SAFE_INTEGER) return
    const others = (await this.guard(this.store.indexRead(indexKey))).filter((e) => e.member !== hash)
    if (others.length < this.config.maxSessionsPerUser) return
    // Count only live sessions: members whose session ended are pruned, not "revoked".
    const now = Date.now()
    const records = await Promise.all(others.map((e) => this.guard(this.store.get(this.sessionKey(e.member)))))
    const live = others.filter((_e, i) => { const r = records[i]; return r !== undefined && isLive(r, now) })
    const excess = live.slice(0, Math.max(0, live.length + 1 - this.config.maxSessionsPerUser))
    const dead = others.filter((e) => !live.includes(e))
    await Promise.all(excess.map((e) => this.guard(this.store.destroy(this.sessionKey(e.member)))))
    if (excess.length + dead.length > 0) await this.guard(this.store.indexRemove(indexKey, [...excess, ...dead].map((e) => e.member)))
    for (const e of excess) this.emit('revoked', userId, refOf(e.member))
  }

  async revokeUser (userId: string): Promise<number> {
    if (typeof userId !== 'string' || userId === '') throw new TypeError('revokeUser: userId must be a non-empty string')
    const indexKey = this.indexKey(userId)
    const entries = await this.guard(this.store.indexRead(indexKey))
    const existed = await Promise.all(entries.map((e) => this.guard(this.store.destroy(this.sessionKey(e.member)))))
    // Only the members read: a session indexed meanwhile by a concurrent login stays findable.
    await this.guard(this.store.indexRemove(indexKey, entries.map((e) => e.member)))
    let count = 0
    entries.forEach((e, i) => {
      if (existed[i] === true) {
        count++
        this.emit('revoked', userId, refOf(e.member))
      }
    })
    return count
  }

  async listUserSessions (userId: string): Promise<SessionInfo[]> {
    if (typeof userId !== 'string' || userId === '') throw new TypeError('listUserSessions: userId must be a non-empty string')
    const indexKey = this.indexKey(userId)
    const entries = await this.guard(this.store.indexRead(indexKey))
    const now = Date.now()
    const records = await Promise.all(entries.map((e) => this.guard(this.store.get(this.sessionKey(e.member)))))
    const dead: string[] = []
    const out: SessionInfo[] = []
    entries.forEach((e, i) => {
      const record = records[i]
      if (record === undefined || !isLive(record, now) || record.userId !== userId) {
        dead.push(e.member)
        return
      }
      out.push({
        ref: refOf(e.member),
        createdAt: new Date(record.createdAt),
        lastSeenAt: new Date(record.idleExpiry - this.config.idleTimeout),
        expiresAt: new Date(Math.min(record.idleExpiry, record.absoluteExpiry)),
        authenticatedAt: record.authenticatedAt === undefined ? undefined : new Date(record.authenticatedAt),
      })
    })
    if (dead.length > 0) await this.guard(this.store.indexRemove(indexKey, dead))
    return out
  }

  stats (): StoreStats {
    return this.store.stats()
  }
}
