/**
 * The parts every session operation shares, assembled once at register time (plugin.ts).
 * Pure modules (crypto, codec, stores) do not know this object; the services that orchestrate
 * them (resolve.ts, lifecycle.ts, admin.ts) take it.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { FieldCodec } from './codec.ts'
import type { RecordSealer } from './crypto/record-seal.ts'
import type { Signer } from './crypto/signer.ts'
import type { Events } from './events.ts'
import type { Guard } from './guard.ts'
import type { KeyNames } from './keys.ts'
import type { Config } from './options.ts'
import type { SessionStore } from './store/types.ts'

export interface Core {
  readonly config: Config
  readonly store: SessionStore
  readonly keys: KeyNames
  readonly signer: Signer
  readonly sealer: RecordSealer
  readonly codec: FieldCodec
  readonly guard: Guard
  readonly events: Events
  readonly log: FastifyBaseLogger
}

/** A new random epoch token (128 bits). */
export function newEpoch (): string {
  return randomBytes(16).toString('base64url')
}

/** The global epoch read from the store (never the local copy): what a session issued now must carry. */
export function freshEpoch (core: Core): Promise<string> {
  return core.guard.run(core.store.getEpoch(core.keys.epoch, newEpoch()))
}

/** The current global epoch: the local copy if held, else one read. */
export function currentEpoch (core: Core): string | Promise<string> {
  return core.store.peekEpoch(core.keys.epoch) ?? freshEpoch(core)
}

/** TTL of a record's store key: until its first deadline, at least 1 ms. */
export function ttlOf (record: { idleExpiry: number, absoluteExpiry: number }, now: number): number {
  return Math.max(1, Math.min(record.idleExpiry, record.absoluteExpiry) - now)
}

/** Deletes records of sessions already revoked (their index entries are gone): cleanup only, never fails the caller. */
export function discard (core: Core, hashes: readonly string[]): Promise<void> {
  return Promise.all(hashes.map((hash) => core.guard.run(core.store.destroy(core.keys.session(hash))).catch(() => false))).then(() => {})
}
