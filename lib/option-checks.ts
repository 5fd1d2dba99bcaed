/**
 * The one vocabulary of option and argument checks: every register-time check (config.ts, the
 * store, encryption and password options) and every argument check of the public methods (user
 * ids) is built from these, so one kind of mistake gets one kind of message. Every failure is a
 * SessionError with an FST_SESSION_* code and a detail naming the option — never its value (it
 * may be a secret).
 */
import { sessionError, type SessionErrorCode } from './errors.ts'

/** The longest user id (or account name) the plugin accepts: it is hashed, never stored as given. */
export const MAX_USER_ID_LENGTH = 1024

export function fail (code: SessionErrorCode, detail: string): never {
  throw sessionError(code, detail)
}

/** Edit distance of two short names, case-insensitive (for "did you mean"). */
function distance (a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length] as number
}

/** The known name closest to `key` (edit distance ≤ 2, case-insensitive), for "did you mean". */
export function closest (key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const k of known) {
    const d = distance(k, key)
    if (d < bestDistance) [best, bestDistance] = [k, d]
  }
  return best
}

/** Refuses keys of `value` not in `known`, naming the first with a hint (`hints`: advice per wrong name). */
export function onlyKnown (
  value: object,
  path: string,
  known: readonly string[],
  code: SessionErrorCode = 'FST_SESSION_INVALID_OPTION',
  hints: Readonly<Record<string, string>> = {}
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue
    const name = path === '' ? key : `${path}.${key}`
    const alike = Object.hasOwn(hints, key) ? undefined : closest(key, known)
    const hint = alike !== undefined
      ? `did you mean '${path === '' ? alike : `${path}.${alike}`}'?`
      : Object.hasOwn(hints, key) ? hints[key] : undefined
    fail(code, `unknown option '${name}'${hint === undefined ? '' : ` (${hint})`}`)
  }
}

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** An optional plain object option (`undefined` → `{}`). */
export function objectOption (
  value: unknown, path: string, known: readonly string[], code: SessionErrorCode = 'FST_SESSION_INVALID_OPTION',
  hints: Readonly<Record<string, string>> = {}
): Record<string, unknown> {
  if (value === undefined) return {}
  if (!isPlainObject(value)) fail(code, `${path} must be an object`)
  onlyKnown(value, path, known, code, hints)
  return value
}

export function integer (
  value: unknown, path: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER,
  code: SessionErrorCode = 'FST_SESSION_INVALID_OPTION'
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(code, `${path} must be an integer from ${min} to ${max}`)
  }
  return value
}

/** A duration in milliseconds. */
export function ms (value: unknown, path: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail('FST_SESSION_INVALID_OPTION', `${path} must be an integer number of milliseconds ≥ ${min}`)
  }
  return value
}

export function boolean (
  value: unknown, path: string, fallback: boolean, code: SessionErrorCode = 'FST_SESSION_INVALID_OPTION'
): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(code, `${path} must be a boolean`)
  return value
}

/** A user id argument of a public method: a non-empty string of at most 1024 characters. */
export function userIdArgument (value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_USER_ID_LENGTH) {
    fail('FST_SESSION_INVALID_ARGUMENT',
      `${what} must be a non-empty string of at most ${MAX_USER_ID_LENGTH} characters`)
  }
}
