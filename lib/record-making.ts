/**
 * What both writers of session records share: the moves (lifecycle.ts) and the write-back at
 * `onSend` (write-back.ts). Sealing and sizing a record, the epoch tag of a new record, its meta
 * values re-encrypted for a new id, and the end of a request whose session ended meanwhile.
 */
import { epochTag } from './crypto/epoch.ts'
import { sessionError } from './errors.ts'
import type { MetaName } from './field-codec.ts'
import type { SessionState } from './state.ts'
import { ttlOf, type Core } from './services.ts'
import type { EpochCheck, SessionRecord } from './store/contract.ts'
import { storedBytes } from './store/record-encoding.ts'

export type Unsealed = Omit<SessionRecord, 'seal' | 'sealed'>

/** A continuing session's old record (regenerate, same-user re-login, binding). */
export interface Continued { readonly record: SessionRecord, readonly hash: string }

/** A new record's epoch tag; `check`: made from the copy held locally, which `create` verifies as it writes. */
export interface Tagged { readonly tag: string, readonly check?: EpochCheck }

export class RecordMaker {
  readonly #core: Core

  constructor (core: Core) {
    this.#core = core
  }

  sized<R extends SessionRecord> (record: R): R {
    // maxSessionBytes counts UTF-8 bytes as stored, not UTF-16 code units.
    if (storedBytes(record) > this.#core.config.maxSessionBytes) throw sessionError('FST_SESSION_TOO_LARGE')
    return record
  }

  /** Seals a record: its encrypted fields become required (a store writer's removal is detected). */
  seal (hash: string, record: Unsealed): SessionRecord {
    const sealed = { ...record, sealed: this.#core.codec.sealedNames(record.fields) }
    return this.sized({ ...sealed, seal: this.#core.sealer.seal(hash, sealed) })
  }

  /**
   * The epoch tag for a new record with storage hash `hash`. From the epoch copy held locally
   * when there is one, with a `check` that `create` makes in the same step as the write (a local
   * copy may predate a `revokeAll` elsewhere by the moment its invalidation takes); otherwise from
   * the copy read fresh. `continues`: the old record of a continuing session, which must carry the
   * epoch current now, or `revokeAll` ended it (FST_SESSION_ENDED).
   */
  async epochTag (state: SessionState, hash: string, continues?: Continued): Promise<Tagged> {
    const { epochs, keys } = this.#core
    const key = keys.epochOf(keys.session(hash))
    const oldKey = continues === undefined ? key : keys.epochOf(keys.session(continues.hash))
    // Not when a continuing session's copy is another one (another slot of a cluster): the old
    // record is checked against a fresh read of its own copy.
    const held = oldKey === key ? epochs.held(key) : undefined
    const covered = held !== undefined &&
      (continues === undefined || epochs.matches(held.id, continues.hash, continues.record.epoch))
    if (held !== undefined && covered) {
      return { tag: epochTag(held.id, hash), check: { key, value: held.value, known: epochs.known } }
    }
    let epoch: string | undefined
    if (continues !== undefined) {
      const current = await epochs.fresh(oldKey)
      if (!epochs.matches(current, continues.hash, continues.record.epoch)) this.ended(state)
      if (oldKey === key) epoch = current
    }
    return { tag: epochTag(epoch ?? await epochs.fresh(key), hash) }
  }

  /**
   * Writes a new record, made by `make` under `tagged`. If the store's epoch copy moved past the
   * one held locally (a `revokeAll` elsewhere whose invalidation is on its way), nothing was
   * written: the record is made again under the epoch the copy holds and written (a continuing
   * session that epoch no longer covers has ended). Returns the record written.
   */
  async create (
    state: SessionState, hash: string, tagged: Tagged, make: (tag: string) => SessionRecord, continues?: Continued
  ): Promise<SessionRecord> {
    const { config, store, keys, guard, epochs } = this.#core
    const key = keys.session(hash)
    const record = make(tagged.tag)
    const moved = await guard.run(store.create(key, record, ttlOf(record, config.clock()), tagged.check))
    if (moved === undefined || tagged.check === undefined) return record
    const id = await epochs.accept(tagged.check.key, moved)
    if (continues !== undefined && !epochs.matches(id, continues.hash, continues.record.epoch)) this.ended(state)
    const again = make(epochTag(id, hash))
    await guard.run(store.create(key, again, ttlOf(again, config.clock())))
    return again
  }

  /** The record's meta values (user, user agent, IP, device binding) re-encrypted for `hash` under the newest key. */
  meta (record: SessionRecord, from: string, hash: string): Pick<SessionRecord, 'user' | 'userAgent' | 'ip' | 'bound'> {
    const { codec } = this.#core
    const move = (name: MetaName, stored: string | undefined): string | undefined =>
      codec.sealMeta(name, codec.openMeta(name, stored, from) ?? undefined, hash)
    return {
      user: move('user', record.user),
      userAgent: move('userAgent', record.userAgent),
      ip: move('ip', record.ip),
      bound: move('bound', record.bound),
    }
  }

  /** The session ended while this request ran: no cookie is sent (a newer one may exist). */
  ended (state: SessionState): never {
    state.rebind(undefined, undefined, undefined, undefined)
    state.cookie = 'none'
    throw sessionError('FST_SESSION_ENDED')
  }
}
