/**
 * Reads the session cookie out of a `Cookie` header and writes `Set-Cookie` values.
 *
 * Only our cookie is looked at (no general parse of every cookie per request). Values are never
 * decoded or trusted here: the signer decides. `HttpOnly` is always set (OWASP Session
 * Management: keep the id out of reach of scripts).
 */
import type { CookieConfig } from './options.ts'

/**
 * The first `max` values of cookie `name` in `header`, in order (usually one; more if a name is
 * shadowed). Bounded so that a header stuffed with forged cookies costs a few HMACs, not hundreds.
 */
export function cookieValues (header: string, name: string, max: number): string[] {
  const out: string[] = []
  const needle = name + '='
  let from = 0
  for (;;) {
    const at = header.indexOf(needle, from)
    if (at === -1 || out.length === max) return out
    from = at + needle.length
    // Must start a cookie-pair: at the start, or after ';' and optional spaces.
    let before = at - 1
    while (before >= 0 && header.charCodeAt(before) === 32) before--
    if (before >= 0 && header.charCodeAt(before) !== 59 /* ; */) continue
    const end = header.indexOf(';', from)
    out.push((end === -1 ? header.slice(from) : header.slice(from, end)).trim())
  }
}

export interface CookieWriter {
  /** A `Set-Cookie` value carrying `value` for `maxAgeMs`. */
  set (value: string, maxAgeMs: number): string
  /** A `Set-Cookie` value that removes the cookie. */
  clear (): string
}

export function cookieWriter (cookie: CookieConfig): CookieWriter {
  const sameSite = cookie.sameSite === 'lax' ? 'Lax' : cookie.sameSite === 'strict' ? 'Strict' : 'None'
  let attributes = `; Path=${cookie.path}; HttpOnly`
  if (cookie.secure) attributes += '; Secure'
  attributes += `; SameSite=${sameSite}`
  if (cookie.domain !== undefined) attributes += `; Domain=${cookie.domain}`
  if (cookie.partitioned) attributes += '; Partitioned'
  const prefix = cookie.name + '='
  const cleared = `${prefix}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${attributes}`
  return {
    set (value, maxAgeMs) {
      const seconds = Math.max(0, Math.round(maxAgeMs / 1000))
      const expires = new Date(Date.now() + seconds * 1000).toUTCString()
      return `${prefix}${value}; Max-Age=${seconds}; Expires=${expires}${attributes}`
    },
    clear: () => cleared,
  }
}
