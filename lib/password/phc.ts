/**
 * Reading stored argon2 PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) and judging them
 * against the current policy.
 *
 * Protects against:
 * - crashes on stored data: a hash from a database is untrusted input; parsing never throws, a
 *   bad string is reported as unusable;
 * - downgrade: only argon2id is accepted (RFC 9106 §4 step 1, OWASP Password Storage Cheat
 *   Sheet), and hashes weaker than the current parameters are flagged for rehash;
 * - cost amplification: a tampered or imported hash demanding, say, 4 GiB and 100 passes would
 *   tie up a worker for seconds per login; hashes far above the configured cost are refused.
 */
import { parseOptions } from '@node-rs/argon2'
import type { Algorithm, Version } from '@node-rs/argon2'
import type { ResolvedPasswordOptions } from './password-options.ts'
import { DEFAULT_MEMORY_COST, DEFAULT_TIME_COST } from './password-options.ts'

/** `Algorithm.Argon2id` (a const enum, which isolated modules cannot read at runtime). */
export const ARGON2ID: Algorithm = 2
/** `Version.V0x13`: argon2 version 1.3 (`v=19`), the one RFC 9106 specifies (§3.1). */
export const ARGON2_VERSION_13: Version = 1
/** RFC 9106 §4: 128-bit salt and 256-bit tag in both recommended options. */
export const SALT_BYTES = 16
export const TAG_BYTES = 32

/** Longer than any PHC string with a 64-byte salt and tag; longer input is not parsed at all. */
const MAX_HASH_CHARS = 512
/**
 * Verify refuses hashes costing more than this factor over the configured (or shipped default)
 * memory and time cost: enough for a later downgrade of the settings, not for amplification.
 */
const VERIFY_COST_FACTOR = 8

export interface HashParams {
  readonly algorithm: Algorithm
  readonly version: Version
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
  readonly outputLen: number
  readonly saltLen: number
}

export type HashProblem = 'malformed' | 'algorithm'

export type HashInspection =
  | { readonly ok: true, readonly params: HashParams }
  | { readonly ok: false, readonly problem: HashProblem }

const MALFORMED: HashInspection = Object.freeze({ ok: false, problem: 'malformed' })
const NOT_ARGON2ID: HashInspection = Object.freeze({ ok: false, problem: 'algorithm' })

/** Parses a stored hash. Never throws: anything unusable is `{ ok: false, problem }`. */
export function inspectHash (hash: unknown): HashInspection {
  if (typeof hash !== 'string' || hash.length > MAX_HASH_CHARS) return MALFORMED
  let params: HashParams
  try {
    params = parseOptions(hash)
  } catch {
    return MALFORMED
  }
  if (params.algorithm !== ARGON2ID) return NOT_ARGON2ID
  return { ok: true, params }
}

/** True when a verify of this hash would cost far more than the policy allows (see header). */
export function exceedsVerifyBudget (params: HashParams, options: ResolvedPasswordOptions): boolean {
  const maxMemory = VERIFY_COST_FACTOR * Math.max(options.memoryCost, DEFAULT_MEMORY_COST)
  const maxTime = VERIFY_COST_FACTOR * Math.max(options.timeCost, DEFAULT_TIME_COST)
  return params.memoryCost > maxMemory || params.timeCost > maxTime
}

/** Complement costs are rounded to this many KiB, so that past costs map to few dummy hashes. */
const COMPLEMENT_STEP_KIB = 1024

/**
 * For a hash that costs less to verify than one made under the policy: the memory cost (KiB, at
 * the policy's time cost) of a dummy hash whose verify costs the difference; otherwise
 * undefined. argon2's work grows with memory × passes (lanes are computed one after another).
 */
export function complementCost (params: HashParams, options: ResolvedPasswordOptions): number | undefined {
  const missing = options.memoryCost * options.timeCost - params.memoryCost * params.timeCost
  if (missing <= 0) return undefined
  const rounded = Math.round(missing / options.timeCost / COMPLEMENT_STEP_KIB) * COMPLEMENT_STEP_KIB
  return Math.max(8 * options.parallelism, rounded) // argon2's least memory: 8 KiB per lane
}

/**
 * True when the hash should be replaced at the next successful login: unusable, not argon2id
 * v1.3, any cost below the current policy, or a salt/tag shorter than RFC 9106 §4 recommends.
 * Stronger-than-policy hashes are kept (never downgrade).
 */
export function hashNeedsRehash (hash: unknown, options: ResolvedPasswordOptions): boolean {
  const inspection = inspectHash(hash)
  if (!inspection.ok) return true
  const p = inspection.params
  return p.version !== ARGON2_VERSION_13 ||
    p.memoryCost < options.memoryCost ||
    p.timeCost < options.timeCost ||
    p.parallelism < options.parallelism ||
    p.saltLen < SALT_BYTES ||
    p.outputLen < TAG_BYTES
}
