/**
 * The one place session response headers are written: the session cookie (through
 * `@fastify/cookie`'s `reply.setCookie`, so it sits beside the application's own cookies),
 * `Cache-Control` and `Clear-Site-Data`.
 *
 * Protects against: shared caches storing a personalised response or one that sets the session
 * cookie (RFC 9111 §5.2.2.5 `no-store`, unless the route chose its own policy), scripts reading
 * the id (`HttpOnly` always), and a logout's `Clear-Site-Data: "cookies"` wiping the session
 * cookie that a login later in the same request sets.
 */
import type { FastifyReply } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { Config } from './config.ts'
import type { SessionState } from './state.ts'

export class ResponseHeaders {
  readonly #name: string
  readonly #attributes: CookieSerializeOptions
  readonly #clearSite: string | undefined
  readonly #clearSiteWithCookie: string | undefined
  /** The bound cookie's name (`deviceBound`), expired with the session cookie. */
  readonly #bound: string | undefined

  constructor (config: Config) {
    const { name, path, domain, secure, sameSite, partitioned } = config.cookie
    this.#name = name
    this.#attributes = Object.freeze({
      path,
      httpOnly: true, // OWASP Session Management Cheat Sheet: keep the id out of reach of scripts
      secure,
      sameSite,
      ...(domain === undefined ? {} : { domain }),
      ...(partitioned ? { partitioned: true } : {}),
    })
    this.#clearSite = config.clearSiteData
    this.#clearSiteWithCookie = config.clearSiteDataWithCookie
    this.#bound = config.deviceBound?.cookieName
  }

  /** No cookie change; the response was personalised (served to an existing session). */
  personal (reply: FastifyReply): void {
    if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
  }

  /** Sets the session cookie to `value` for `maxAgeMs` (Max-Age and Expires follow the session). */
  set (reply: FastifyReply, state: SessionState, value: string, maxAgeMs: number): void {
    const seconds = Math.max(0, Math.round(maxAgeMs / 1000))
    reply.setCookie(this.#name, value, {
      ...this.#attributes, maxAge: seconds, expires: new Date(Date.now() + seconds * 1000),
    })
    if (state.expireBound && this.#bound !== undefined) reply.clearCookie(this.#bound, this.#attributes)
    this.personal(reply)
    if (state.clearSite && this.#clearSiteWithCookie !== undefined) {
      reply.header('clear-site-data', this.#clearSiteWithCookie)
    }
  }

  /** Expires the session cookie (destroy, logout). */
  clear (reply: FastifyReply, state: SessionState): void {
    reply.clearCookie(this.#name, this.#attributes)
    // A device-bound session's bound cookie goes with it (only when the request carried one).
    if (this.#bound !== undefined && state.boundCookie !== undefined) reply.clearCookie(this.#bound, this.#attributes)
    this.personal(reply)
    if (state.clearSite && this.#clearSite !== undefined) reply.header('clear-site-data', this.#clearSite)
  }
}
