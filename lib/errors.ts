/**
 * The one coded error table of the plugin.
 *
 * Every error the plugin throws or sends carries a stable `code` from this table, so that
 * applications (and TypeScript) can switch on it. Messages are fixed strings: they never
 * interpolate a session id, cookie, password, key or any other untrusted input (OWASP Logging
 * Cheat Sheet: do not log session identifiers or secrets).
 */

export const errorTable = {
  // --- register-time misconfiguration -------------------------------------------------------
  FST_SESSION_INVALID_OPTION: { statusCode: 500, message: 'Invalid fastify-hardened-session option' },
  FST_SESSION_SECRET_INVALID: { statusCode: 500, message: 'Invalid session secret' },
  FST_SESSION_COOKIE_OPTION: { statusCode: 500, message: 'Invalid session cookie option' },
  FST_SESSION_STORE_OPTION: { statusCode: 500, message: 'Invalid session store option' },
  FST_SESSION_INSECURE_TRANSPORT: {
    statusCode: 500, message: 'Refusing a plaintext Redis connection across the network in production',
  },
  FST_SESSION_ENCRYPTION_OPTION: { statusCode: 500, message: 'Invalid session encryption option' },
  FST_SESSION_EVICTION_POLICY: {
    statusCode: 500, message: "Redis's maxmemory-policy may evict keys the session security depends on",
  },
  FST_SESSION_KEYRING_MISSING: {
    statusCode: 500, message: 'No naming key ring (<keyPrefix>keyring) in the store under this key prefix',
  },
  FST_SESSION_KEYRING_SECRETS: {
    statusCode: 500,
    message:
      'The naming key ring (<keyPrefix>keyring) was made with other secrets: none of the configured secrets opens it',
  },
  FST_SESSION_KEYRING_INVALID: {
    statusCode: 500,
    message: 'An entry of the naming key ring (<keyPrefix>keyring) for a configured secret does not decrypt: ' +
      'it was altered, or written by something other than this plugin',
  },
  FST_SESSION_INVALID_ARGUMENT: { statusCode: 500, message: 'Invalid argument to a session method' },
  // --- per request --------------------------------------------------------------------------
  FST_SESSION_STORE_UNAVAILABLE: { statusCode: 503, message: 'Session store unavailable' },
  FST_SESSION_UNAUTHENTICATED: { statusCode: 401, message: 'Authentication required' },
  FST_SESSION_REAUTH_REQUIRED: { statusCode: 401, message: 'Recent authentication required' },
  FST_SESSION_TOO_LARGE: { statusCode: 500, message: 'Session exceeds maxSessionBytes and was not saved' },
  FST_SESSION_NOT_SERIALIZABLE: { statusCode: 500, message: 'Session values must be JSON-serialisable' },
  FST_SESSION_DECRYPT: { statusCode: 500, message: 'Encrypted session field could not be read' },
  FST_SESSION_CSRF: { statusCode: 403, message: 'Cross-site request refused' },
  FST_SESSION_LOGIN_THROTTLED: { statusCode: 429, message: 'Too many failed login attempts; try again later' },
  FST_SESSION_ENDED: {
    statusCode: 409, message: 'The session ended while this request ran; its changes were not saved',
  },
  // --- reported in events only ----------------------------------------------------------------
  FST_SESSION_RECORD_INVALID: { statusCode: 500, message: 'Session record failed its integrity check' },
  // --- device-bound sessions (DBSC endpoints) -----------------------------------------------
  FST_SESSION_DEVICE_PROOF: { statusCode: 400, message: 'Device-bound session proof refused' },
  FST_SESSION_DEVICE_CHALLENGE: { statusCode: 403, message: 'Device-bound session challenge missing, used or expired' },
  // --- passwords ----------------------------------------------------------------------------
  FST_PASSWORD_TOO_LONG: { statusCode: 400, message: 'Password is too long' },
  FST_PASSWORD_EMPTY: { statusCode: 400, message: 'Password must not be empty' },
  FST_PASSWORD_INVALID: { statusCode: 400, message: 'Password must be a well-formed string' },
  FST_PASSWORD_BUSY: { statusCode: 503, message: 'Too many password hashes in progress' },
  FST_PASSWORD_TOO_SHORT: { statusCode: 400, message: 'Password is too short' },
  FST_PASSWORD_COMPROMISED: { statusCode: 400, message: 'Password appears in a list of compromised passwords' },
  FST_PASSWORD_CHECK_FAILED: {
    statusCode: 503, message: 'Password could not be checked against compromised passwords',
  },
} as const satisfies Record<string, { statusCode: number, message: string }>

export type SessionErrorCode = keyof typeof errorTable

/** Error class of every error the plugin raises; `code` is one of {@link SessionErrorCode}. */
export class SessionError extends Error {
  readonly code: SessionErrorCode
  readonly statusCode: number
  /** Response headers Fastify's error handler sends with it (e.g. `Retry-After`). */
  headers?: Record<string, string>

  constructor (code: SessionErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = errorTable[code]
    // `detail` is only ever a fixed, caller-written phrase (an option name), never runtime data.
    super(detail === undefined ? entry.message : `${entry.message}: ${detail}`, options)
    this.name = 'SessionError'
    this.code = code
    this.statusCode = entry.statusCode
  }
}

export function sessionError (code: SessionErrorCode, detail?: string, cause?: unknown): SessionError {
  return new SessionError(code, detail, cause === undefined ? undefined : { cause })
}
