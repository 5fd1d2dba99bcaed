/**
 * Request-forgery defence by origin, before any store access (OWASP CSRF Prevention Cheat Sheet,
 * "Verifying Origin With Standard Headers" and "Fetch Metadata Headers"; W3C Fetch Metadata).
 *
 * Checked: an unsafe request (RFC 9110 §9.2.1: anything but GET, HEAD, OPTIONS, TRACE); a
 * protocol upgrade, which is a GET (a WebSocket handshake, RFC 6455 §4.1: browsers send the
 * session cookie with it, to a sibling subdomain's page too, and never a CORS preflight — the
 * classic cross-site WebSocket hijacking); and a route the application marks state-changing.
 * A checked request is refused when
 * the browser says it is cross-site (`Sec-Fetch-Site: cross-site`) or when its `Origin` is
 * neither the request's own origin nor a trusted one (`Sec-Fetch-Site: same-origin` is trusted
 * as is). Requests without these headers (curl,
 * server-to-server) pass: they carry no ambient browser credentials. `Origin: null` (sandboxed
 * frames, privacy-sensitive redirects) is foreign.
 */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/** The request facts the check reads (a Fastify request satisfies it). */
export interface OriginFacts {
  readonly method: string
  readonly headers: { readonly origin?: string | undefined, readonly 'sec-fetch-site'?: string | string[] | undefined }
  /** `http` or `https`, as Fastify derives it (honouring `trustProxy`). */
  readonly protocol: string
  /** The Host (or trusted X-Forwarded-Host) header, with its port if any. */
  readonly host: string
}

/**
 * `same`: allowed; `foreign`: refused; `scheme`: refused, differs from ours only by http/https
 * (a proxy without `trustProxy`).
 */
export type OriginVerdict = 'same' | 'foreign' | 'scheme'

export function isUnsafe (method: string): boolean {
  return !SAFE_METHODS.has(method)
}

/**
 * A protocol upgrade (any `Upgrade` header, whatever its case, list or spacing: no browser API
 * sets one except a WebSocket handshake) or what the browser itself calls a WebSocket request.
 */
export function isUpgrade (
  headers: { readonly upgrade?: string | undefined, readonly 'sec-fetch-mode'?: string | string[] | undefined }
): boolean {
  return headers.upgrade !== undefined || headers['sec-fetch-mode'] === 'websocket'
}

/** `scheme://host[:port]`, lower-case, without the scheme's default port. */
function normalise (origin: string): string {
  const lower = origin.toLowerCase()
  if (lower.startsWith('https://') && lower.endsWith(':443')) return lower.slice(0, -4)
  if (lower.startsWith('http://') && lower.endsWith(':80')) return lower.slice(0, -3)
  return lower
}

export function createOriginCheck (trusted: ReadonlySet<string>): (request: OriginFacts) => OriginVerdict {
  const trustedNormalised = new Set([...trusted].map(normalise))
  return (request) => {
    const site = request.headers['sec-fetch-site']
    if (site === 'cross-site') return 'foreign'
    // The browser's own word that the initiator is this origin, which no page can forge; it
    // covers `Origin: null` on same-origin forms under `Referrer-Policy: no-referrer`.
    if (site === 'same-origin') return 'same'
    const origin = request.headers.origin
    if (origin === undefined) return 'same'
    const given = normalise(origin)
    const own = normalise(`${request.protocol}://${request.host}`)
    if (given === own || trustedNormalised.has(given)) return 'same'
    const schemeless = (o: string): string => o.slice(o.indexOf('://'))
    return given.includes('://') && schemeless(given) === schemeless(own) ? 'scheme' : 'foreign'
  }
}
