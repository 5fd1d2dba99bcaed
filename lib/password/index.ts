/**
 * Public surface of the password helpers: argon2id hashing, constant-cost verification, rehash
 * checks. The plugin's main index re-exports from here.
 *
 * The standalone functions share one instance per distinct (normalised) options, so they share
 * its concurrency limiter and dummy hash: calling `verifyPassword(h, pw, opts)` from many places
 * with equal options never runs more than `maxConcurrency` argon2 operations at once. Options are
 * configuration, not request data: this cache grows with distinct configurations only.
 */
import type { PasswordOptions } from '../types.ts'
import { resolvePasswordOptions } from './options.ts'
import { createPasswordsFrom } from './passwords.ts'
import type { Passwords, VerifyAndUpgradeResult } from './passwords.ts'

export { createPasswords } from './passwords.ts'
export type { PasswordLogger, Passwords, PasswordsContext, VerifyAndUpgradeResult } from './passwords.ts'
export {
  DEFAULT_MAX_LENGTH, DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST,
} from './options.ts'
export type { ResolvedPasswordOptions } from './options.ts'

const shared = new Map<string, Passwords>()

/**
 * The instance the standalone functions use for `options` (one per distinct normalised options,
 * created on first use). Useful to read its `inFlight` / `queued` counters for metrics.
 */
export function sharedPasswords (options?: PasswordOptions): Passwords {
  const validated = resolvePasswordOptions(options)
  let instance = shared.get(validated.key)
  if (instance === undefined) {
    instance = createPasswordsFrom(validated)
    shared.set(validated.key, instance)
  }
  return instance
}

/** argon2id PHC string of the NFKC-normalised password (see `Passwords.hash`). */
export async function hashPassword (password: string, options?: PasswordOptions): Promise<string> {
  return await sharedPasswords(options).hash(password)
}

/** Constant-cost verification; `false` for a missing hash (see `Passwords.verify`). */
export async function verifyPassword (
  hash: string | null | undefined, password: string, options?: PasswordOptions
): Promise<boolean> {
  return await sharedPasswords(options).verify(hash, password)
}

/** Whether `hash` is below the options' policy or unusable (see `Passwords.needsRehash`). */
export function needsRehash (hash: string, options?: PasswordOptions): boolean {
  return sharedPasswords(options).needsRehash(hash)
}

/** Verify, and rehash when the stored hash is below policy (see `Passwords.verifyAndUpgrade`). */
export async function verifyAndUpgrade (
  hash: string | null | undefined, password: string, options?: PasswordOptions
): Promise<VerifyAndUpgradeResult> {
  return await sharedPasswords(options).verifyAndUpgrade(hash, password)
}
