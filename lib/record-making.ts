/**
 * What both writers of session records share: the moves (lifecycle.ts) and the write-back at
 * `onSend` (write-back.ts). Sealing and sizing a record, the epoch tag of a new record, its meta
 * values re-encrypted for a new id, and the end of a request whose session ended meanwhile.
 */
import { epochTag } from './crypto/epoch.ts'
import { sessionError } from './errors.ts'
import type { MetaName } from './field-codec.ts'
import type { Core } from './services.ts'
import type { SessionState } from './state.ts'
import type { SessionRecord } from './store/contract.ts'
import { storedBytes } from './store/record-encoding.ts'

export type Unsealed = Omit<SessionRecord, 'seal' | 'sealed'>

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
   * The epoch tag for a new record with storage hash `hash`, from its epoch copy read fresh (a
   * local copy may predate a `revokeAll` elsewhere by the moment its invalidation takes).
   * `continues`: the old record of a continuing session, which must carry the epoch current
   * now, or `revokeAll` ended it (FST_SESSION_ENDED).
   */
  async epochTag (
    state: SessionState, hash: string, continues?: { readonly record: SessionRecord, readonly hash: string }
  ): Promise<string> {
    const { epochs, keys } = this.#core
    const key = keys.epochOf(keys.session(hash))
    let epoch: string | undefined
    if (continues !== undefined) {
      const oldKey = keys.epochOf(keys.session(continues.hash))
      const current = await epochs.fresh(oldKey)
      if (!epochs.matches(current, continues.hash, continues.record.epoch)) this.ended(state)
      if (oldKey === key) epoch = current
    }
    return epochTag(epoch ?? await epochs.fresh(key), hash)
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
