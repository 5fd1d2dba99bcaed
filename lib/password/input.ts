/**
 * Password input preparation: type check, length cap, Unicode normalisation.
 *
 * Protects against:
 * - denial of service by huge inputs: the length is bounded *before* any normalisation or
 *   hashing work, using the fact that a UTF-16 code unit never encodes to fewer than one UTF-8
 *   byte, then bounded again after NFKC (which can expand a character up to 18-fold);
 * - lock-outs by invisible encoding differences: NFKC makes "é" typed as U+00E9 or as
 *   "e" + U+0301 (or "ﬁ" vs "fi") the same password (NIST SP 800-63B §5.1.1.2);
 * - collisions between ill-formed strings: a lone surrogate would be replaced by U+FFFD when
 *   encoded to UTF-8, so distinct inputs would hash alike; such strings are refused.
 *
 * Nothing here looks at the password's content beyond that: no composition rules (NIST SP
 * 800-63B §5.1.1.2), and never truncation (truncation SHALL NOT be performed, same section).
 */
import { sessionError } from '../errors.ts'

export type PreparedPassword =
  | { readonly ok: true, readonly password: string }
  | { readonly ok: false, readonly problem: 'empty' | 'ill-formed' }

const EMPTY: PreparedPassword = Object.freeze({ ok: false, problem: 'empty' })
const ILL_FORMED: PreparedPassword = Object.freeze({ ok: false, problem: 'ill-formed' })

/** Matches a lone (unpaired) surrogate: with the `u` flag a valid pair is one code point, not Cs. */
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Checks and normalises a password. Throws `FST_PASSWORD_INVALID` for a non-string (a caller bug)
 * and `FST_PASSWORD_TOO_LONG` when it exceeds `maxLength` UTF-8 bytes before or after NFKC.
 * Empty and ill-formed strings are reported, not thrown, so `verify` can answer `false` for them.
 */
export function preparePassword (input: unknown, maxLength: number): PreparedPassword {
  if (typeof input !== 'string') throw sessionError('FST_PASSWORD_INVALID')
  // O(1) guard first: UTF-8 bytes >= UTF-16 code units, so this rejects a 10 MB body for free.
  if (input.length > maxLength) throw sessionError('FST_PASSWORD_TOO_LONG')
  // O(n) with n <= maxLength from here on.
  if (Buffer.byteLength(input, 'utf8') > maxLength) throw sessionError('FST_PASSWORD_TOO_LONG')
  if (input.length === 0) return EMPTY
  if (LONE_SURROGATE.test(input)) return ILL_FORMED
  // NIST SP 800-63B §5.1.1.2: apply NFKC (or NFKD) before hashing.
  const password = input.normalize('NFKC')
  // NFKC can expand (U+FDFA is 3 bytes in, 33 bytes out): the cap applies to what is hashed.
  if (Buffer.byteLength(password, 'utf8') > maxLength) throw sessionError('FST_PASSWORD_TOO_LONG')
  if (password.length === 0) return EMPTY
  return { ok: true, password }
}
