/**
 * A node-redis Sentinel client (`createSentinel`) as the store's connection: every command goes
 * to the current master, and nothing is cached locally.
 *
 * Protects against serving a revoked session after a lost invalidation. A Sentinel client does
 * not tell its owner when one of its master connections drops and reconnects: its `client-error`
 * events stay on an internal object, and the `error` pass-through is an option
 * (`passthroughClientErrorEvents`) that cannot be read back from the client (@redis/client
 * 6.3.1, sentinel/index.js). Invalidations pushed while a connection was down are lost, and the
 * store would not know to drop its copies, so the local cache is off: every read asks the master,
 * which is always current. Failover (`reconnecting`, then `ready` on the new master) is handled
 * by node-redis; requests get 503 in between.
 */
import type { Connection } from './redis.ts'

/** The subset of a RedisSentinel this module uses. */
interface SentinelLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect (): Promise<unknown>
  getMasterNode (): unknown
  getSentinelNode (): unknown
  sendCommand (isReadonly: boolean, args: string[]): Promise<unknown>
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
}

export function isSentinel (value: object): value is SentinelLike {
  return typeof (value as { getMasterNode?: unknown }).getMasterNode === 'function' &&
    typeof (value as { getSentinelNode?: unknown }).getSentinelNode === 'function' &&
    typeof (value as { sendCommand?: unknown }).sendCommand === 'function'
}

/** The store's view of a Sentinel client: master only (never a replica), no client-side cache. */
export function sentinelConnection (sentinel: SentinelLike): Connection {
  return {
    get isReady () { return sentinel.isReady },
    clientSideCache: undefined,
    on: (event, listener) => sentinel.on(event, listener),
    off: (event, listener) => sentinel.off(event, listener),
    sendCommand: (args: string[]) => sentinel.sendCommand(false, args),
  }
}
