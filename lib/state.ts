/**
 * One request's session state: what the store held when the request began (validated), and
 * what the request changed. `request.session` (session.ts) is a facade over it; the lifecycle
 * service (lifecycle.ts) is the only code that moves it between sessions, and the write-back
 * (write-back.ts) the only code that writes it back.
 */
import type { FieldCodec } from './field-codec.ts'
import type { OriginFacts } from './defences/csrf.ts'
import type { SessionRecord } from './store/contract.ts'

/** What the response should do with the session cookie. */
export type CookieIntent = 'none' | 'set' | 'clear'

/**
 * The request facts a session may need: `sessionInfo` at login, the origin check of
 * `loginWithPassword` (a Fastify request satisfies it).
 */
export interface ClientInfo extends OriginFacts {
  readonly headers: OriginFacts['headers'] & { readonly 'user-agent'?: string | undefined }
  /** `request.ip`: undefined when there is no client address (a unix socket listener). */
  readonly ip: string | undefined
}

export class SessionState {
  /** The cookie value this request arrived with, when it verified and its session is live. */
  raw: string | undefined
  /** The cookie verified only under an older secret: re-issue it. */
  staleCookie = false
  /** Sealed under an older secret, or meta under an older key: reseal at once (rotation). */
  reseal = false
  id: string | undefined
  /** Storage hash of `id` (crypto/ids.ts). */
  hash: string | undefined
  ref: string | undefined
  /** The session as stored; `undefined` until it exists in the store. */
  record: SessionRecord | undefined
  /** The record's user id, decrypted. */
  userId: string | undefined
  /** Changed fields: JSON text, or `undefined` for a deleted field. */
  dirty: Map<string, string | undefined> | undefined
  /** Values parsed (or set) during this request, so each request works on its own copy. */
  values: Map<string, unknown> | undefined
  cookie: CookieIntent = 'none'
  /**
   * An unsafe cross-site request that carried no session cookie: it may run, but it is never
   * given a session (no cookie a foreign page could plant, no login it could start).
   */
  foreign = false
  /** `logout()` ran: send `Clear-Site-Data`. */
  clearSite = false
  committed = false
  /** The bound cookie this request carried (device-bound sessions on). */
  boundCookie: string | undefined
  /**
   * A device-bound session whose bound cookie is missing, expired or forged: no session for
   * this request (nothing of it is read or written), only the refresh endpoint's to renew.
   */
  held: HeldSession | undefined
  /** The `Secure-Session-Registration` value a login asks the browser with. */
  registration: string | undefined
  /**
   * A bound session moved to a new id by `regenerate`: the bound cookie of the old id is expired
   * with the response, so the device refreshes with its key (nobody else can).
   */
  expireBound = false

  constructor (readonly client: ClientInfo) {}

  /** Every current field as JSON text: stored (decrypted), then this request's changes. */
  plain (codec: FieldCodec): Map<string, string> {
    const record = this.record
    const out = record === undefined || this.hash === undefined
      ? new Map<string, string>()
      : codec.plain(record, this.hash)
    for (const [key, text] of this.dirty ?? []) {
      if (text === undefined) out.delete(key)
      else out.set(key, text)
    }
    return out
  }

  /** Points this state at another session (or none), forgetting what this request changed. */
  rebind (
    id: string | undefined, hash: string | undefined, record: SessionRecord | undefined, userId: string | undefined
  ): void {
    this.raw = undefined
    this.staleCookie = false
    this.reseal = false
    this.id = id
    this.hash = hash
    this.ref = record?.ref
    this.record = record
    this.userId = userId
    this.dirty = undefined
    this.values = undefined
    this.registration = undefined
  }
}

/** A session that passed every check but the bound cookie's. */
export interface HeldSession {
  readonly hash: string
  readonly record: SessionRecord
  readonly userId: string | undefined
}
