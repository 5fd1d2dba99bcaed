/**
 * The new-password policy: checks that `hashPassword` runs on a password being chosen now, and
 * that verification never runs (an account made under an older, laxer policy can still log in).
 *
 * Protects against:
 * - easily guessed new passwords: a minimum length, counted in Unicode code points after NFKC
 *   (NIST SP 800-63B §5.1.1.2: at least 8 characters, "each Unicode code point SHALL be counted
 *   as a single character"), and an optional check against breach corpora (same section: compare
 *   against "passwords obtained from previous breach corpuses");
 * - a breach check that silently lets everything through: a hook that throws, rejects or answers
 *   anything but a boolean refuses the password with 503 (fail closed);
 * - leaking the password through errors or logs: the hook's own error may quote its input, so it
 *   is neither attached as `cause` nor logged; errors carry fixed messages, and the log line
 *   carries at most the error's name and code, and only when neither contains the password.
 */
import { sessionError } from '../errors.ts'
import type { CompromisedCheck } from './password-options.ts'

/** The subset of a pino / Fastify logger used here. */
export interface PasswordLogger {
  warn (obj: object, msg: string): void
}

const CHECK_FAILED_MESSAGE = 'isCompromised hook failed; the new password was refused'
/** What may go into the log from the hook's error: identifier-like names and codes only. */
const LOGGABLE = /^[A-Za-z0-9_.:-]{1,64}$/

/**
 * Whether `password` (well-formed, already NFKC) has at least `min` code points. O(1) when the
 * answer follows from its UTF-16 length (one or two units per code point), O(n) otherwise.
 */
export function hasMinLength (password: string, min: number): boolean {
  if (password.length < min) return false
  if (password.length >= 2 * min) return true
  // Well-formed: every high surrogate starts a pair, i.e. one code point in two units.
  let pairs = 0
  for (let i = 0; i < password.length; i++) {
    const unit = password.charCodeAt(i)
    if (unit >= 0xd800 && unit <= 0xdbff) pairs++
  }
  return password.length - pairs >= min
}

function loggable (value: unknown, forms: readonly string[]): string | undefined {
  if (typeof value !== 'string' || !LOGGABLE.test(value)) return undefined
  return forms.some((form) => value.includes(form)) ? undefined : value
}

/** `{ name, code }` of the hook's error, each kept only if it cannot carry the password. */
function describeFailure (error: unknown, forms: readonly string[]): { name?: string, code?: string } {
  if (typeof error !== 'object' || error === null) return {}
  const { name, code } = error as { name?: unknown, code?: unknown }
  const described: { name?: string, code?: string } = {}
  const safeName = loggable(name, forms)
  const safeCode = loggable(code, forms)
  if (safeName !== undefined) described.name = safeName
  if (safeCode !== undefined) described.code = safeCode
  return described
}

async function ask (
  check: CompromisedCheck, candidate: string, forms: readonly string[], log: PasswordLogger | undefined
): Promise<boolean> {
  let verdict: unknown
  try {
    verdict = await check(candidate)
  } catch (error) {
    // No `cause`: the hook's error is the caller's object and may quote the password.
    log?.warn({ reason: 'threw', error: describeFailure(error, forms) }, CHECK_FAILED_MESSAGE)
    throw sessionError('FST_PASSWORD_CHECK_FAILED')
  }
  if (typeof verdict !== 'boolean') {
    // Most likely a forgotten `return` or `await`: treated as "could not check", not as "clean".
    log?.warn({ reason: 'not-boolean' }, CHECK_FAILED_MESSAGE)
    throw sessionError('FST_PASSWORD_CHECK_FAILED')
  }
  return verdict
}

/**
 * Runs the breach check on the password as it will be hashed (NFKC) and, when the typed form
 * differs, on that form too: both log in (verify normalises), so either being breached counts.
 * Throws `FST_PASSWORD_COMPROMISED` (400) or `FST_PASSWORD_CHECK_FAILED` (503).
 */
export async function checkNotCompromised (
  check: CompromisedCheck, normalised: string, typed: string, log: PasswordLogger | undefined
): Promise<void> {
  const forms = typed === normalised ? [normalised] : [normalised, typed]
  for (const candidate of forms) {
    if (await ask(check, candidate, forms, log)) throw sessionError('FST_PASSWORD_COMPROMISED')
  }
}
