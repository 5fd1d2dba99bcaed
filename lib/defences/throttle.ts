/**
 * Login throttling: failed password logins counted in the store, shared by every instance
 * (NIST SP 800-63B-4 §3.2.2: verifiers SHALL limit failed attempts; OWASP ASVS 5.0 V6.3).
 *
 * Every attempt is counted *before* its password is verified (a reservation), atomically with
 * the compare, so parallel attempts on any number of instances cannot slip past a limit. While a
 * counter is over its limit no argon2 work is done at all. Three counters:
 *   - per account: the folded account name (defences/fold.ts), so that look-alike names (case, width,
 *     whitespace, invisible characters, trailing dots) are one account for counting, whether or
 *     not the account exists (no enumeration by who gets throttled when);
 *   - per user: the user id the attempt would log in as, when there is a hash to verify, so
 *     that names the application resolves to one user by rules of its own (Gmail dots, aliases)
 *     still share one limit. An unknown account reads a counter it never writes, so it costs the
 *     same store round trips as a known one;
 *   - per client: the IP address (an IPv6 address counts as its /64, what one customer usually
 *     gets), counted first: a client over its limit touches no other counter, so one address
 *     cannot fill the store with counters. No valid address (a unix socket listener): no
 *     per-client counter.
 * A success ends only its own user's failures: the per-user counter is deleted, and the hits
 * counted for this user in the account counter (its share) are taken out — never the failures
 * counted against another user whose name folds alike (`alice` against `Alice`). The IP gets
 * the successful attempt back.
 *
 * Counters are fields of bucket hashes without a TTL, so no volatile-* eviction policy can drop
 * one (a missing counter reads as fresh); any store error fails the attempt closed (503, no
 * verify). Protects the privacy of those counted: every field name is a keyed hash (HMAC under
 * a key derived from the naming key, key-names.ts), never the account, user id or IP.
 */
import { isIP } from 'node:net'
import { foldAccount } from './fold.ts'
import type { Guard } from '../store-deadline.ts'
import type { KeyNames } from '../key-names.ts'
import type { Config } from '../config.ts'
import type { SessionStore } from '../store/contract.ts'

interface Counter { readonly key: string, readonly field: string }

export type Reservation =
  | {
    readonly throttled: false
    readonly account: Counter
    /** The successful user's share of the account counter, and its own counter. */
    readonly user: { readonly share: Counter, readonly counter: Counter } | undefined
    readonly ip: Counter | undefined
  }
  | { readonly throttled: true, readonly retryAfterMs: number }

/** The part of an IP address that identifies one client: IPv4 as is, IPv6 by its /64 prefix. */
export function clientPrefix (ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return mapped[1] as string
  // IPv4-mapped in hexadecimal (`::ffff:c000:207`) is the same IPv4 client.
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip)
  if (hex !== null) {
    const [hi, lo] = [parseInt(hex[1] as string, 16), parseInt(hex[2] as string, 16)]
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  }
  if (isIP(ip) !== 6) return ip
  const [bare = ''] = ip.toLowerCase().split('%') // a zone index names an interface, not a client
  const [head = '', tail = ''] = bare.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = ip.includes('::')
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64'
}

export class LoginThrottle {
  readonly #limits: NonNullable<Config['loginThrottle']>
  readonly #store: SessionStore
  readonly #guard: Guard
  readonly #keys: KeyNames

  constructor (config: Config, store: SessionStore, guard: Guard, keys: KeyNames) {
    this.#limits = config.loginThrottle as NonNullable<Config['loginThrottle']>
    this.#store = store
    this.#guard = guard
    this.#keys = keys
  }

  /**
   * Counts an attempt against every limit; `throttled` when any is exceeded. `user`: the id a
   * success would log in as, when there is a hash to verify; `ip`: `request.ip`, if any.
   */
  async reserve (account: string, user: string | undefined, ip: string | undefined): Promise<Reservation> {
    const { perAccount, perIp } = this.#limits
    const keys = this.#keys
    const store = this.#store
    const folded = foldAccount(account)
    const byAccount = keys.throttle('a', folded)
    const mine = user === undefined
      ? undefined
      : { share: keys.throttle('s', folded + '\0' + user, byAccount.key), counter: keys.throttle('u', user) }
    const byIp = typeof ip === 'string' && isIP(ip) !== 0 ? keys.throttle('i', clientPrefix(ip)) : undefined
    const guard = this.#guard
    // The client first: once it is over its limit, its attempts create no account counters, so
    // one address cannot fill the store with counters (which no volatile-* policy evicts).
    if (byIp !== undefined) {
      const i = await guard.run(store.hit(byIp.key, byIp.field, perIp.windowMs))
      if (i.count > perIp.max) return { throttled: true, retryAfterMs: i.ttlMs }
    }
    const perUser = mine === undefined ? keys.throttle('n', folded) : mine.counter
    const [a, u] = await Promise.all([
      guard.run(store.hit(byAccount.key, byAccount.field, perAccount.windowMs, mine?.share.field)),
      guard.run(mine === undefined
        ? store.readHits(perUser.key, perUser.field)
        : store.hit(perUser.key, perUser.field, perAccount.windowMs)),
    ])
    const waits: number[] = []
    if (a.count > perAccount.max) waits.push(a.ttlMs)
    if (mine !== undefined && u.count > perAccount.max) waits.push(u.ttlMs)
    if (waits.length > 0) return { throttled: true, retryAfterMs: Math.max(...waits) }
    return { throttled: false, account: byAccount, user: mine, ip: byIp }
  }

  /** The reserved attempt succeeded: its user starts afresh, the IP gets its attempt back. */
  async succeeded (reservation: Reservation): Promise<void> {
    if (reservation.throttled) return
    const { account, user, ip } = reservation
    const store = this.#store
    await Promise.all([
      user === undefined ? undefined : this.#guard.run(store.release(account.key, account.field, user.share.field)),
      user === undefined ? undefined : this.#guard.run(store.clearHits(user.counter.key, user.counter.field)),
      ip === undefined ? undefined : this.#guard.run(store.unhit(ip.key, ip.field)),
    ])
  }
}
