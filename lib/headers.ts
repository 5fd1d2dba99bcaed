/**
 * The one place session response headers are written: `Set-Cookie`, `Cache-Control` and
 * `Clear-Site-Data`.
 *
 * Protects against: shared caches storing a personalised response or one that sets the session
 * cookie (RFC 9111 §5.2.2.5 `no-store`, unless the route chose its own policy), and a logout's
 * `Clear-Site-Data: "cookies"` wiping the session cookie that a login later in the same request
 * sets (W3C Clear Site Data §4.1: the browser clears after processing `Set-Cookie`).
 */
import type { FastifyReply } from 'fastify'
import type { CookieWriter } from './cookie.ts'
import type { Config } from './options.ts'
import type { SessionState } from './state.ts'

export class ResponseHeaders {
  readonly #cookies: CookieWriter
  readonly #clearSite: string | undefined
  readonly #clearSiteWithCookie: string | undefined

  constructor (config: Config, cookies: CookieWriter) {
    this.#cookies = cookies
    this.#clearSite = config.clearSiteData
    this.#clearSiteWithCookie = config.clearSiteDataWithCookie
  }

  /** No cookie change; the response was personalised (served to an existing session). */
  personal (reply: FastifyReply): void {
    if (reply.getHeader('cache-control') === undefined) reply.header('cache-control', 'no-store')
  }

  /** Sets the session cookie to `value` for `maxAgeMs`. */
  set (reply: FastifyReply, state: SessionState, value: string, maxAgeMs: number): void {
    reply.header('set-cookie', this.#cookies.set(value, maxAgeMs))
    this.personal(reply)
    if (state.clearSite && this.#clearSiteWithCookie !== undefined) reply.header('clear-site-data', this.#clearSiteWithCookie)
  }

  /** Expires the session cookie (destroy, logout). */
  clear (reply: FastifyReply, state: SessionState): void {
    reply.header('set-cookie', this.#cookies.clear())
    this.personal(reply)
    if (state.clearSite && this.#clearSite !== undefined) reply.header('clear-site-data', this.#clearSite)
  }
}
