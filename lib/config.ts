/**
 * Register-time validation: every option is checked here, once, with one vocabulary
 * (option-checks.ts), then normalised into one frozen `Config` — the nested groups included: the
 * store or `redis` option (store/option-check.ts), the encryption keys (crypto/field-cipher.ts)
 * and the password costs (password/password-options.ts) — so that `plugin.ts` and the CLI read
 * nothing but the `Config`; the per-request path never checks an option again.
 * Unknown keys are refused by name (a misspelt `idletimeout` silently keeping the default would
 * be a security bug), with a hint for names other session libraries use. Every failure is a
 * SessionError with an FST_SESSION_* code and a detail naming the option — never its value (it
 * may be a secret).
 */
import type { SessionErrorCode } from './errors.ts'
import { boolean, fail, integer, isPlainObject, ms, objectOption, onlyKnown } from './option-checks.ts'
import { createFieldCipher, type FieldCipher } from './crypto/field-cipher.ts'
import { resolvePasswordOptions, type ValidatedPasswordOptions } from './password/password-options.ts'
import type { CookieOptions, HardenedSessionOptions, SessionEvent } from './public-types.ts'
import type { SessionStore } from './store/contract.ts'
import { checkRedisOption, checkStoreOption } from './store/option-check.ts'

const SECOND = 1000
const MINUTE = 60 * SECOND
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // RFC 6265 §4.1.1 cookie-name = token (RFC 9110 §5.6.2)
const COOKIE_ATTR = /^[\x21-\x3a\x3c-\x7e]+$/ // no controls, spaces or ';' (RFC 6265 §4.1.1)
// Clear-Site-Data directives (W3C Clear Site Data §3.1), quoted.
const CLEAR_SITE_DIRECTIVE = /^"(cache|cookies|storage|executionContexts|clientHints|prefetchCache|prerenderCache|\*)"$/

export interface CookieConfig {
  readonly name: string
  readonly sameSite: 'lax' | 'strict' | 'none'
  readonly secure: boolean
  readonly domain: string | undefined
  readonly path: string
  readonly partitioned: boolean
}

export interface ThrottleLimit {
  readonly max: number
  readonly windowMs: number
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
  readonly connectTimeout: number
  readonly maxSessionsPerUser: number
  readonly cacheSize: number
  readonly cacheBytes: number
  /** Directives sent on logout; `clearSiteDataWithCookie`: those safe beside a new session cookie. */
  readonly clearSiteData: string | undefined
  readonly clearSiteDataWithCookie: string | undefined
  readonly sessionInfo: { readonly userAgent: boolean, readonly ip: boolean }
  /** Failed-login limits; `undefined` when `loginThrottle: false`. */
  readonly loginThrottle: { readonly perAccount: ThrottleLimit, readonly perIp: ThrottleLimit } | undefined
  /** Origin check of unsafe requests; `undefined` when `csrf: false`. Origins are lower-case `scheme://host[:port]`. */
  readonly csrf: { readonly trustedOrigins: ReadonlySet<string> } | undefined
  readonly onEvent: ((event: SessionEvent) => void) | undefined
  /** The request decorator's name: `request[decorator]` is the session. */
  readonly decorator: string
  readonly clock: () => number
  /** `replica`: revocations resolve once a replica of each master written to acknowledged them. */
  readonly durability: 'replica' | 'primary'
  /** The application's own store, checked against the store contract; or `undefined` with `redis`. */
  readonly store: SessionStore | undefined
  /** The `redis` option, its keys checked; `undefined` with `store`. */
  readonly redis: HardenedSessionOptions['redis']
  /** The field cipher of `encryption` (keys validated and imported); `undefined` without it. */
  readonly cipher: FieldCipher | undefined
  /** The `password` options, validated. */
  readonly password: ValidatedPasswordOptions
  /** Device-bound sessions (DBSC); `undefined` when off. */
  readonly deviceBound: DeviceBoundConfig | undefined
}

export interface DeviceBoundConfig {
  readonly registrationPath: string
  readonly refreshPath: string
  readonly cookieMaxAge: number
  /** The bound cookie's name: the session cookie's, with `-bound`. */
  readonly cookieName: string
}

/** Option names of other session libraries, and where their meaning lives here. */
const HINTS: Record<string, string> = {
  secret: "use 'secrets' (an array, newest first)",
  cookieName: "use 'cookie.name'",
  saveUninitialized: 'sessions are saved only when a handler sets data',
  rolling: "the expiry slides by itself; see 'touchInterval'",
  resave: 'only changed fields are written',
  ttl: "use 'idleTimeout' and 'absoluteTimeout', in milliseconds: connect-redis's ttl is seconds, " +
    'so ttl 86400 is idleTimeout 86_400_000',
  maxAge: "the cookie follows the session: use 'idleTimeout' and 'absoluteTimeout'",
  expires: "the cookie follows the session: use 'idleTimeout' and 'absoluteTimeout'",
  httpOnly: 'HttpOnly is always on',
  signed: 'the session cookie is always signed',
  encode: 'the cookie value is always the signed id',
  prefix: "use 'keyPrefix'",
}

/** An optional group of options (`undefined` → `{}`), unknown keys refused with the hints above. */
function group (
  value: unknown, path: string, known: readonly string[], code: SessionErrorCode = 'FST_SESSION_INVALID_OPTION'
): Record<string, unknown> {
  return objectOption(value, path, known, code, HINTS)
}

/** `90 s`, `30 min`, `12 h`: a duration in words, for hints. */
function inWords (milliseconds: number): string {
  if (milliseconds % (60 * MINUTE) === 0) return `${milliseconds / (60 * MINUTE)} h`
  if (milliseconds % MINUTE === 0) return `${milliseconds / MINUTE} min`
  return `${milliseconds / SECOND} s`
}

/**
 * Durations that no deployment means: a session or a throttle window of less than a minute. The
 * usual cause is a value written in seconds (`idleTimeout: 1800` is 1.8 s, not 30 min), which
 * would otherwise register silently and sign everyone out within seconds. Tests that need short
 * durations say so with `allowShortDurations: true`.
 */
const DURATION_FLOOR = MINUTE

/** A duration option with the one-minute floor (`allowShort`: tests may go down to `min`). */
function duration (value: unknown, path: string, fallback: number, min: number, allowShort: boolean): number {
  if (!allowShort && typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value < DURATION_FLOOR) {
    fail('FST_SESSION_INVALID_OPTION', `${path} is ${value} ms, under one minute: durations are in milliseconds ` +
      `(${value} s would be ${value * SECOND}, ${inWords(value * SECOND)}); for tests, set allowShortDurations: true`)
  }
  return ms(value, path, fallback, min)
}

const GEN_SECRET = '(generate one with `npx fastify-hardened-session gen-secret`)'

function secretsOf (secrets: unknown): Buffer[] {
  if (!Array.isArray(secrets) || secrets.length === 0) {
    fail('FST_SESSION_SECRET_INVALID', `secrets must be a non-empty array ${GEN_SECRET}`)
  }
  return secrets.map((secret: unknown, i) => {
    // The usual cause: `secrets: [process.env.SESSION_SECRET]` with the variable unset.
    if (secret === undefined || secret === null || secret === '') {
      fail('FST_SESSION_SECRET_INVALID', `secrets[${i}] is missing: set SESSION_SECRET ${GEN_SECRET}`)
    }
    const bytes = typeof secret === 'string'
      ? Buffer.from(secret, 'utf8')
      : Buffer.isBuffer(secret) ? Buffer.from(secret) : undefined
    // NIST SP 800-107 / RFC 2104 §3: an HMAC key should be at least as long as the hash output.
    if (bytes === undefined || bytes.length < 32) {
      fail('FST_SESSION_SECRET_INVALID', `secrets[${i}] must be a string or Buffer of at least 32 bytes ${GEN_SECRET}`)
    }
    return bytes
  })
}

function cookieOf (value: CookieOptions | undefined): CookieConfig {
  const code = 'FST_SESSION_COOKIE_OPTION'
  const cookie = group(value, 'cookie', ['name', 'sameSite', 'secure', 'domain', 'path', 'partitioned'], code)
  const name = cookie['name'] ?? '__Host-sid'
  const sameSite = typeof cookie['sameSite'] === 'string'
    ? cookie['sameSite'].toLowerCase()
    : cookie['sameSite'] ?? 'lax'
  const secure = boolean(cookie['secure'], 'cookie.secure', true, code)
  const partitioned = boolean(cookie['partitioned'], 'cookie.partitioned', false, code)
  const domain = cookie['domain']
  const path = cookie['path'] ?? '/'
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) fail(code, 'cookie.name must be an RFC 6265 token')
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') {
    fail(code, "cookie.sameSite must be 'lax', 'strict' or 'none' (any case)")
  }
  if (domain !== undefined && (typeof domain !== 'string' || !COOKIE_ATTR.test(domain))) fail(code, 'cookie.domain')
  if (typeof path !== 'string' || !path.startsWith('/') || !COOKIE_ATTR.test(path)) {
    fail(code, 'cookie.path must start with /')
  }
  // RFC 6265bis §4.1.3: __Host- cookies must be Secure, Path=/ and carry no Domain.
  if ((name.startsWith('__Host-') || name.startsWith('__Secure-')) && !secure) {
    fail(code, `a ${name.startsWith('__Host-') ? '__Host-' : '__Secure-'} cookie is always Secure: ` +
      "to use secure: false (plain-HTTP development), rename the cookie, e.g. cookie: { name: 'sid', secure: false }")
  }
  if (name.startsWith('__Host-') && (domain !== undefined || path !== '/' || !secure)) {
    fail(code, 'a __Host- cookie needs secure: true, path "/" and no domain')
  }
  if (name.startsWith('__Secure-') && !secure) fail(code, 'a __Secure- cookie needs secure: true')
  // Browsers reject SameSite=None and Partitioned without Secure.
  if ((sameSite === 'none' || partitioned) && !secure) fail(code, "sameSite 'none' and partitioned need secure: true")
  return Object.freeze({ name, sameSite, secure, domain: domain as string | undefined, path, partitioned })
}

/** The `clearSiteData` directives, and the subset that does not wipe a session cookie set beside it. */
function clearSiteDataOf (value: unknown): [string | undefined, string | undefined] {
  if (value === false) return [undefined, undefined]
  const text = value ?? '"cache"'
  const directives = typeof text === 'string' ? text.split(',').map((d) => d.trim()) : []
  if (directives.length === 0 || !directives.every((d) => CLEAR_SITE_DIRECTIVE.test(d))) {
    fail('FST_SESSION_INVALID_OPTION', 'clearSiteData must be false or quoted directives, e.g. \'"cache", "storage"\'')
  }
  const safe = directives.filter((d) => d !== '"cookies"' && d !== '"*"')
  return [directives.join(', '), safe.length === 0 ? undefined : safe.join(', ')]
}

function limitOf (value: unknown, path: string, fallback: ThrottleLimit, allowShort: boolean): ThrottleLimit {
  const limit = group(value, path, ['max', 'windowMs'])
  return Object.freeze({
    max: integer(limit['max'], `${path}.max`, fallback.max, 1),
    windowMs: duration(limit['windowMs'], `${path}.windowMs`, fallback.windowMs, SECOND, allowShort),
  })
}

function throttleOf (value: unknown, allowShort: boolean): Config['loginThrottle'] {
  if (value === false) return undefined
  const throttle = group(value, 'loginThrottle', ['perAccount', 'perIp'])
  // NIST SP 800-63B-4 §3.2.2: verifiers SHALL limit consecutive failed attempts.
  return Object.freeze({
    perAccount: limitOf(throttle['perAccount'], 'loginThrottle.perAccount', { max: 10, windowMs: 15 * MINUTE },
      allowShort),
    perIp: limitOf(throttle['perIp'], 'loginThrottle.perIp', { max: 50, windowMs: 15 * MINUTE }, allowShort),
  })
}

/** A web origin as browsers send it: `scheme://host[:port]`, lower-case, no path. */
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9a-f:.]+\](:\d{1,5})?$/

function csrfOf (value: unknown): Config['csrf'] {
  if (value === false) return undefined
  const csrf = group(value, 'csrf', ['trustedOrigins'])
  const list = csrf['trustedOrigins'] ?? []
  if (!Array.isArray(list)) fail('FST_SESSION_INVALID_OPTION', 'csrf.trustedOrigins must be an array of origins')
  const origins = list.map((origin: unknown, i) => {
    const text = typeof origin === 'string' ? origin.toLowerCase() : ''
    if (!ORIGIN.test(text)) {
      fail('FST_SESSION_INVALID_OPTION', `csrf.trustedOrigins[${i}] must be an origin like ` +
        "'https://app.example.com' (scheme, host, optional port; no path)")
    }
    return text
  })
  return Object.freeze({ trustedOrigins: new Set(origins) })
}

export const TOP_LEVEL = [
  'secrets', 'redis', 'store', 'keyPrefix', 'idleTimeout', 'absoluteTimeout', 'touchInterval', 'cookie', 'encryption',
  'maxSessionBytes', 'storeTimeout', 'connectTimeout', 'maxSessionsPerUser', 'cacheSize', 'cacheBytes', 'clearSiteData',
  'sessionInfo', 'onEvent', 'password', 'clock', 'loginThrottle', 'csrf', 'durability', 'allowShortDurations',
  'decorator', 'deviceBound',
] as const

/** An absolute URL path a route can have: no query, fragment, quote or backslash (it goes into a structured header). */
const ENDPOINT_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]{0,255}$/

function deviceBoundOf (
  value: unknown, cookie: CookieConfig, idleTimeout: number, allowShort: boolean
): Config['deviceBound'] {
  if (value === undefined || value === false) return undefined
  const options = objectOption(value, 'deviceBound', ['registrationPath', 'refreshPath', 'cookieMaxAge'])
  const path = (name: string, fallback: string): string => {
    const text = options[name] ?? fallback
    if (typeof text !== 'string' || !ENDPOINT_PATH.test(text) || text.includes('//')) {
      fail('FST_SESSION_INVALID_OPTION',
        `deviceBound.${name} must be a URL path starting with / (no query, quotes or backslashes)`)
    }
    return text
  }
  const registrationPath = path('registrationPath', '/.well-known/device-bound-sessions/register')
  const refreshPath = path('refreshPath', '/.well-known/device-bound-sessions/refresh')
  if (registrationPath === refreshPath) {
    fail('FST_SESSION_INVALID_OPTION', 'deviceBound.registrationPath and deviceBound.refreshPath must differ')
  }
  const cookieMaxAge = duration(options['cookieMaxAge'], 'deviceBound.cookieMaxAge', 10 * MINUTE, SECOND, allowShort)
  // A bound cookie outliving the idle timeout would protect nothing the session cookie does not.
  if (cookieMaxAge > idleTimeout) fail('FST_SESSION_INVALID_OPTION', 'deviceBound.cookieMaxAge must be ≤ idleTimeout')
  // A browser only sends the bound cookie where it sends the session cookie.
  if (!cookie.secure) {
    fail('FST_SESSION_INVALID_OPTION',
      'deviceBound needs a secure cookie (browsers run DBSC on HTTPS and localhost only)')
  }
  return Object.freeze({ registrationPath, refreshPath, cookieMaxAge, cookieName: cookie.name + '-bound' })
}

/** A name `request[name]` can carry: an identifier. */
const DECORATOR = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/

/** A timeout below one second is legal but usually meant in seconds: say that it is milliseconds. */
function subSecond (value: number, path: string, warn: (message: string) => void): number {
  if (value > 0 && value < SECOND) {
    warn(`${path} is ${value} ms: timeouts are in milliseconds (${value} s would be ${value * SECOND})`)
  }
  return value
}

/** `warn` receives advice about legal but suspicious values (the plugin passes its logger). */
export function normaliseOptions (options: HardenedSessionOptions, warn: (message: string) => void = () => {}): Config {
  if (!isPlainObject(options)) fail('FST_SESSION_INVALID_OPTION', 'options must be an object')
  onlyKnown(options, '', TOP_LEVEL, 'FST_SESSION_INVALID_OPTION', HINTS)
  const hasRedis = options.redis !== undefined
  const hasStore = options.store !== undefined
  if (hasRedis === hasStore) {
    fail('FST_SESSION_STORE_OPTION',
      `give exactly one of redis and store (${hasRedis ? 'both given' : 'neither given'})`)
  }
  const secrets = secretsOf(options.secrets)
  const keyPrefix = options.keyPrefix ?? 'sess:'
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 64 || /[\s{}]/.test(keyPrefix)) {
    fail('FST_SESSION_INVALID_OPTION', 'keyPrefix must be a string of at most 64 characters without spaces or braces')
  }
  const allowShort = boolean(options.allowShortDurations, 'allowShortDurations', false)
  const idleTimeout = duration(options.idleTimeout, 'idleTimeout', 30 * MINUTE, SECOND, allowShort)
  const absoluteTimeout = duration(options.absoluteTimeout, 'absoluteTimeout', 12 * 60 * MINUTE, SECOND, allowShort)
  if (absoluteTimeout < idleTimeout) fail('FST_SESSION_INVALID_OPTION', 'absoluteTimeout must be ≥ idleTimeout')
  const touchInterval = ms(options.touchInterval, 'touchInterval', Math.min(MINUTE, Math.floor(idleTimeout / 2)), 0)
  if (touchInterval > idleTimeout / 2) fail('FST_SESSION_INVALID_OPTION', 'touchInterval must be ≤ idleTimeout / 2')
  const onEvent = options.onEvent
  if (onEvent !== undefined && typeof onEvent !== 'function') {
    fail('FST_SESSION_INVALID_OPTION', 'onEvent must be a function')
  }
  const decorator = options.decorator ?? 'session'
  if (typeof decorator !== 'string' || !DECORATOR.test(decorator)) {
    fail('FST_SESSION_INVALID_OPTION', "decorator must be an identifier such as 'hardenedSession'")
  }
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') fail('FST_SESSION_INVALID_OPTION', 'clock must be a function returning milliseconds')
  const info = group(options.sessionInfo, 'sessionInfo', ['userAgent', 'ip'])
  const [clearSiteData, clearSiteDataWithCookie] = clearSiteDataOf(options.clearSiteData)
  const cacheSize = integer(options.cacheSize, 'cacheSize', 10_000, 1)
  const durability = options.durability ?? 'replica'
  if (durability !== 'replica' && durability !== 'primary') {
    fail('FST_SESSION_INVALID_OPTION', "durability must be 'replica' or 'primary'")
  }
  // Then the nested option groups that have their own modules, in this order: the store, the
  // encryption keys, the password costs.
  if (hasStore) checkStoreOption(options.store)
  else checkRedisOption(options.redis)
  const cipher = options.encryption === undefined ? undefined : createFieldCipher(options.encryption)
  const password = resolvePasswordOptions(options.password)
  const cookie = cookieOf(options.cookie)
  return Object.freeze({
    secrets: Object.freeze(secrets),
    keyPrefix,
    idleTimeout,
    absoluteTimeout,
    touchInterval,
    cookie,
    maxSessionBytes: integer(options.maxSessionBytes, 'maxSessionBytes', 64 * 1024, 256),
    storeTimeout: subSecond(ms(options.storeTimeout, 'storeTimeout', SECOND, 1), 'storeTimeout', warn),
    connectTimeout: subSecond(ms(options.connectTimeout, 'connectTimeout', 10 * SECOND, 1), 'connectTimeout', warn),
    maxSessionsPerUser: integer(options.maxSessionsPerUser, 'maxSessionsPerUser', Number.MAX_SAFE_INTEGER, 1),
    cacheSize,
    cacheBytes: integer(options.cacheBytes, 'cacheBytes', 64 * 1024 * 1024, 64 * 1024),
    clearSiteData,
    clearSiteDataWithCookie,
    sessionInfo: Object.freeze({
      userAgent: boolean(info['userAgent'], 'sessionInfo.userAgent', false),
      ip: boolean(info['ip'], 'sessionInfo.ip', false),
    }),
    loginThrottle: throttleOf(options.loginThrottle, allowShort),
    csrf: csrfOf(options.csrf),
    onEvent,
    decorator,
    clock,
    durability,
    store: options.store,
    redis: options.redis,
    cipher,
    password,
    deviceBound: deviceBoundOf(options.deviceBound, cookie, idleTimeout, allowShort),
  })
}

/** A route's `config.session`: `true`, `false` or `{ stateChanging: boolean }` (checked when the route is added). */
export function checkRouteSession (value: unknown, where: string): void {
  if (value === undefined || typeof value === 'boolean') return
  if (!isPlainObject(value)) {
    fail('FST_SESSION_INVALID_OPTION', `${where} must be false, true or { stateChanging: boolean }`)
  }
  onlyKnown(value, where, ['stateChanging'])
  boolean(value['stateChanging'], `${where}.stateChanging`, false)
}
