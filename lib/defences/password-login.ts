/**
 * `request.session.loginWithPassword()`: the whole password login in one call, in the order
 * that keeps each defence effective:
 *   1. origin check (login CSRF: a cross-site form must not log the victim into the attacker's
 *      account), whether or not a session cookie is present;
 *   2. throttle reservation (no argon2 work at all while throttled: 429 + Retry-After);
 *   3. constant-cost verification (a dummy verify when `hash` is null, so unknown accounts take
 *      as long as wrong passwords: no user enumeration by timing);
 *   4. on success: the throttle is released and `login()` runs; `newHash` when the stored hash
 *      is below the current cost.
 * Failures and throttled attempts are audit events carrying the app's `userId` when it gave one,
 * never the account name (users type passwords into the username field) nor the IP.
 */
import type { OriginFacts, OriginVerdict } from './csrf.ts'
import type { Events } from '../events.ts'
import { GENERATION_TTL } from '../services.ts'
import { SessionError, sessionError } from '../errors.ts'
import type { FastifyBaseLogger } from 'fastify'
import type { Passwords } from '../password/index.ts'
import type { SessionState } from '../state.ts'
import type { Tally } from '../telemetry.ts'
import type { LoginThrottle } from './throttle.ts'
import { userIdArgument } from '../option-checks.ts'

export interface PasswordLoginArgs {
  /**
   * The name the account was looked up by (e-mail, username) — best the key the lookup
   * queried, the same whether or not an account was found. The per-account throttle counts
   * it folded (case, width, whitespace, invisible characters, trailing dots).
   */
  account: string
  /** The stored argon2id PHC string, or null/undefined when the account does not exist. */
  hash: string | null | undefined
  password: string
  /** The id of the account found, to log in as (default: `account`); its failures are also counted per id. */
  userId?: string | undefined
  /** Data merged into the session at login. */
  data?: object | undefined
}

export interface PasswordLoginResult {
  ok: boolean
  /** Set when the stored hash should be replaced by this one (stronger cost). */
  newHash?: string
}

export interface PasswordLoginDeps {
  readonly passwords: Passwords
  readonly throttle: LoginThrottle | undefined
  readonly originCheck: ((request: OriginFacts) => OriginVerdict) | undefined
  readonly events: Events
  readonly log: FastifyBaseLogger
  /** Outcomes counted for metrics (a success is counted by `login`). */
  readonly tally: Tally
  /** The user index's revocation generation now ('' when none). */
  generation (userId: string): Promise<string>
  /** `generation`: as read when the attempt began; the login is refused if a revocation replaced it. */
  login (state: SessionState, userId: string, data: object | undefined, generation: string): Promise<void>
}

function invalid (detail: string): never {
  throw sessionError('FST_SESSION_INVALID_ARGUMENT', detail)
}

function failed (deps: PasswordLoginDeps, userId: string | undefined): void {
  deps.tally.login('failed')
  deps.events.emit('login_failed', userId)
}

export async function loginWithPassword (
  deps: PasswordLoginDeps, state: SessionState, args: PasswordLoginArgs
): Promise<PasswordLoginResult> {
  if (typeof args !== 'object' || args === null) {
    invalid('loginWithPassword: expects { account, hash, password, userId?, data? }')
  }
  const { account, hash, password, userId, data } = args
  userIdArgument(account, 'loginWithPassword: account')
  if (hash !== null && hash !== undefined && typeof hash !== 'string') {
    invalid('loginWithPassword: hash must be a string, null or undefined')
  }
  if (userId !== undefined && typeof userId !== 'string') invalid('loginWithPassword: userId must be a string')
  const client = state.client
  if (deps.originCheck !== undefined && deps.originCheck(client) !== 'same') {
    deps.events.emit('csrf', userId)
    throw sessionError('FST_SESSION_CSRF')
  }
  // A credential change ends logins already running: `revokeUser` (or `revokeOthers`) replaces
  // the generation read here, and the login is then not admitted (lifecycle.ts, ADMIT).
  const started = performance.now()
  const subject = userId ?? account
  const generation = deps.generation(subject)
  generation.catch(() => {}) // awaited after the throttle (the two in parallel)
  // A verify can only succeed for a stored hash: that attempt is also counted against the user
  // it would log in as, and only that user's success ends its failures.
  const user = typeof hash === 'string' ? subject : undefined
  const reservation = await deps.throttle?.reserve(account, user, client.ip)
  if (reservation?.throttled === true) {
    deps.tally.login('throttled')
    deps.events.emit('login_throttled', userId)
    const err = sessionError('FST_SESSION_LOGIN_THROTTLED')
    // RFC 9110 §10.2.3: delay-seconds.
    err.headers = { 'retry-after': String(Math.max(1, Math.ceil(reservation.retryAfterMs / 1000))) }
    throw err
  }
  const result = await deps.passwords.verifyAndUpgrade(hash ?? null, password)
  if (!result.ok) {
    failed(deps, userId)
    return { ok: false }
  }
  const read = await generation
  // A generation lives GENERATION_TTL after its last change: an attempt running longer could
  // not tell a revocation from an expiry, so it is refused (no such login is plausible).
  if (performance.now() - started > GENERATION_TTL / 2) {
    failed(deps, userId)
    return { ok: false }
  }
  if (reservation !== undefined) await deps.throttle?.succeeded(reservation)
  try {
    await deps.login(state, subject, data, read)
  } catch (err) {
    // Not admitted: the user's sessions were revoked while this attempt ran (a password change).
    if (err instanceof SessionError && err.code === 'FST_SESSION_ENDED') {
      failed(deps, userId)
      return { ok: false }
    }
    throw err
  }
  return result.newHash === undefined ? { ok: true } : { ok: true, newHash: result.newHash }
}
