/**
 * The parts every session operation shares, assembled once at register time (plugin.ts).
 * Pure modules (crypto, codec, stores) do not know this object; the services that orchestrate
 * them (resolve.ts, lifecycle.ts, write-back.ts, record-making.ts, admin.ts) take it.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { createFieldCodec, type FieldCodec, type Unreadable } from './field-codec.ts'
import { RecordSealer } from './crypto/record-seal.ts'
import { Signer } from './crypto/signer.ts'
import type { EpochKeeper } from './epoch.ts'
import type { Events } from './events.ts'
import type { Guard } from './store-deadline.ts'
import type { KeyNames } from './key-names.ts'
import type { Config } from './config.ts'
import type { IndexEntry, SessionStore } from './store/contract.ts'
import type { Tally } from './telemetry.ts'

export interface Core {
  readonly config: Config
  readonly store: SessionStore
  readonly keys: KeyNames
  readonly epochs: EpochKeeper
  readonly signer: Signer
  readonly sealer: RecordSealer
  readonly codec: FieldCodec
  readonly guard: Guard
  readonly events: Events
  readonly log: FastifyBaseLogger
  /** Logins, revocations and store errors counted for metrics (telemetry.ts). */
  readonly tally: Tally
}

/** What the plugin (plugin.ts) and the CLI (cli/store-access.ts) each bring to `assembleCore`. */
export interface CoreParts {
  readonly config: Config
  readonly store: SessionStore
  readonly keys: KeyNames
  readonly epochs: EpochKeeper
  readonly guard: Guard
  readonly events: Events
  readonly log: FastifyBaseLogger
  /** Called when an encrypted field cannot be read (the CLI ignores it). */
  readonly unreadable: Unreadable
  readonly tally: Tally
}

/** The one assembly of a `Core`: the signer, the record sealer and the field codec, from the config. */
export function assembleCore (parts: CoreParts): Core {
  const { config, unreadable, ...rest } = parts
  return {
    ...rest,
    config,
    signer: new Signer(config.secrets, config.cacheSize),
    sealer: new RecordSealer(config.secrets, config.keyPrefix),
    codec: createFieldCodec(config.cipher, unreadable),
  }
}

/**
 * How long a revocation generation outlives the last change of its user's index: a password
 * login still running this long after it began is refused (defences/password-login.ts), so a generation
 * that expired can never be mistaken for the one such a login read.
 */
export const GENERATION_TTL = 10 * 60 * 1000

/** A new random revocation generation (`revokeUser`, `revokeOthers`). */
export function newGeneration (): string {
  return randomBytes(12).toString('base64url')
}

/** TTL of a record's store key: until its first deadline, at least 1 ms. */
export function ttlOf (record: { idleExpiry: number, absoluteExpiry: number }, now: number): number {
  return Math.max(1, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
}

/**
 * Ends every lineage of a user's index (but `keepRef`) and refuses password logins already
 * running: the generation is replaced, the records deleted, the change made durable — and then
 * all of it once more, so that a login that read the new generation while the first pass waited
 * for its replica, or was admitted meanwhile, does not outlive the call either. Returns every
 * entry removed.
 */
export async function dismissUser (core: Core, indexKey: string, keepRef: string | undefined): Promise<IndexEntry[]> {
  const { store, guard, keys } = core
  const removed: IndexEntry[] = []
  for (let pass = 0; pass < 2; pass++) {
    const entries = await guard.run(store.dismissAll(indexKey, keepRef, newGeneration(), GENERATION_TTL))
    await discard(core, entries.map((e) => e.hash))
    await durable(core, [indexKey, ...entries.map((e) => keys.session(e.hash))])
    removed.push(...entries)
  }
  return removed
}

/** Deletes records of sessions already revoked (their index entries are gone): cleanup only, never fails the caller. */
export function discard (core: Core, hashes: readonly string[]): Promise<void> {
  return Promise.all(hashes.map((hash) =>
    core.guard.run(core.store.destroy(core.keys.session(hash))).catch(() => false))).then(() => {})
}

/**
 * A revocation holds once written; with `durability: 'replica'` it resolves only after a replica
 * of every master holding `keys` acknowledged it, so that a failover cannot lose it.
 */
export async function durable (core: Core, keys: readonly string[]): Promise<void> {
  if (core.config.durability === 'replica' && core.store.durable !== undefined && keys.length > 0) {
    try {
      await core.guard.run(core.store.durable(keys))
    } catch (err) {
      // Written on the master, not known to be on a replica: the caller gets 503 (it may not hold).
      core.log.warn('session revocation not acknowledged by any replica within storeTimeout: ' +
        'it may not survive a failover of its master')
      core.events.emit('store_error', undefined, undefined, 'FST_SESSION_STORE_UNAVAILABLE')
      throw err
    }
  }
}
