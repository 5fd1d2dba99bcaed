/**
 * The DBSC header values and session instructions this plugin sends (W3C WebAppSec DBSC draft,
 * `spec.bs`: "Secure-Session-Registration", "Secure-Session-Challenge", "JSON Session
 * Instruction Format"). Pure: values in, strings and objects out.
 */
import type { Binding } from './binding.ts'
import { ALGORITHMS } from './proof.ts'
import { serializeList, Token } from './sf.ts'

const NONE = new Map<string, never>()

/**
 * `Secure-Session-Registration: (ES256 RS256);path="…";challenge="…"`: an RFC 9651 list whose
 * member is an inner list of algorithm tokens, the endpoint path and the challenge as sf-strings.
 */
export function registrationHeader (path: string, challenge: string): string {
  return serializeList([{
    items: ALGORITHMS.map((alg) => ({ value: new Token(alg), params: NONE })),
    params: new Map([['path', path], ['challenge', challenge]]),
  }])
}

/** `Secure-Session-Challenge: "…";id="…"`: the challenge for the session the browser knows by `id`. */
export function challengeHeader (challenge: string, id: string): string {
  return serializeList([{ value: challenge, params: new Map([['id', id]]) }])
}

export interface CookieShape {
  readonly name: string
  readonly path: string
  readonly domain: string | undefined
  readonly secure: boolean
  readonly sameSite: 'lax' | 'strict' | 'none'
}

/** The attributes the browser matches its bound cookie against (RFC 6265bis syntax; Max-Age/Expires do not count). */
export function cookieAttributes (cookie: CookieShape): string {
  const parts = [`Path=${cookie.path}`]
  if (cookie.domain !== undefined) parts.push(`Domain=${cookie.domain}`)
  if (cookie.secure) parts.push('Secure')
  parts.push('HttpOnly', `SameSite=${cookie.sameSite.charAt(0).toUpperCase()}${cookie.sameSite.slice(1)}`)
  return parts.join('; ')
}

export interface SessionInstructions {
  readonly session_identifier: string
  readonly refresh_url: string
  readonly continue: boolean
  readonly scope: {
    readonly include_site: boolean,
    readonly scope_specification: ReadonlyArray<{ readonly type: 'include' | 'exclude', readonly path: string }>
  }
  readonly credentials: ReadonlyArray<{ readonly type: 'cookie', readonly name: string, readonly attributes: string }>
  readonly allowed_refresh_initiators: readonly string[]
}

/**
 * The session instructions of a registration (and of each refresh): origin-scoped (the scope's
 * origin defaults to the endpoint's), one bound cookie, refreshes at `refreshPath`. The endpoints
 * themselves are excluded from the scope (every host of the origin: no `domain`, which means
 * `*`), so a browser never defers them behind a refresh.
 */
export function instructions (
  binding: Pick<Binding, 'id'>,
  paths: { readonly registrationPath: string, readonly refreshPath: string },
  cookie: CookieShape
): SessionInstructions {
  return {
    session_identifier: binding.id,
    refresh_url: paths.refreshPath,
    continue: true,
    scope: {
      include_site: false,
      scope_specification: [
        { type: 'exclude', path: paths.registrationPath },
        { type: 'exclude', path: paths.refreshPath },
      ],
    },
    credentials: [{ type: 'cookie', name: cookie.name, attributes: cookieAttributes(cookie) }],
    allowed_refresh_initiators: [],
  }
}
