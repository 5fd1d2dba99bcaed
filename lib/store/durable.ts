/**
 * The second Redis connection of `durability: 'replica'`: revocations are written on it and then
 * `WAIT`ed for, because WAIT blocks the connection it runs on (a slow or lost replica must delay
 * revocations only, never the connection every request reads through) and counts only that
 * connection's own writes.
 */
import type { Config } from '../config.ts'

/** The part of a node-redis client, cluster or Sentinel client that a duplicate needs. */
interface Duplicable {
  duplicate (overrides?: object): any
}

/**
 * The second connection revocations are written and WAITed for on (`durability: 'replica'`),
 * made like the first but without client-side caching; undefined with `durability: 'primary'`.
 */
export function durableConnection (conn: Duplicable, config: Config): any {
  if (config.durability !== 'replica' || typeof conn.duplicate !== 'function') return undefined
  const dup = conn.duplicate({ clientSideCache: undefined })
  // Its failures reach the caller as 503s; this keeps them from becoming uncaught exceptions.
  dup.on('error', () => {})
  return dup
}

/** Closes (or, when it never connected, discards) a connection the plugin made. */
export async function closeConnection (conn: any): Promise<void> {
  if (conn === undefined) return
  if (conn.isOpen === true) await conn.close()
  else conn.destroy?.()
}
