/**
 * Liveness of one Redis connection, as far as serving from a local cache is concerned.
 *
 * Protects against serving revoked sessions over a link that stalled without closing (a proxy
 * holding traffic, a SIGSTOPped server, a half-open TCP connection): node-redis only notices a
 * closed socket, and invalidations stop arriving the moment the link stalls. So the connection
 * is probed with PING every `interval` ms while idle; a probe without a reply after `timeout`
 * ms (its own timer, so a stall is noticed within `interval + timeout`), or any store call
 * slower than `storeTimeout` (`suspect()`), marks the link stalled. While
 * stalled nothing may be served locally; a PING sent after the stall began and answered ends it
 * (Redis answers in order, so every invalidation sent before that reply has been processed).
 */
export interface HealthOptions {
  /** ms between probes of an idle connection. */
  interval: number
  /** ms without a reply after which the link counts as stalled. */
  timeout: number
  /** Sends one PING on the connection. */
  ping: () => Promise<unknown>
  /** Whether the client believes the connection is open (probes are pointless otherwise). */
  connected: () => boolean
  /** The link stalled (`false`) or answered again after a stall (`true`). */
  onChange: (up: boolean) => void
}

export class LinkHealth {
  readonly #options: HealthOptions
  readonly #timer: NodeJS.Timeout
  /** When the probe in flight was sent (performance.now()), or -1. */
  #sentAt = -1
  /** Fires `timeout` ms after the probe in flight was sent: a stall is noticed then, not at a later tick. */
  #deadline: NodeJS.Timeout | undefined
  #stalledAt = -1
  #closed = false

  constructor (options: HealthOptions) {
    this.#options = options
    this.#timer = setInterval(() => this.#tick(), options.interval)
    this.#timer.unref()
  }

  get stalled (): boolean {
    return this.#stalledAt !== -1
  }

  /** A call took too long: treat the link as stalled until a new probe is answered. */
  suspect (): void {
    if (this.#closed) return
    if (this.#stalledAt === -1) this.#stall()
    this.#tick()
  }

  #stall (): void {
    this.#stalledAt = performance.now()
    this.#options.onChange(false)
  }

  #tick (): void {
    if (this.#closed || !this.#options.connected()) return
    const now = performance.now()
    if (this.#sentAt !== -1) {
      if (this.#stalledAt === -1 && now - this.#sentAt >= this.#options.timeout) this.#stall()
      return
    }
    const sentAt = this.#sentAt = now
    clearTimeout(this.#deadline)
    this.#deadline = setTimeout(() => {
      if (this.#sentAt === sentAt && this.#stalledAt === -1 && !this.#closed) this.#stall()
    }, this.#options.timeout)
    this.#deadline.unref()
    this.#options.ping().then(() => {
      if (this.#sentAt === sentAt) {
        this.#sentAt = -1
        clearTimeout(this.#deadline)
      }
      // Only a probe sent after the stall began proves the link carries traffic again.
      if (this.#stalledAt === -1 || this.#closed) return
      if (sentAt >= this.#stalledAt) {
        this.#stalledAt = -1
        this.#options.onChange(true)
      } else {
        this.#tick() // an answer to a probe older than the stall: ask again at once
      }
    }, () => {
      // Connection errors are reported by the client's own events.
      if (this.#sentAt === sentAt) this.#sentAt = -1
    })
  }

  /** The connection was replaced or reconnected: forget probes of the old one. */
  reset (): void {
    this.#sentAt = -1
    this.#stalledAt = -1
  }

  close (): void {
    this.#closed = true
    clearInterval(this.#timer)
    clearTimeout(this.#deadline)
  }
}
