/**
 * Instance-wide operations (`fastify.session`): revoke a user, a session or everything, list a
 * user's sessions, cache statistics.
 *
 * Revocation is O(1) in the number of requests and race-free: it removes index entries (or moves
 * the global epoch) in one atomic step, and the per-request check (resolve.ts) consults exactly
 * those, so nothing issued before a revocation works after it resolves — on every instance,
 * since the index and epoch are read through the same client-side cache whose invalidations
 * arrive before the call's promise resolves + 100 ms. Deleting the revoked records afterwards
 * only frees memory.
 */
import { discard, dismissUser, durable, type Core } from './services.ts'
import { REF_PATTERN } from './crypto/ids.ts'
import type { Resolver } from './resolve.ts'
import type { IndexEntry, StoreStats } from './store/contract.ts'
import type { SessionInfo } from './public-types.ts'
import { userIdArgument } from './option-checks.ts'

/** `fastify.session`: instance-wide operations on the sessions in the store. */
export interface SessionDecorator {
  /** Ends every session of `userId` on every instance; returns how many were live. */
  revokeUser (userId: string): Promise<number>
  /** The live sessions of `userId` (no ids). */
  listUserSessions (userId: string): Promise<SessionInfo[]>
  /** Ends the session with this `ref` of `userId`; false when none matched. */
  revokeSession (userId: string, ref: string): Promise<boolean>
  /** Breach response: every session that exists now ends, on every instance; new ones work. */
  revokeAll (): Promise<void>
  /** Hits and misses of this instance's local cache. */
  stats (): StoreStats
}

export function createAdmin (core: Core, resolver: Resolver): SessionDecorator {
  const { store, keys, guard, events, config, codec, epochs, tally } = core

  /**
   * Deletes the records of removed entries, waits for the revocation to be durable (the index
   * and the records), reports and counts the live ones.
   */
  async function revoked (
    userId: string, indexKey: string, removed: readonly IndexEntry[], done = false
  ): Promise<number> {
    const now = config.clock()
    const live = removed.filter((e) => e.expiresAt > now)
    if (!done) {
      await discard(core, removed.map((e) => e.hash))
      await durable(core, [indexKey, ...removed.map((e) => keys.session(e.hash))])
    }
    for (const e of live) events.emit('revoked', userId, e.ref)
    return live.length
  }

  /**
   * The session an index entry points at, if it is live and (sealed) that user's; `'ended'` when
   * the entry can go: no record, another lineage, an older epoch, past its deadlines. A record
   * these secrets cannot verify is only left out, never pruned (a tool run with a subset of the
   * secrets must not end sessions).
   */
  async function info (
    userId: string, userKey: string, entry: IndexEntry, now: number
  ): Promise<SessionInfo | 'ended' | undefined> {
    const key = keys.session(entry.hash)
    const record = await guard.run(store.read(key))
    if (record === undefined || record.ref !== entry.ref || now >= record.idleExpiry ||
      now >= record.absoluteExpiry) return 'ended'
    if (!epochs.matches(await epochs.current(keys.epochOf(key)), entry.hash, record.epoch)) return 'ended'
    const view = resolver.view(record, entry.hash)
    // An entry a store writer copied from another user's index points at that user's session.
    if (record.userKey !== userKey || !view.ok || view.userId !== userId) return undefined
    const out: SessionInfo = {
      ref: entry.ref,
      createdAt: new Date(record.createdAt),
      lastSeenAt: new Date(record.idleExpiry - config.idleTimeout),
      expiresAt: new Date(Math.min(record.idleExpiry, record.absoluteExpiry)),
      authenticatedAt: record.authenticatedAt === undefined ? undefined : new Date(record.authenticatedAt),
    }
    const userAgent = codec.openMeta('userAgent', record.userAgent, entry.hash)
    const ip = codec.openMeta('ip', record.ip, entry.hash)
    if (config.sessionInfo.userAgent && typeof userAgent === 'string') out.userAgent = userAgent
    if (config.sessionInfo.ip && typeof ip === 'string') out.ip = ip
    return out
  }

  return {
    async revokeUser (userId) {
      userIdArgument(userId, 'revokeUser: userId')
      const indexKey = keys.index(keys.userKey(userId))
      // A new generation: a password login already running for this user is not admitted (its
      // credential may just have changed).
      const removed = await dismissUser(core, indexKey, undefined)
      tally.revoked('user')
      return await revoked(userId, indexKey, removed, true)
    },

    async listUserSessions (userId) {
      userIdArgument(userId, 'listUserSessions: userId')
      const now = config.clock()
      const userKey = keys.userKey(userId)
      const indexKey = keys.index(userKey)
      const entries = (await guard.run(store.members(indexKey))).filter((e) => e.expiresAt > now)
      const infos = await Promise.all(entries.map((e) => info(userId, userKey, e, now)))
      const dead = entries.filter((_e, i) => infos[i] === 'ended')
      // Entries whose session ended (idle timeout, deleted) are pruned as they are found, by
      // compare-and-set: a lineage that moved meanwhile (a regenerate) is left alone.
      if (dead.length > 0) await guard.run(store.dismiss(indexKey, dead))
      const out = infos.filter((i): i is SessionInfo => typeof i === 'object')
      return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
    },

    async revokeSession (userId, ref) {
      userIdArgument(userId, 'revokeSession: userId')
      if (typeof ref !== 'string' || !REF_PATTERN.test(ref)) return false
      // By lineage, whatever id it holds now: a regenerate racing this call cannot save it.
      const indexKey = keys.index(keys.userKey(userId))
      const removed = await guard.run(store.dismiss(indexKey, [{ ref, hash: undefined }]))
      const count = await revoked(userId, indexKey, removed)
      tally.revoked('session')
      return count > 0
    },

    async revokeAll () {
      await epochs.bump(config.durability === 'replica')
      tally.revoked('all')
      events.emit('revoked_all')
    },

    stats: () => store.stats(),
  }
}
