/**
 * Redis's eviction policy, checked at register on every node that holds the plugin's keys (the
 * one server, or every master of a cluster).
 *
 * Protects the state whose loss is not a logout. A session record or a user index that Redis
 * evicts ends a session (closed); but a policy that may evict keys without a TTL (`allkeys-*`)
 * can evict the global epoch (every session ends at once), the naming key ring, and the
 * login-throttle buckets (a missing counter reads as a fresh one: more guesses than the limit).
 * `noeviction` and the `volatile-*` policies evict only keys with a TTL, and the plugin keeps
 * every key whose loss would fail open without one. Anything else is refused at register with
 * FST_SESSION_EVICTION_POLICY unless the operator sets `redis.allowEviction: true`.
 *
 * The policy is read with `INFO memory` (its `maxmemory_policy` line), else `CONFIG GET
 * maxmemory-policy` (denied to least-privilege users); where neither answers, register goes on
 * and says so in the log once. The policy is read at register only: a later `CONFIG SET` is not
 * seen (docs/redis-hardening.md says so).
 */
import type { FastifyBaseLogger } from 'fastify'
import { sessionError } from '../errors.ts'

/** Policies that evict nothing, or only keys with a TTL. */
const KEEPS_KEYS_WITHOUT_TTL = new Set([
  'noeviction', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl',
])
/** How a policy name Redis reports looks (anything else is not repeated in a message). */
const POLICY_NAME = /^[a-z0-9-]{1,32}$/
const DOCS = 'docs/redis-hardening.md#5-persistence-eviction-and-restarts'

/** One node to ask: a raw command on its connection. */
export interface PolicyNode {
  send (args: string[]): Promise<unknown>
}

function within<T> (call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    call,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('no reply')), ms) }),
  ]).finally(() => clearTimeout(timer))
}

/** The value of `maxmemory-policy` in a CONFIG GET reply (a map, an object or a flat array, by protocol). */
function fromConfig (reply: unknown): unknown {
  if (reply instanceof Map) return reply.get('maxmemory-policy')
  if (Array.isArray(reply)) return reply[reply.indexOf('maxmemory-policy') + 1]
  return typeof reply === 'object' && reply !== null
    ? (reply as Record<string, unknown>)['maxmemory-policy']
    : undefined
}

/** The node's `maxmemory-policy`, or undefined when it cannot be read within `ms`. */
export async function readPolicy (node: PolicyNode, ms: number): Promise<string | undefined> {
  try {
    const info = String(await within(node.send(['INFO', 'memory']), ms))
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1]
    if (policy !== undefined) return policy
  } catch {
    // refused (NOPERM) or unanswered: try CONFIG GET
  }
  try {
    const policy = fromConfig(await within(node.send(['CONFIG', 'GET', 'maxmemory-policy']), ms))
    return typeof policy === 'string' || Buffer.isBuffer(policy) ? String(policy) : undefined
  } catch {
    return undefined
  }
}

/**
 * Reads the policy of every node; refuses (FST_SESSION_EVICTION_POLICY) when one may evict keys
 * without a TTL, unless `allow`; logs once when some node's policy could not be read, and once
 * when an evicting policy is allowed.
 */
export async function checkEvictionPolicy (
  nodes: readonly PolicyNode[], allow: boolean, log: FastifyBaseLogger, ms: number
): Promise<void> {
  const policies = await Promise.all(nodes.map((node) => readPolicy(node, ms)))
  const evicting = policies.filter((p): p is string => p !== undefined && !KEEPS_KEYS_WITHOUT_TTL.has(p))
  const unread = policies.filter((p) => p === undefined).length
  if (evicting.length > 0) {
    const named = POLICY_NAME.test(evicting[0] as string) ? `'${evicting[0]}'` : 'an unknown policy'
    const where = nodes.length > 1 ? ` on ${evicting.length} of ${nodes.length} masters` : ''
    if (!allow) {
      throw sessionError('FST_SESSION_EVICTION_POLICY',
        `maxmemory-policy ${named}${where} may evict keys without a TTL ` +
        '(the revocation epoch, the naming key ring, the login-throttle counters); ' +
        `use noeviction or a volatile-* policy, or set redis.allowEviction: true to accept the risk (${DOCS})`)
    }
    log.warn({ store: { maxmemoryPolicy: named } },
      `session store: maxmemory-policy ${named}${where} may evict the revocation epoch (every session ends), ` +
      'the naming key ring and login-throttle counters (more guesses than the limit); ' +
      `allowed by redis.allowEviction (${DOCS})`)
  }
  if (unread > 0) {
    log.warn("session store: could not read Redis's maxmemory-policy" +
      `${nodes.length > 1 ? ` on ${unread} of ${nodes.length} masters` : ''} ` +
      '(INFO and CONFIG GET refused or unanswered); ' +
      'make sure it is noeviction or a volatile-* policy: an allkeys-* policy may evict the revocation epoch, ' +
      `the naming key ring and login-throttle counters (${DOCS})`)
  }
}
