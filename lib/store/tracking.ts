/**
 * The client-side-cache provider the plugin gives the Redis clients it creates: it keeps
 * node-redis's tracking (`CLIENT TRACKING ON` on every connection, `invalidate` events for every
 * pushed invalidation) but stores nothing itself. The store keeps its own cache of decoded,
 * immutable records (store/redis.ts), so a second cache of raw replies would only double the
 * memory and add a `structuredClone` to every read.
 *
 * Tracking is NOLOOP: Redis does not echo this connection's own writes back as invalidations
 * (the write scripts return the session as written, which the store caches instead).
 */
import { BasicClientSideCache } from 'redis'

type HandleCache = BasicClientSideCache['handleCache']

export class TrackingOnlyCache extends BasicClientSideCache {
  override async handleCache (...[, parser, fn, transformReply, typeMapping]: Parameters<HandleCache>): Promise<unknown> {
    const reply = await fn()
    return transformReply === undefined ? reply : transformReply(reply, parser.preserve, typeMapping)
  }

  override trackingOn (): string[] {
    return ['CLIENT', 'TRACKING', 'ON', 'NOLOOP']
  }
}
