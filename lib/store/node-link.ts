/**
 * One connection to one Redis node as the store sees it: up, stalled or down, the calls in
 * flight, and one report per change of state (the `status` hook of its backend). The
 * single-connection backend (backend.ts) holds one; a Cluster (cluster.ts) one per master.
 *
 * Protects against requests for a node known to be down each waiting `storeTimeout`: they fail
 * at once instead, and a timed-out call is blamed on the link that stopped answering.
 */
import { sessionError, type SessionError } from '../errors.ts'
import { LinkHealth } from './health.ts'

/** What a link reports to its backend (a subset of `LinkReports`, backend.ts). */
export interface LinkReports {
  /** Invalidations may have been missed: drop everything held locally. */
  reset (): void
  /** The link went down (`up` false) or answered again; `node` names a cluster node. */
  status (up: boolean, err: unknown, node: string | undefined): void
}

export interface LinkTiming {
  /** ms between probes of an idle link. */
  interval: number
  /** ms without an answer after which a link counts as stalled. */
  timeout: number
}

/** A store call refused because its node is known down; already reported once by the link. */
export function nodeUnavailable (): SessionError {
  return sessionError('FST_SESSION_STORE_UNAVAILABLE', 'the store node for this key is unavailable')
}

/**
 * One connection: up (its client is ready), stalled (no answer within `timeout`), the calls in
 * flight (a timed-out call is blamed on the link that stopped answering), and one report per
 * change of state.
 */
export class NodeLink {
  readonly label: string | undefined
  readonly #hooks: LinkReports
  readonly #health: LinkHealth
  readonly #timeout: number
  #up: boolean
  /** A call failed and was reported; the next success reports recovery. */
  #failed = false
  #inflight = 0
  /** When the link last answered, or went from idle to busy (performance.now()). */
  #progressAt = 0

  constructor (
    label: string | undefined, up: boolean, timing: LinkTiming, ping: () => Promise<unknown>, hooks: LinkReports
  ) {
    this.label = label
    this.#up = up
    this.#hooks = hooks
    this.#timeout = timing.timeout
    this.#health = new LinkHealth({
      interval: timing.interval,
      timeout: timing.timeout,
      ping: () => this.track(ping()),
      connected: () => this.#up,
      onChange: (answered) => {
        hooks.reset()
        hooks.status(answered, answered ? undefined : new Error('no reply within storeTimeout'), label)
      },
    })
  }

  get up (): boolean {
    return this.#up
  }

  get serving (): boolean {
    return this.#up && !this.#health.stalled
  }

  /**
   * The client is ready (again): the tracking handshake ran before anything else on it. The
   * server may be another one now (a restart without persistence, a failover): whatever was
   * learnt from the old connection is dropped, and the store's watchers look again.
   */
  ready (): void {
    this.#health.reset()
    this.#inflight = 0
    this.#up = true
    this.#hooks.reset()
    this.#hooks.status(true, undefined, this.label)
  }

  /**
   * The client reported an error; `stillReady` when its connection survived it. Reported every
   * time (the guard logs once per outage); the local cache is dropped only when this link was
   * serving, since nothing is cached from a link that is down.
   */
  error (err: unknown, stillReady: boolean): void {
    if (this.serving) this.#hooks.reset()
    this.#up = stillReady
    this.#hooks.status(false, err, this.label)
  }

  /** The connection closed or is reconnecting. */
  closed (): void {
    if (this.serving) this.#hooks.reset()
    this.#up = false
  }

  /**
   * Counts `call` as in flight on this link until it settles. A failure is reported against
   * this link (the guard logs once per outage) and becomes the coded 503 error, which the guard
   * passes on without logging again; the next success reports the link answering again.
   * NOSCRIPT is no failure: the script runner loads the script and retries.
   */
  track<T> (call: Promise<T>): Promise<T> {
    if (this.#inflight++ === 0) this.#progressAt = performance.now()
    return call.then((value) => {
      this.#settled()
      if (this.#failed) {
        this.#failed = false
        this.#hooks.status(true, undefined, this.label)
      }
      return value
    }, (err: unknown) => {
      this.#settled()
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) throw err
      this.#failed = true
      this.#hooks.status(false, err, this.label)
      throw sessionError('FST_SESSION_STORE_UNAVAILABLE', undefined, err)
    })
  }

  #settled (): void {
    if (this.#inflight > 0) this.#inflight--
    this.#progressAt = performance.now()
  }

  /** Sends `call()` unless the link is known down or stalled. */
  send<T> (call: () => Promise<T>): Promise<T> {
    if (!this.serving) return Promise.reject(nodeUnavailable())
    return this.track(call())
  }

  /**
   * A call timed out somewhere: if this link has calls in flight and has not answered anything
   * for a while, it is stalled (Redis answers in order, so a live link makes progress).
   */
  suspect (): boolean {
    if (!this.serving || this.#inflight === 0 || performance.now() - this.#progressAt < this.#timeout / 2) return false
    this.#health.suspect()
    return true
  }

  close (): void {
    this.#health.close()
  }
}
