/**
 * What `register` says when the Redis store cannot be used: where the plugin connects (without
 * credentials), whether that transport is acceptable, which connect errors are final, and how an
 * error is described in a log line.
 *
 * Protects against two failures of operations: a start-up that waits in silence (or forever) on
 * an error that retrying cannot fix — wrong credentials, a refused or untrusted certificate — and
 * a log line or error message that leaks a Redis password (OWASP Logging Cheat Sheet: never log
 * credentials). A URL is never logged or put in a message: only its host, port and scheme.
 */
import { isIP } from 'node:net'
import { ConnectionTimeoutError, ErrorReply, SocketClosedUnexpectedlyError, SocketTimeoutError } from 'redis'
import { sessionError } from '../errors.ts'

/** Where a client connects, as far as it can be told from its options (never credentials). */
export interface RedisTarget {
  readonly host: string
  readonly port: number
  readonly tls: boolean
  /** A unix socket path: local by definition. */
  readonly path: string | undefined
}

interface SocketLike { host?: unknown, port?: unknown, tls?: unknown, path?: unknown }

/**
 * The target of client options `{ url?, socket? }`, as node-redis resolves it (the URL's host,
 * port and scheme win over `socket`). A URL that is not `redis://`, `rediss://` or `unix://` fails
 * with FST_SESSION_STORE_OPTION; the URL itself is never repeated (it may hold a password).
 */
export function targetOf (options: { url?: unknown, socket?: unknown }): RedisTarget {
  const socket = (typeof options.socket === 'object' && options.socket !== null ? options.socket : {}) as SocketLike
  let host = typeof socket.host === 'string' ? socket.host : 'localhost'
  let port = typeof socket.port === 'number' ? socket.port : 6379
  let tls = socket.tls === true
  const path = typeof socket.path === 'string' ? socket.path : undefined
  if (options.url !== undefined) {
    if (typeof options.url !== 'string') throw sessionError('FST_SESSION_STORE_OPTION', 'redis.url must be a string')
    if (options.url.startsWith('unix:')) return { host: 'localhost', port: 0, tls: false, path: options.url }
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      throw sessionError('FST_SESSION_STORE_OPTION',
        'redis.url is not a valid URL (expected redis://[[user]:password@]host[:port][/db] or rediss://…)')
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw sessionError('FST_SESSION_STORE_OPTION', 'redis.url must start with redis:// or rediss:// (TLS)')
    }
    if (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname)) {
      throw sessionError('FST_SESSION_STORE_OPTION',
        'redis.url path must be a database number, e.g. redis://host:6379/0')
    }
    const urlTls = url.protocol === 'rediss:'
    if (socket.tls !== undefined && socket.tls !== urlTls) {
      throw sessionError('FST_SESSION_STORE_OPTION',
        'redis.socket.tls contradicts the scheme of redis.url (rediss:// is TLS)')
    }
    host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost'
    port = url.port === '' ? 6379 : Number(url.port)
    tls = urlTls
  }
  return { host, port, tls, path }
}

/** `host:port` (or the socket path) for log lines. */
export function whereOf (target: RedisTarget): string {
  if (target.path !== undefined) return target.path.startsWith('unix:') ? 'a unix socket' : target.path
  return `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`
}

/** Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1 (plain or IPv4-mapped). */
export function isLoopback (host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/**
 * In production (`NODE_ENV=production`), sessions must not cross a network in plaintext: a
 * plaintext connection to a host that is not loopback fails with FST_SESSION_INSECURE_TRANSPORT
 * unless the application says `allowPlaintext: true` (e.g. a private network it trusts).
 * OWASP ASVS V9.2.2: encrypted connections to backend components.
 */
export function checkTransport (
  target: RedisTarget, allowPlaintext: boolean, env: string | undefined = process.env.NODE_ENV
): void {
  if (env !== 'production' || allowPlaintext || target.tls || target.path !== undefined ||
    isLoopback(target.host)) return
  // The table's message says what is refused; the detail says why this target and what to do.
  throw sessionError('FST_SESSION_INSECURE_TRANSPORT',
    'the host is not loopback and NODE_ENV is production; use rediss:// or socket.tls (TLS), ' +
    'or set redis.allowPlaintext: true for a private network you trust')
}

/** What kind of failure a connect error is. `retry`: may go away by itself (start-up order, a restart). */
export type ConnectFailure = 'auth' | 'permission' | 'tls' | 'handshake' | 'retry'

/** TLS and certificate failures: OpenSSL and Node codes, and X.509 verification results. */
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|ERR_OSSL_)|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT)|HOSTNAME_MISMATCH/
/** Replies a server gives while it cannot serve yet. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/

export function classify (err: unknown): ConnectFailure {
  if (err instanceof ErrorReply) {
    if (/^(WRONGPASS|NOAUTH)\b/.test(err.message) ||
      /^ERR (AUTH|invalid password|Client sent AUTH)/i.test(err.message)) return 'auth'
    if (/^NOPERM\b/.test(err.message)) return 'permission'
    return TRANSIENT_REPLY.test(err.message) ? 'retry' : 'handshake'
  }
  if (err instanceof ConnectionTimeoutError || err instanceof SocketTimeoutError ||
    err instanceof SocketClosedUnexpectedlyError) return 'retry'
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && TLS_CODE.test(code)) return 'tls'
  // System errors (ECONNREFUSED, ENOTFOUND, EAI_AGAIN, ECONNRESET, …) and anything else unknown.
  return 'retry'
}

/** The fixed phrase of the register error for each kind of failure (never runtime data). */
export const FAILURE_PHRASE: Record<ConnectFailure, string> = {
  auth: 'Redis refused the credentials (redis.username / redis.password, or the user:password in redis.url)',
  permission: 'the Redis user lacks a command the plugin needs (see docs/redis-hardening.md)',
  tls: 'the TLS handshake with Redis failed (CA, client certificate or server name)',
  handshake: 'Redis refused the connection handshake (RESP3 and CLIENT TRACKING need Redis 6 or later)',
  retry: 'Redis could not be reached within connectTimeout',
}

/** Masks `scheme://user:password@` and `AUTH …` arguments in a message from a library or server. */
export function scrub (text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@')
    .replace(/\b(AUTH)\s+\S+(\s+\S+)?/gi, '$1 ***')
}

/** A hint for errors whose cause is commonly misread. */
function hintOf (err: unknown, target: RedisTarget): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (err instanceof ConnectionTimeoutError && target.tls) {
    return 'no TLS handshake: is this a plaintext port? (rediss:// needs a TLS port)'
  }
  if (code === 'ECONNRESET' && !target.tls) return 'reset right away: is this a TLS port? (use rediss://)'
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return 'is this a plaintext port? (rediss:// needs a TLS port)'
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return 'the server requires a client certificate: set socket.cert and socket.key'
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA') return 'the server does not trust the client certificate'
  if (typeof code === 'string' && /SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) {
    return 'the server certificate is not trusted: set socket.ca'
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'the server certificate does not name this host'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve'
  if (code === 'ECONNREFUSED') return 'nothing listens on that port'
  return undefined
}

/** An error as a log object: name, code, scrubbed message and a hint; never options or credentials. */
export function describeError (err: unknown, target: RedisTarget): Record<string, string> {
  const out: Record<string, string> = {}
  if (err instanceof Error) {
    out.name = err.name
    out.message = scrub(err.message.trim())
  } else {
    out.message = 'non-error value'
  }
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') out.code = code
  const hint = hintOf(err, target)
  if (hint !== undefined) out.hint = hint
  return out
}
