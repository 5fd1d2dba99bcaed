/**
 * Login throttling: failed password logins counted per account and per client IP in the store,
 * shared by every instance (NIST SP 800-63B-4 §3.2.2: verifiers SHALL limit failed attempts;
 * OWASP ASVS 5.0 V6.3).
 *
 * Every attempt is counted *before* its password is verified (a reservation), so parallel
 * attempts cannot slip past the limit between a check and an increment; a success takes its
 * reservation back from the IP counter and resets the account counter. While either counter is
 * over its limit no argon2 work is done at all.
 *
 * Protects the privacy of those counted: counter keys are keyed hashes (HMAC under a key derived
 * from the naming key, crypto/naming.ts) of the account name (NFKC, lower-cased) and of the IP (an IPv6 address counts
 * as its /64, which is what one customer usually gets), never the values themselves.
 */
import { isIPv4, isIPv6 } from 'node:net'
import type { Guard } from './guard.ts'
import type { KeyNames } from './keys.ts'
import type { Config } from './options.ts'
import type { SessionStore } from './store/types.ts'

export type Reservation =
  | { readonly throttled: false, readonly accountKey: string, readonly ipKey: string }
  | { readonly throttled: true, readonly retryAfterMs: number }

/** The part of an IP address that identifies one client: IPv4 as is, IPv6 by its /64 prefix. */
export function clientPrefix (ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return mapped[1] as string
  if (isIPv4(ip) || !isIPv6(ip)) return ip
  const [head = '', tail = ''] = ip.toLowerCase().split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
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

  /** Counts an attempt against both limits; `throttled` when either is exceeded. */
  async reserve (account: string, ip: string): Promise<Reservation> {
    const accountKey = this.#keys.throttle('a', account.normalize('NFKC').toLowerCase())
    const ipKey = this.#keys.throttle('i', clientPrefix(ip))
    const { perAccount, perIp } = this.#limits
    const [byAccount, byIp] = await Promise.all([
      this.#guard.run(this.#store.hit(accountKey, perAccount.windowMs)),
      this.#guard.run(this.#store.hit(ipKey, perIp.windowMs)),
    ])
    const waits: number[] = []
    if (byAccount.count > perAccount.max) waits.push(byAccount.ttlMs)
    if (byIp.count > perIp.max) waits.push(byIp.ttlMs)
    if (waits.length > 0) return { throttled: true, retryAfterMs: Math.max(...waits) }
    return { throttled: false, accountKey, ipKey }
  }

  /** The reserved attempt succeeded: the account starts afresh, the IP gets its attempt back. */
  async succeeded (reservation: Reservation): Promise<void> {
    if (reservation.throttled) return
    await Promise.all([
      this.#guard.run(this.#store.clearHits(reservation.accountKey)),
      this.#guard.run(this.#store.unhit(reservation.ipKey)),
    ])
  }
}
