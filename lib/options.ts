/**
 * Register-time validation: options are checked once, normalised and frozen; the per-request
 * path never checks an option again. Every failure is a SessionError with an FST_SESSION_* code
 * and a detail naming the option — never its value (it may be a secret).
 */
import { sessionError, type SessionErrorCode } from './errors.ts'
import type { CookieOptions, HardenedSessionOptions, SessionEvent } from './types.ts'

const MINUTE = 60_000
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // RFC 6265 §4.1.1 cookie-name = token (RFC 9110 §5.6.2)
const COOKIE_ATTR = /^[\x21-\x3a\x3c-\x7e]+$/ // no controls, spaces or ';' (RFC 6265 §4.1.1)

export interface CookieConfig {
  readonly name: string
  readonly sameSite: 'lax' | 'strict' | 'none'
  readonly secure: boolean
  readonly domain: string | undefined
  readonly path: string
  readonly partitioned: boolean
}

export interface Config {
  readonly secrets: readonly Buffer[]
  readonly keyPrefix: string
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly touchInterval: number
  readonly cookie: CookieConfig
  readonly maxSessionBytes: number
  readonly storeTimeout: number
  readonly maxSessionsPerUser: number
  readonly cacheSize: number
  readonly clearSiteData: string
  readonly onEvent: ((event: SessionEvent) => void) | undefined
}

function fail (code: SessionErrorCode, option: string): never {
  throw sessionError(code, option)
}

function duration (value: unknown, fallback: number, option: string, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail('FST_SESSION_INVALID_OPTION', `${option} must be an integer number of ms ≥ ${min}`)
  }
  return value
}

function positiveInt (value: unknown, fallback: number, option: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    fail('FST_SESSION_INVALID_OPTION', `${option} must be a positive integer`)
  }
  return value
}

function secretsOf (secrets: unknown): Buffer[] {
  if (!Array.isArray(secrets) || secrets.length === 0) fail('FST_SESSION_SECRET_INVALID', 'secrets must be a non-empty array')
  return secrets.map((secret: unknown, i) => {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.isBuffer(secret) ? Buffer.from(secret) : undefined
    // NIST SP 800-107 / RFC 2104 §3: an HMAC key should be at least as long as the hash output.
    if (bytes === undefined || bytes.length < 32) fail('FST_SESSION_SECRET_INVALID', `secrets[${i}]`)
    return bytes
  })
}

function cookieOf (cookie: CookieOptions | undefined): CookieConfig {
  if (cookie !== undefined && (typeof cookie !== 'object' || cookie === null)) fail('FST_SESSION_COOKIE_OPTION', 'cookie must be an object')
  const name = cookie?.name ?? '__Host-sid'
  const sameSite = cookie?.sameSite ?? 'lax'
  const secure = cookie?.secure ?? true
  const domain = cookie?.domain
  const path = cookie?.path ?? '/'
  const partitioned = cookie?.partitioned ?? false
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) fail('FST_SESSION_COOKIE_OPTION', 'cookie.name must be an RFC 6265 token')
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') fail('FST_SESSION_COOKIE_OPTION', "cookie.sameSite must be 'lax', 'strict' or 'none'")
  if (typeof secure !== 'boolean') fail('FST_SESSION_COOKIE_OPTION', 'cookie.secure must be a boolean')
  if (typeof partitioned !== 'boolean') fail('FST_SESSION_COOKIE_OPTION', 'cookie.partitioned must be a boolean')
  if (domain !== undefined && (typeof domain !== 'string' || !COOKIE_ATTR.test(domain))) fail('FST_SESSION_COOKIE_OPTION', 'cookie.domain')
  if (typeof path !== 'string' || !path.startsWith('/') || !COOKIE_ATTR.test(path)) fail('FST_SESSION_COOKIE_OPTION', 'cookie.path must start with /')
  // RFC 6265bis §4.1.3: __Host- cookies must be Secure, Path=/ and carry no Domain.
  if (name.startsWith('__Host-') && (domain !== undefined || path !== '/' || !secure)) {
    fail('FST_SESSION_COOKIE_OPTION', 'a __Host- cookie needs secure: true, path "/" and no domain')
  }
  if (name.startsWith('__Secure-') && !secure) fail('FST_SESSION_COOKIE_OPTION', 'a __Secure- cookie needs secure: true')
  // Browsers reject SameSite=None and Partitioned without Secure.
  if ((sameSite === 'none' || partitioned) && !secure) fail('FST_SESSION_COOKIE_OPTION', "sameSite 'none' and partitioned need secure: true")
  return Object.freeze({ name, sameSite, secure, domain, path, partitioned })
}

export function normaliseOptions (options: HardenedSessionOptions): Config {
  if (typeof options !== 'object' || options === null) fail('FST_SESSION_INVALID_OPTION', 'options must be an object')
  const hasRedis = options.redis !== undefined
  const hasStore = options.store !== undefined
  if (hasRedis === hasStore) fail('FST_SESSION_STORE_OPTION', hasRedis ? 'both given' : 'neither given')
  const secrets = secretsOf(options.secrets)
  const keyPrefix = options.keyPrefix ?? 'sess:'
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 64) fail('FST_SESSION_INVALID_OPTION', 'keyPrefix must be a string of at most 64 characters')
  const idleTimeout = duration(options.idleTimeout, 30 * MINUTE, 'idleTimeout', 1000)
  const absoluteTimeout = duration(options.absoluteTimeout, 12 * 60 * MINUTE, 'absoluteTimeout', 1000)
  if (absoluteTimeout < idleTimeout) fail('FST_SESSION_INVALID_OPTION', 'absoluteTimeout must be ≥ idleTimeout')
  const touchDefault = Math.min(MINUTE, Math.floor(idleTimeout / 2))
  const touchInterval = duration(options.touchInterval, touchDefault, 'touchInterval', 0)
  if (touchInterval > idleTimeout / 2) fail('FST_SESSION_INVALID_OPTION', 'touchInterval must be ≤ idleTimeout / 2')
  const onEvent = options.onEvent
  if (onEvent !== undefined && typeof onEvent !== 'function') fail('FST_SESSION_INVALID_OPTION', 'onEvent must be a function')
  const clearSiteData = options.clearSiteData ?? '"cookies"'
  if (typeof clearSiteData !== 'string' || !/^"[a-z*]+"(, *"[a-z*]+")*$/.test(clearSiteData)) {
    fail('FST_SESSION_INVALID_OPTION', 'clearSiteData must be a list of quoted directives, e.g. \'"cookies", "storage"\'')
  }
  return Object.freeze({
    secrets: Object.freeze(secrets),
    keyPrefix,
    idleTimeout,
    absoluteTimeout,
    touchInterval,
    cookie: cookieOf(options.cookie),
    maxSessionBytes: positiveInt(options.maxSessionBytes, 64 * 1024, 'maxSessionBytes'),
    storeTimeout: duration(options.storeTimeout, 1000, 'storeTimeout', 1),
    maxSessionsPerUser: positiveInt(options.maxSessionsPerUser, Number.MAX_SAFE_INTEGER, 'maxSessionsPerUser'),
    cacheSize: positiveInt(options.cacheSize, 10_000, 'cacheSize'),
    clearSiteData,
    onEvent,
  })
}
