/**
 * The key lists of lib/store/option-check.ts against node-redis's and Node's type declarations:
 * every key the types allow in `redis`, `redis.socket`, `redis.cluster` and a cluster node is
 * either passed on or refused with a reason (never refused as unknown), and every key passed on
 * is one the types know. A new node-redis or @types/node option fails this type-check until the
 * lists say what to do with it.
 */
import type { RedisClientOptions, RedisClusterOptions } from 'redis'
import type { CLIENT_KEYS, CLUSTER_KEYS, CLUSTER_SET, NODE_KEYS, PLUGIN_SET, SOCKET_KEYS } from '../../lib/store/option-check.ts'

type KeysOfUnion<T> = T extends unknown ? keyof T : never
/** `true` when `T` is `never`; otherwise the type of the leftover keys, which `true` does not fit. */
type None<T> = [T] extends [never] ? true : T

type Socket = NonNullable<RedisClientOptions['socket']>
type ClusterNode = RedisClusterOptions['rootNodes'][number]

export const everySocketKeyIsKnown: None<Exclude<KeysOfUnion<Socket>, typeof SOCKET_KEYS[number]>> = true
export const everyClientKeyIsDecided: None<Exclude<keyof RedisClientOptions, typeof CLIENT_KEYS[number] | keyof typeof PLUGIN_SET>> = true
export const clientKeysExist: None<Exclude<typeof CLIENT_KEYS[number], keyof RedisClientOptions>> = true
export const everyClusterKeyIsDecided: None<Exclude<keyof RedisClusterOptions, typeof CLUSTER_KEYS[number] | keyof typeof CLUSTER_SET>> = true
export const clusterKeysExist: None<Exclude<typeof CLUSTER_KEYS[number], keyof RedisClusterOptions>> = true
export const everyNodeKeyIsDecided: None<Exclude<keyof ClusterNode, typeof NODE_KEYS[number] | keyof typeof PLUGIN_SET>> = true
