/**
 * Password options: validated once, normalised into a frozen object, never re-checked per call.
 *
 * Protects against misconfiguration that would silently weaken password storage or availability:
 * argon2 costs outside the algorithm's limits, a pepper too short to add entropy, a length cap
 * that would truncate or reject ordinary passphrases, a minimum length no password could meet, a
 * breach check that is not callable, and concurrency settings that would let a login burst
 * exhaust memory. Errors name the option (`password.memoryCost`), never its value, so a misplaced
 * pepper never reaches a log.
 */
import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { fail, integer, objectOption } from '../option-checks.ts'
import type { PasswordOptions } from '../public-types.ts'

/** 64 MiB: RFC 9106 §4 "second recommended option" memory size (m = 2^16 KiB). */
export const DEFAULT_MEMORY_COST = 65536
/** 3 passes: RFC 9106 §4 second recommended option (t = 3). */
export const DEFAULT_TIME_COST = 3
/** 1 lane: one hash occupies one core, so `maxConcurrency = cores` bounds CPU use (OWASP p = 1). */
export const DEFAULT_PARALLELISM = 1
/** Bytes of UTF-8 after NFKC; well above NIST SP 800-63B §5.1.1.2's "at least 64 characters". */
export const DEFAULT_MAX_LENGTH = 1024
/** Code points after NFKC: NIST SP 800-63B §5.1.1.2 (rev. 3) "at least 8 characters in length". */
export const DEFAULT_MIN_LENGTH = 8
/** Waiting hashes per concurrency slot before new ones fail fast with 503. */
export const QUEUE_PER_SLOT = 64

/** NIST SP 800-63B §5.1.1.2: verifiers SHOULD permit passwords of at least 64 characters. */
const MIN_MAX_LENGTH = 64
/** A pepper is a symmetric secret: at least 256 bits, like the session secrets (NIST SP 800-63B §5.1.1.2). */
const MIN_PEPPER_BYTES = 32
const UINT32_MAX = 2 ** 32 - 1

/**
 * OWASP Password Storage Cheat Sheet: the argon2id configurations it lists as equivalent
 * minimums, as [memoryCost KiB, timeCost]. Parameters meeting none of them are "weak".
 */
const OWASP_MINIMUMS: ReadonlyArray<readonly [number, number]> = [
  [47104, 1], [19456, 2], [12288, 3], [9216, 4], [7168, 5],
]

const KNOWN_KEYS: readonly string[] = [
  'memoryCost', 'timeCost', 'parallelism', 'pepper', 'maxLength', 'maxConcurrency', 'maxQueue',
  'minLength', 'isCompromised',
]

/** The breach-check hook (see `PasswordOptions.isCompromised`). */
export type CompromisedCheck = (password: string) => boolean | Promise<boolean>

/** The validated options an instance runs with. The pepper itself is never exposed here. */
export interface ResolvedPasswordOptions {
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
  readonly maxLength: number
  /** Shortest new password, in code points after NFKC (checked by `hashPassword` only). */
  readonly minLength: number
  /** Whether an `isCompromised` hook is configured (checked by `hashPassword` only). */
  readonly checksCompromised: boolean
  readonly maxConcurrency: number
  readonly maxQueue: number
  /** Whether a pepper is configured (its bytes stay private to the instance). */
  readonly peppered: boolean
}

export interface ValidatedPasswordOptions {
  readonly options: ResolvedPasswordOptions
  /** A private copy of the pepper, or undefined. */
  readonly pepper: Buffer | undefined
  /** The breach-check hook, or undefined. */
  readonly isCompromised: CompromisedCheck | undefined
  /**
   * Identifies equal argon2 configurations (costs, limits, pepper as a SHA-256 digest): instances
   * with equal keys can share one limiter and dummy hash. The new-password policy (`minLength`,
   * `isCompromised`) is not part of it.
   */
  readonly key: string
}

function toPepper (value: unknown): Buffer | undefined {
  if (value === undefined) return undefined
  let bytes: Buffer
  if (typeof value === 'string') bytes = Buffer.from(value, 'utf8')
  else if (value instanceof Uint8Array) bytes = Buffer.from(value) // a copy: later changes by the caller do not leak in
  else fail('FST_SESSION_INVALID_OPTION', 'password.pepper must be a string or bytes')
  if (bytes.length < MIN_PEPPER_BYTES) {
    fail('FST_SESSION_INVALID_OPTION', `password.pepper must be at least ${MIN_PEPPER_BYTES} bytes`)
  }
  return bytes
}

function toCheck (value: unknown): CompromisedCheck | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') fail('FST_SESSION_INVALID_OPTION', 'password.isCompromised must be a function')
  return value as CompromisedCheck
}

/** Validates and normalises `PasswordOptions`; throws `FST_SESSION_INVALID_OPTION` naming the option. */
export function resolvePasswordOptions (input?: PasswordOptions): ValidatedPasswordOptions {
  // An unknown key is most likely a typo (`memorycost`) that would silently keep a default: it
  // is refused by name, with the closest known one, like every other option.
  const raw = objectOption(input, 'password', KNOWN_KEYS)
  const parallelism = integer(raw['parallelism'], 'password.parallelism', DEFAULT_PARALLELISM, 1, 255)
  // RFC 9106 §3.1: m must be at least 8·p KiB.
  const memoryCost = integer(raw['memoryCost'], 'password.memoryCost', DEFAULT_MEMORY_COST, 8 * parallelism, UINT32_MAX)
  const timeCost = integer(raw['timeCost'], 'password.timeCost', DEFAULT_TIME_COST, 1, UINT32_MAX)
  const maxLength = integer(raw['maxLength'], 'password.maxLength', DEFAULT_MAX_LENGTH, MIN_MAX_LENGTH, 2 ** 30)
  const maxConcurrency = integer(raw['maxConcurrency'], 'password.maxConcurrency', availableParallelism(), 1, 1024)
  const maxQueue = integer(raw['maxQueue'], 'password.maxQueue', QUEUE_PER_SLOT * maxConcurrency, 0, 2 ** 24)
  // A minimum above maxLength bytes could never be met: every code point is at least one byte.
  const minLength = integer(raw['minLength'], 'password.minLength', DEFAULT_MIN_LENGTH, 1, maxLength)
  const isCompromised = toCheck(raw['isCompromised'])
  const pepper = toPepper(raw['pepper'])

  const options: ResolvedPasswordOptions = Object.freeze({
    memoryCost,
    timeCost,
    parallelism,
    maxLength,
    minLength,
    checksCompromised: isCompromised !== undefined,
    maxConcurrency,
    maxQueue,
    peppered: pepper !== undefined,
  })
  const pepperId = pepper === undefined ? '-' : createHash('sha256').update(pepper).digest('base64url')
  const key = [memoryCost, timeCost, parallelism, maxLength, maxConcurrency, maxQueue, pepperId].join(':')
  return Object.freeze({ options, pepper, isCompromised, key })
}

/** True when the argon2id costs meet none of OWASP's listed minimum configurations. */
export function isBelowOwaspMinimum (options: Pick<ResolvedPasswordOptions, 'memoryCost' | 'timeCost'>): boolean {
  return !OWASP_MINIMUMS.some(([m, t]) => options.memoryCost >= m && options.timeCost >= t)
}
