/**
 * Device-bound sessions (DBSC, W3C WebAppSec draft `spec.bs`, as Chrome implements it): the
 * registration and refresh endpoints, and the bound-cookie check of every request.
 *
 *   login / regenerate ──▶ `Secure-Session-Registration: (ES256 RS256);path=…;challenge=…`
 *   registration POST  ──▶ proof (JWT with the public key) over that challenge, verified; the
 *                          session moves to a new id whose sealed record carries the key;
 *                          bound cookie set; session instructions returned
 *   refresh POST       ──▶ no proof: 403 + `Secure-Session-Challenge`; a proof over a fresh
 *                          challenge, signed by the bound key: a new bound cookie
 *
 * Protects against a copied cookie jar (an infostealer): once bound, a session is no session
 * without a live bound cookie, which expires within `cookieMaxAge` and which only the device's
 * private key can renew. Challenges are single-use (consumed atomically in the store) and
 * short-lived; a proof over another session's or another purpose's challenge is refused; the
 * key lives sealed in the record, so a store writer cannot swap it. What it does not protect
 * against: malware running on the device while the session lives (it can ask the browser to
 * sign), and anything within the bound cookie's remaining lifetime.
 */
import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Core } from '../services.ts'
import { sessionError, type SessionErrorCode } from '../errors.ts'
import type { Lifecycle } from '../lifecycle.ts'
import type { DeviceBoundConfig } from '../config.ts'
import type { BoundCheck } from '../resolve.ts'
import type { SessionState } from '../state.ts'
import type { SessionRecord } from '../store/contract.ts'
import { decodeBinding, encodeBinding, newBinding, type OpenBinding } from './binding.ts'
import { BoundCookies } from './bound-cookie.ts'
import { Challenges } from './challenge.ts'
import { decodeProof, keyOf, thumbprint, verifyProof, type ProofFailure } from './proof.ts'
import {
  challengeHeader, instructions, registrationHeader, type CookieShape, type SessionInstructions,
} from './protocol.ts'
import { parseIdHeader, parseProofHeader } from './sf.ts'

/** How long a challenge may be answered: long enough for a TPM signature and a round trip. */
export const CHALLENGE_TTL = 2 * 60 * 1000

function same (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export class DeviceBinding implements BoundCheck {
  readonly cookieName: string
  readonly config: DeviceBoundConfig
  readonly #core: Core
  readonly #cookies: BoundCookies
  readonly #challenges: Challenges
  readonly #cookie: CookieShape
  /** The opened binding of each record object (records are immutable); `null`: unreadable. */
  readonly #bindings = new WeakMap<SessionRecord, OpenBinding | null>()

  constructor (core: Core, config: DeviceBoundConfig) {
    this.#core = core
    this.config = config
    this.cookieName = config.cookieName
    this.#cookies = new BoundCookies(core.config.secrets, core.config.cacheSize)
    this.#challenges = new Challenges({
      store: core.store,
      guard: core.guard,
      prefix: core.keys.prefix,
      secrets: core.config.secrets,
      clock: core.config.clock,
      ttlMs: CHALLENGE_TTL,
    })
    const { path, domain, secure, sameSite } = core.config.cookie
    this.#cookie = { name: config.cookieName, path, domain, secure, sameSite }
  }

  /** The binding of a record already checked for `hash` (seal, deadlines, epoch, index). */
  bindingOf (record: SessionRecord, hash: string): OpenBinding | undefined {
    if (record.bound === undefined) return undefined
    let open = this.#bindings.get(record)
    if (open === undefined) {
      const text = this.#core.codec.openMeta('bound', record.bound, hash)
      open = typeof text === 'string' ? decodeBinding(text) ?? null : null
      this.#bindings.set(record, open)
    }
    return open ?? undefined
  }

  verified (cookie: string | undefined, hash: string, record: SessionRecord): boolean {
    const binding = this.bindingOf(record, hash)
    return binding !== undefined && this.#cookies.check(cookie, hash, binding, this.#core.config.clock())
  }

  registration (hash: string): Promise<string> {
    return this.#challenges.issue(hash, 'register')
      .then((challenge) => registrationHeader(this.config.registrationPath, challenge))
  }

  #setCookie (reply: FastifyReply, hash: string, binding: OpenBinding | Pick<OpenBinding, 'id' | 'thumb'>): void {
    const config = this.config
    const cookie = this.#core.config.cookie
    const expiresAt = this.#core.config.clock() + config.cookieMaxAge
    const seconds = Math.floor(config.cookieMaxAge / 1000)
    reply.setCookie(this.cookieName, this.#cookies.issue(hash, binding, expiresAt), {
      path: cookie.path,
      httpOnly: true,
      secure: cookie.secure,
      sameSite: cookie.sameSite,
      ...(cookie.domain === undefined ? {} : { domain: cookie.domain }),
      ...(cookie.partitioned ? { partitioned: true } : {}),
      maxAge: seconds,
    })
  }

  #instructions (binding: Pick<OpenBinding, 'id'>): SessionInstructions {
    return instructions(binding, this.config, this.#cookie)
  }

  #refuse (
    code: SessionErrorCode,
    reason: ProofFailure | 'challenge' | 'session',
    event: boolean,
    state: { userId: string | undefined, ref: string | undefined }
  ): never {
    // The reason is a fixed word; the proof, challenge and key never reach a log or event.
    this.#core.log.debug({ reason }, 'device-bound session proof refused')
    if (event) this.#core.events.emit('device_bound_refresh_failed', state.userId, state.ref, code)
    throw sessionError(code)
  }

  /** POST registrationPath: a logged-in, unbound session proves a key over its challenge. */
  async register (
    state: SessionState, request: FastifyRequest, reply: FastifyReply, lifecycle: Lifecycle
  ): Promise<SessionInstructions> {
    const record = state.record
    const hash = state.hash
    const who = { userId: state.userId, ref: record?.ref }
    if (record === undefined || hash === undefined || state.userId === undefined) {
      throw sessionError('FST_SESSION_UNAUTHENTICATED')
    }
    // A bound session takes a new key only through a new login (which drops the old binding).
    if (record.bound !== undefined) this.#refuse('FST_SESSION_DEVICE_PROOF', 'session', false, who)
    const jwt = parseProofHeader(request.headers['secure-session-response'])
    if (jwt === undefined) this.#refuse('FST_SESSION_DEVICE_PROOF', 'malformed', false, who)
    const decoded = decodeProof(jwt, true)
    if (!decoded.ok) this.#refuse('FST_SESSION_DEVICE_PROOF', decoded.reason, false, who)
    const { proof } = decoded
    const jwk = proof.jwk as NonNullable<typeof proof.jwk>
    const key = keyOf(jwk)
    if (key === undefined || !verifyProof(proof, key)) this.#refuse('FST_SESSION_DEVICE_PROOF', 'signature', false, who)
    // Consumed whatever follows: a registration proof is never accepted twice.
    if (!await this.#challenges.take(proof.jti, hash, 'register')) {
      this.#refuse('FST_SESSION_DEVICE_CHALLENGE', 'challenge', false, who)
    }
    const binding = newBinding(proof.alg, jwk)
    await lifecycle.bind(state, encodeBinding(binding))
    this.#setCookie(reply, state.hash as string, binding)
    this.#core.events.emit('device_bound', state.userId, record.ref)
    reply.header('cache-control', 'no-store')
    return this.#instructions(binding)
  }

  /** POST refreshPath: the bound key signs a fresh challenge; a new bound cookie. */
  async refresh (state: SessionState, request: FastifyRequest, reply: FastifyReply): Promise<SessionInstructions> {
    const held = state.held ?? (state.record !== undefined && state.hash !== undefined
      ? { hash: state.hash, record: state.record, userId: state.userId }
      : undefined)
    reply.header('cache-control', 'no-store')
    // No session (ended, revoked, never bound): a 4xx other than 403 ends the browser's DBSC session.
    if (held === undefined) throw sessionError('FST_SESSION_UNAUTHENTICATED')
    const who = { userId: held.userId, ref: held.record.ref }
    const binding = this.bindingOf(held.record, held.hash)
    if (binding === undefined) throw sessionError('FST_SESSION_UNAUTHENTICATED')
    const id = parseIdHeader(request.headers['sec-secure-session-id'])
    // Another (older) DBSC session of this browser, or a request not made by its DBSC machinery.
    if (id === undefined || !same(id, binding.id)) this.#refuse('FST_SESSION_UNAUTHENTICATED', 'session', true, who)
    const header = request.headers['secure-session-response']
    if (header === undefined) return await this.#challenge(held.hash, binding, reply)
    const jwt = parseProofHeader(header)
    if (jwt === undefined) this.#refuse('FST_SESSION_DEVICE_PROOF', 'malformed', true, who)
    const decoded = decodeProof(jwt, false)
    if (!decoded.ok) this.#refuse('FST_SESSION_DEVICE_PROOF', decoded.reason, true, who)
    const { proof } = decoded
    // The session's algorithm and key only; a key in the header must be that key.
    if (proof.alg !== binding.alg || (proof.jwk !== undefined && !same(thumbprint(proof.jwk), binding.thumb))) {
      this.#refuse('FST_SESSION_DEVICE_PROOF', 'jwk', true, who)
    }
    if (!verifyProof(proof, binding.key)) this.#refuse('FST_SESSION_DEVICE_PROOF', 'signature', true, who)
    if (!await this.#challenges.take(proof.jti, held.hash, 'refresh')) {
      this.#core.events.emit('device_bound_refresh_failed', who.userId, who.ref, 'FST_SESSION_DEVICE_CHALLENGE')
      return await this.#challenge(held.hash, binding, reply, true)
    }
    this.#setCookie(reply, held.hash, binding)
    return this.#instructions(binding)
  }

  /** 403 with a challenge for the browser to sign (the outstanding one while it is fresh). */
  async #challenge (hash: string, binding: OpenBinding, reply: FastifyReply, renew = false): Promise<never> {
    const value = challengeHeader(await this.#challenges.issue(hash, 'refresh', renew), binding.id)
    reply.header('secure-session-challenge', value)
    const err = sessionError('FST_SESSION_DEVICE_CHALLENGE')
    err.headers = { 'secure-session-challenge': value }
    throw err
  }
}
