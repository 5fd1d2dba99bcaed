/**
 * Public surface of the password helpers: argon2id hashing, constant-cost verification, rehash
 * checks, the new-password policy. The plugin's main index re-exports from here.
 *
 * The standalone functions share one argon2 engine per distinct (normalised) argon2 options, so
 * they share its concurrency limiter and dummy hash: calling `verifyPassword(h, pw, opts)` from
 * many places with equal options never runs more than `maxConcurrency` argon2 operations at once,
 * whatever `minLength` or `isCompromised` each call passes. Options are configuration, not request
 * data: the caches grow with distinct configurations only, and an instance made for an
 * `isCompromised` function is held only as long as that function is (a WeakMap), so a closure
 * made per call does not accumulate.
 */
import type { PasswordOptions } from '../public-types.ts'
import { resolvePasswordOptions } from './password-options.ts'
import { createPasswordEngine, createPasswordsFrom } from './passwords.ts'
import type { PasswordEngine, Passwords, VerifyAndUpgradeResult } from './passwords.ts'
import type { CompromisedCheck } from './password-options.ts'

export { createPasswords } from './passwords.ts'
export type { Passwords, PasswordsContext, VerifyAndUpgradeResult } from './passwords.ts'
export type { PasswordLogger } from './policy.ts'
export {
  DEFAULT_MAX_LENGTH, DEFAULT_MEMORY_COST, DEFAULT_MIN_LENGTH, DEFAULT_PARALLELISM, DEFAULT_TIME_COST,
} from './password-options.ts'
export type { CompromisedCheck, ResolvedPasswordOptions } from './password-options.ts'

/** argon2 options key → engine. */
const engines = new Map<string, PasswordEngine>()
/** Instances without a breach hook, by argon2 key and minLength. */
const unhooked = new Map<string, Passwords>()
/** Instances with a breach hook, by hook, then argon2 key and minLength. */
const hooked = new WeakMap<CompromisedCheck, Map<string, Passwords>>()

/**
 * The instance the standalone functions use for `options` (one per distinct normalised options,
 * created on first use; equal argon2 options share one engine). Useful to read its `inFlight` /
 * `queued` counters for metrics.
 */
export function sharedPasswords (options?: PasswordOptions): Passwords {
  const validated = resolvePasswordOptions(options)
  let byPolicy = unhooked
  if (validated.isCompromised !== undefined) {
    byPolicy = hooked.get(validated.isCompromised) ?? new Map<string, Passwords>()
    hooked.set(validated.isCompromised, byPolicy)
  }
  const policyKey = `${validated.key}:${validated.options.minLength}`
  let instance = byPolicy.get(policyKey)
  if (instance === undefined) {
    let engine = engines.get(validated.key)
    if (engine === undefined) {
      engine = createPasswordEngine(validated)
      engines.set(validated.key, engine)
    }
    instance = createPasswordsFrom(validated, {}, engine)
    byPolicy.set(policyKey, instance)
  }
  return instance
}

/**
 * argon2id PHC string of the NFKC-normalised new password, after the `minLength` and
 * `isCompromised` checks (see `Passwords.hashPassword`).
 */
export async function hashPassword (password: string, options?: PasswordOptions): Promise<string> {
  return await sharedPasswords(options).hashPassword(password)
}

/** Constant-cost verification; `false` for a missing hash (see `Passwords.verifyPassword`). */
export async function verifyPassword (
  hash: string | null | undefined, password: string, options?: PasswordOptions
): Promise<boolean> {
  return await sharedPasswords(options).verifyPassword(hash, password)
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
