/**
 * An argon2id password hasher bound to validated options: `hashPassword`, `verifyPassword`,
 * `needsRehash`, `verifyAndUpgrade` (and the short aliases `hash`, `verify`). This is what the
 * plugin decorates as `fastify.passwords`.
 *
 * Protects against:
 * - offline cracking of a leaked database: argon2id, memory-hard, random 128-bit salt, optional
 *   pepper kept outside the database (RFC 9106 §4, OWASP Password Storage Cheat Sheet);
 * - weak new passwords: `hashPassword` alone applies the new-password policy (minimum length,
 *   breach check; see policy.ts), so existing accounts are never locked out by a stricter policy;
 * - user enumeration by timing: every `false` answer costs at least one argon2 verify at the
 *   current parameters, whether the user is unknown, the password empty, the stored hash
 *   unusable or made at a lower cost (OWASP Authentication Cheat Sheet, "Authentication
 *   Responses");
 * - denial of service: input size is capped before any work, and argon2 work runs through a FIFO
 *   limiter that sheds load with 503 (see limiter.ts);
 * - leaking secrets through logs: warnings carry a fixed message and a reason code, never the
 *   password, the hash or the pepper (OWASP Logging Cheat Sheet).
 */
import { randomBytes } from 'node:crypto'
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import { SessionError, sessionError } from '../errors.ts'
import type { PasswordOptions } from '../public-types.ts'
import { preparePassword } from './input.ts'
import { Limiter } from './limiter.ts'
import { DEFAULT_MIN_LENGTH, isBelowOwaspMinimum, resolvePasswordOptions } from './password-options.ts'
import type { ResolvedPasswordOptions, ValidatedPasswordOptions } from './password-options.ts'
import {
  ARGON2_VERSION_13, ARGON2ID, SALT_BYTES, TAG_BYTES, complementCost, exceedsVerifyBudget, hashNeedsRehash, inspectHash,
} from './phc.ts'
import type { HashProblem } from './phc.ts'
import { checkNotCompromised, hasMinLength, type PasswordLogger } from './policy.ts'

export interface PasswordsContext {
  /** Receives a warning when a stored hash is unusable, and once if the costs are below OWASP's. */
  log?: PasswordLogger | undefined
}

export interface VerifyAndUpgradeResult {
  /** Whether the password matched. */
  ok: boolean
  /** Present when it matched and the stored hash was weaker than the policy: store this one. */
  newHash?: string
}

export interface Passwords {
  /**
   * argon2id PHC string of the NFKC-normalised password, for a password being chosen now: first
   * enforces `minLength` (`FST_PASSWORD_TOO_SHORT`) and the `isCompromised` hook
   * (`FST_PASSWORD_COMPROMISED`, or `FST_PASSWORD_CHECK_FAILED` when the hook fails).
   */
  hashPassword (password: string): Promise<string>
  /**
   * Whether `password` matches the stored hash. `false` (after a full-cost dummy verify) for a
   * missing hash, empty password or unusable hash. Applies no new-password policy.
   */
  verifyPassword (hash: string | null | undefined, password: string): Promise<boolean>
  /** Whether `hash` is below the current policy (or unusable) and should be replaced. */
  needsRehash (hash: string): boolean
  /**
   * `verifyPassword`, then a new hash when the old one `needsRehash` (the rehash-on-login
   * pattern). The rehash applies no new-password policy: a short old password still logs in.
   */
  verifyAndUpgrade (hash: string | null | undefined, password: string): Promise<VerifyAndUpgradeResult>
  /** Alias of `hashPassword`. */
  hash (password: string): Promise<string>
  /** Alias of `verifyPassword`. */
  verify (hash: string | null | undefined, password: string): Promise<boolean>
  /** The validated, frozen options (the pepper is not included, only `peppered`). */
  readonly options: ResolvedPasswordOptions
  /** argon2 operations running now. */
  readonly inFlight: number
  /** argon2 operations waiting for a slot. */
  readonly queued: number
  /** argon2 operations started since creation (hashes and verifies, dummy ones included). */
  readonly operations: number
}

/**
 * The argon2 side of an instance: limiter, dummy hash, verification. Instances whose options
 * differ only in the new-password policy can share one (the standalone functions do).
 */
export interface PasswordEngine {
  /** Hashes an already prepared (NFKC, length-checked) password. */
  hashPrepared (password: string): Promise<string>
  verify (hash: string | null | undefined, password: string): Promise<boolean>
  needsRehash (hash: string): boolean
  verifyAndUpgrade (hash: string | null | undefined, password: string): Promise<VerifyAndUpgradeResult>
  readonly inFlight: number
  readonly queued: number
  readonly operations: number
}

type HashUnusable = HashProblem | 'cost' | 'rejected'

/** Distinct lower costs whose complement dummy hash is kept (see `getComplementHash`). */
const MAX_COMPLEMENTS = 16

const UNUSABLE_HASH_MESSAGE = 'Stored password hash is not a usable argon2id hash; verification answered false'

/** Prepares a password that is to be hashed: throws where `verify` would answer `false`. */
function preparedOrThrow (password: string, maxLength: number): string {
  const prepared = preparePassword(password, maxLength)
  if (!prepared.ok) throw sessionError(prepared.problem === 'empty' ? 'FST_PASSWORD_EMPTY' : 'FST_PASSWORD_INVALID')
  return prepared.password
}

/** Builds the argon2 engine for validated options (see {@link PasswordEngine}). */
export function createPasswordEngine (validated: ValidatedPasswordOptions, log?: PasswordLogger): PasswordEngine {
  const { options, pepper } = validated
  const limiter = new Limiter(options.maxConcurrency, options.maxQueue)
  let operations = 0
  let dummyHash: Promise<string> | undefined

  if (log !== undefined && isBelowOwaspMinimum(options)) {
    // Risky but valid (fine in tests): say so once, with the costs only.
    log.warn({ memoryCost: options.memoryCost, timeCost: options.timeCost },
      'argon2id parameters are below the OWASP Password Storage Cheat Sheet minimum')
  }

  function runHash (password: string, memoryCost = options.memoryCost): Promise<string> {
    return limiter.run(() => {
      operations++
      return argon2Hash(password, {
        algorithm: ARGON2ID, // RFC 9106 §4 step 1 / OWASP: argon2id
        version: ARGON2_VERSION_13,
        memoryCost,
        timeCost: options.timeCost,
        parallelism: options.parallelism,
        outputLen: TAG_BYTES, // RFC 9106 §4: 256-bit tag
        salt: randomBytes(SALT_BYTES), // RFC 9106 §3.1, §4: 128-bit random salt, from the OS CSPRNG
        secret: pepper, // RFC 9106 §3.1 "secret value K": the pepper never enters the PHC string
      })
    })
  }

  function runVerify (hash: string, password: string): Promise<boolean> {
    return limiter.run(() => {
      operations++
      return argon2Verify(hash, password, { secret: pepper })
    })
  }

  /** Lazily made once per engine, at the same parameters and pepper as real hashes. */
  function getDummyHash (): Promise<string> {
    if (dummyHash === undefined) {
      // A random password nobody knows: the dummy verify below can never succeed.
      const made = runHash(randomBytes(32).toString('base64url'))
      dummyHash = made
      // If it could not be made (e.g. the queue was full), try again next time.
      made.catch(() => { if (dummyHash === made) dummyHash = undefined })
    }
    return dummyHash
  }

  /**
   * Dummy hashes at a lower memory cost (and the policy's time cost), by memory cost, made on
   * first use; at most MAX_COMPLEMENTS (past costs are few), beyond that the full dummy hash.
   */
  const complements = new Map<number, Promise<string>>()
  function getComplementHash (memoryCost: number): Promise<string> {
    let made = complements.get(memoryCost)
    if (made === undefined) {
      if (complements.size >= MAX_COMPLEMENTS) return getDummyHash()
      const making = runHash(randomBytes(32).toString('base64url'), memoryCost)
      complements.set(memoryCost, made = making)
      making.catch(() => { if (complements.get(memoryCost) === making) complements.delete(memoryCost) })
    }
    return made
  }

  /** Costs what a real failed verify costs, then answers false (OWASP Authentication Cheat Sheet). */
  async function dummyVerify (): Promise<false> {
    await runVerify(await getDummyHash(), 'not the password')
    return false
  }

  function warnUnusable (reason: HashUnusable): void {
    // Only a reason code: never the hash (it is an offline-crackable secret) nor the password.
    log?.warn({ reason }, UNUSABLE_HASH_MESSAGE)
  }

  async function verify (hash: string | null | undefined, password: string): Promise<boolean> {
    const prepared = preparePassword(password, options.maxLength)
    if (hash === null || hash === undefined || !prepared.ok) return await dummyVerify()
    const inspection = inspectHash(hash)
    if (!inspection.ok) {
      warnUnusable(inspection.problem)
      return await dummyVerify()
    }
    if (exceedsVerifyBudget(inspection.params, options)) {
      warnUnusable('cost')
      return await dummyVerify()
    }
    try {
      const ok = await runVerify(hash, prepared.password)
      // A hash made before the costs were raised verifies faster than the dummy hash of an
      // unknown account, so a wrong password would tell such accounts apart by timing: a dummy
      // verify of the missing cost follows, so that a failure costs what one at the current
      // cost does. (The hash is replaced at the next successful login: `verifyAndUpgrade`.)
      const missing = complementCost(inspection.params, options)
      if (!ok && missing !== undefined) await runVerify(await getComplementHash(missing), 'not the password')
      return ok
    } catch (error) {
      if (error instanceof SessionError) throw error // FST_PASSWORD_BUSY: the caller answers 503
      warnUnusable('rejected') // parsed, yet refused by argon2 itself
      return false
    }
  }

  function needsRehash (hash: string): boolean {
    return hashNeedsRehash(hash, options)
  }

  async function verifyAndUpgrade (hash: string | null | undefined, password: string): Promise<VerifyAndUpgradeResult> {
    const ok = await verify(hash, password)
    if (!ok || typeof hash !== 'string' || !needsRehash(hash)) return { ok }
    try {
      // The same password, re-hashed at the current cost: deliberately no minLength or breach
      // check here, or a policy tightened since sign-up would fail this user's login.
      return { ok, newHash: await runHash(preparedOrThrow(password, options.maxLength)) }
    } catch (error) {
      // The login itself succeeded; under load the upgrade simply waits for the next login.
      if (error instanceof SessionError && error.code === 'FST_PASSWORD_BUSY') return { ok }
      throw error
    }
  }

  return Object.freeze({
    hashPrepared: runHash,
    verify,
    needsRehash,
    verifyAndUpgrade,
    get inFlight () { return limiter.inFlight },
    get queued () { return limiter.queued },
    get operations () { return operations },
  })
}

/**
 * Builds an instance from already-validated options, on `engine` when given (the standalone
 * functions share engines), else on a new one.
 */
export function createPasswordsFrom (
  validated: ValidatedPasswordOptions, context: PasswordsContext = {}, engine?: PasswordEngine
): Passwords {
  const { options, isCompromised } = validated
  const log = context.log
  const argon2 = engine ?? createPasswordEngine(validated, log)

  if (log !== undefined && options.minLength < DEFAULT_MIN_LENGTH) {
    // Risky but valid: say so once, with the setting only.
    log.warn({ minLength: options.minLength },
      'password minLength is below the NIST SP 800-63B minimum of 8 characters')
  }

  /** Prepare, then the length policy; the breach check (async) comes after, if configured. */
  function preparedNew (password: string): string {
    const prepared = preparedOrThrow(password, options.maxLength)
    if (!hasMinLength(prepared, options.minLength)) throw sessionError('FST_PASSWORD_TOO_SHORT')
    return prepared
  }

  // Chosen once: without a hook, the limiter slot is taken synchronously, as for verify.
  const hashPassword = isCompromised === undefined
    ? async function hashPassword (password: string): Promise<string> {
      return await argon2.hashPrepared(preparedNew(password))
    }
    : async function hashPassword (password: string): Promise<string> {
      const prepared = preparedNew(password)
      // Before the limiter: a slow lookup must not hold an argon2 slot.
      await checkNotCompromised(isCompromised, prepared, password, log)
      return await argon2.hashPrepared(prepared)
    }

  const verifyPassword = argon2.verify

  return Object.freeze({
    hashPassword,
    verifyPassword,
    needsRehash: argon2.needsRehash,
    verifyAndUpgrade: argon2.verifyAndUpgrade,
    hash: hashPassword,
    verify: verifyPassword,
    options,
    get inFlight () { return argon2.inFlight },
    get queued () { return argon2.queued },
    get operations () { return argon2.operations },
  })
}

/**
 * Creates a password hasher bound to `options`, validated now (errors are
 * `FST_SESSION_INVALID_OPTION` naming the option) and frozen.
 */
export function createPasswords (options?: PasswordOptions, context?: PasswordsContext): Passwords {
  return createPasswordsFrom(resolvePasswordOptions(options), context)
}
