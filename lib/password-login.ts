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
import type { Events } from './events.ts'
import { sessionError } from './errors.ts'
import type { FastifyBaseLogger } from 'fastify'
import type { Passwords } from './password/index.ts'
import type { SessionState } from './state.ts'
import type { LoginThrottle } from './throttle.ts'

export interface PasswordLoginArgs {
  /** What the user typed to identify themselves (e-mail, username): the throttle's key. */
  account: string
  /** The stored argon2id PHC string, or null/undefined when the account does not exist. */
  hash: string | null | undefined
  password: string
  /** The id to log in as (default: `account`). */
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
  login (state: SessionState, userId: string, data: object | undefined): Promise<void>
}

function invalid (detail: string): never {
  throw sessionError('FST_SESSION_INVALID_ARGUMENT', detail)
}

export async function loginWithPassword (deps: PasswordLoginDeps, state: SessionState, args: PasswordLoginArgs): Promise<PasswordLoginResult> {
  if (typeof args !== 'object' || args === null) invalid('loginWithPassword: expects { account, hash, password, userId?, data? }')
  const { account, hash, password, userId, data } = args
  if (typeof account !== 'string' || account === '' || account.length > 1024) invalid('loginWithPassword: account must be a non-empty string of at most 1024 characters')
  if (hash !== null && hash !== undefined && typeof hash !== 'string') invalid('loginWithPassword: hash must be a string, null or undefined')
  if (userId !== undefined && typeof userId !== 'string') invalid('loginWithPassword: userId must be a string')
  const client = state.client
  if (deps.originCheck !== undefined && deps.originCheck(client) !== 'same') {
    deps.events.emit('csrf', userId)
    throw sessionError('FST_SESSION_CSRF')
  }
  const reservation = await deps.throttle?.reserve(account, client.ip)
  if (reservation?.throttled === true) {
    deps.events.emit('login_throttled', userId)
    const err = sessionError('FST_SESSION_LOGIN_THROTTLED')
    // RFC 9110 §10.2.3: delay-seconds.
    err.headers = { 'retry-after': String(Math.max(1, Math.ceil(reservation.retryAfterMs / 1000))) }
    throw err
  }
  const result = await deps.passwords.verifyAndUpgrade(hash ?? null, password)
  if (!result.ok) {
    deps.events.emit('login_failed', userId)
    return { ok: false }
  }
  if (reservation !== undefined) await deps.throttle?.succeeded(reservation)
  await deps.login(state, userId ?? account, data)
  return result.newHash === undefined ? { ok: true } : { ok: true, newHash: result.newHash }
}
