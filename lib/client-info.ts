/**
 * What `sessionInfo` keeps of the client at login: its IP address and user agent, both taken
 * from request headers the client (or, with `trustProxy`, anyone in front of it) writes.
 *
 * Protects the devices list, and whoever reads it (an admin page, the CLI, a log), against
 * stored injection: an `X-Forwarded-For` of 8 KB of markup, or a user agent carrying terminal
 * escapes, line breaks or bidi overrides that make one device look like another (Trojan Source,
 * CVE-2021-42574). Only a syntactically valid IP address is kept (at most 45 characters, the
 * longest textual IPv6 address: RFC 4291 §2.2); the user agent loses every control, format
 * (bidi, zero-width) and line/paragraph separator character and is capped.
 */
import { isIP } from 'node:net'

/** The longest textual IPv6 address, `ffff:…:255.255.255.255` (INET6_ADDRSTRLEN − 1). */
const MAX_IP_CHARS = 45
/** Code points of a user agent kept (real ones are under 300). */
const MAX_USER_AGENT = 512
/** Cc controls (C0, DEL, C1), Cf format characters (bidi controls, zero-width, BOM), Zl, Zp. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu

/** The client's address when it is a valid IPv4 or IPv6 address; otherwise nothing. */
export function cleanIp (ip: unknown): string | undefined {
  if (typeof ip !== 'string' || ip.length > MAX_IP_CHARS || isIP(ip) === 0) return undefined
  return ip
}

/** The user agent without invisible or line-breaking characters, at most 512 code points. */
export function cleanUserAgent (agent: unknown): string | undefined {
  if (typeof agent !== 'string') return undefined
  // Header values are bounded by Node's header size limit; the slice bounds the work anyway.
  const visible = agent.slice(0, 8 * MAX_USER_AGENT).replace(INVISIBLE, '')
  const kept = visible.length <= MAX_USER_AGENT ? visible : Array.from(visible).slice(0, MAX_USER_AGENT).join('')
  return kept === '' ? undefined : kept
}
