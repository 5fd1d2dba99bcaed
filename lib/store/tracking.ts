/**
 * The client-side-cache providers the plugin gives the Redis connections it creates: they keep
 * node-redis's tracking (the tracking command in every connection's handshake, an `invalidate`
 * event for every pushed invalidation) but store nothing themselves. The store keeps its own
 * cache of decoded, immutable records (store/redis.ts), so a second cache of raw replies would
 * only double the memory and add a `structuredClone` to every read.
 *
 * Tracking is broadcasting (`CLIENT TRACKING ON BCAST PREFIX <keyPrefix> NOLOOP`), chosen so that
 * no invalidation can be missed however many sessions exist:
 *   - default (per-key) tracking keeps a server-side table of every key each client read, and
 *     when it outgrows `tracking-table-max-keys` Redis evicts entries with an invalidation that
 *     it does not send to a NOLOOP client whose own command triggered the eviction (Redis 7.0
 *     `trackingInvalidateKey` skips `server.current_client`): that client keeps serving keys it
 *     is no longer told about. Without NOLOOP the push is sent, but the table still costs memory
 *     per key and per reader, and dead cookies that were looked up stay in it;
 *   - BCAST keeps no table at all: every change of a key under the prefix (writes, deletes,
 *     expiry, eviction, flush) is pushed to every connection subscribed to it. Redis memory per
 *     session does not grow with tracking, and nothing is tracked for a lookup.
 * The price of BCAST: every instance hears about every change under the prefix (cheap, see
 * docs/scaling.md), and NOLOOP does not cover writes made inside scripts: a key written by a
 * script would come back as an invalidation of the snapshot the script returned. The store
 * sends a PEXPIRE of the same key right behind each session write script, in the same Redis
 * iteration, which makes this connection the key's last modifier, so no echo comes
 * (store/redis.ts, `#write`); a foreign write in between still comes through. Plain commands of
 * this connection (DEL) are not echoed.
 */
import { BasicClientSideCache, BasicPooledClientSideCache } from 'redis'

type HandleCache = BasicClientSideCache['handleCache']

/** The handshake command: broadcast tracking of `prefix` (every key when it is empty), no echo. */
export function trackingCommand (prefix: string): string[] {
  return ['CLIENT', 'TRACKING', 'ON', 'BCAST', ...(prefix === '' ? [] : ['PREFIX', prefix]), 'NOLOOP']
}

/** What both providers do with a command: run it, and cache nothing (the store caches). */
async function uncached (...[, parser, fn, transformReply, typeMapping]: Parameters<HandleCache>): Promise<unknown> {
  const reply = await fn()
  return transformReply === undefined ? reply : transformReply(reply, parser.preserve, typeMapping)
}

/** For a single client. */
export class TrackingOnlyCache extends BasicClientSideCache {
  readonly #command: string[]

  constructor (prefix: string) {
    super()
    this.#command = trackingCommand(prefix)
  }

  override handleCache (...args: Parameters<HandleCache>): Promise<unknown> {
    return uncached(...args)
  }

  override trackingOn (): string[] {
    return [...this.#command]
  }
}

/**
 * For a cluster: node-redis shares one provider across every node connection and keeps it only
 * when it is a pooled provider (any other object is silently replaced by an unbounded reply
 * cache built from its fields). It calls `clear()` on node errors and at every topology
 * discovery; there is nothing here to clear, and the store reacts to the cluster's own
 * `node-*` events and topology changes instead (store/cluster.ts).
 */
export class TrackingOnlyPooledCache extends BasicPooledClientSideCache {
  readonly #command: string[]

  constructor (prefix: string) {
    super()
    this.#command = trackingCommand(prefix)
  }

  override handleCache (...args: Parameters<HandleCache>): Promise<unknown> {
    return uncached(...args)
  }

  override trackingOn (): string[] {
    return [...this.#command]
  }
}
