/**
 * Every store call runs through here: a deadline (`storeTimeout`, one plain timer per call, no
 * per-command AbortSignal), a single coded failure (503 `FST_SESSION_STORE_UNAVAILABLE`), and
 * one log line and one `store_error` event per outage (plus one line on recovery), however many
 * requests fail meanwhile.
 *
 * Protects against hanging requests and log floods during an outage, and — by telling the store
 * when a call timed out (`suspect`) — against serving cached sessions over a stalled link.
 */
import type { FastifyBaseLogger } from 'fastify'
import { sessionError, SessionError } from './errors.ts'
import type { Events } from './events.ts'
import type { SessionStore } from './store/contract.ts'
import { Tally } from './telemetry.ts'

export class Guard {
  readonly #timeout: number
  readonly #log: FastifyBaseLogger
  readonly #events: Events
  readonly #tally: Tally
  #store: SessionStore | undefined
  #down = false
  /** Cluster nodes reported down, each logged once per outage. */
  readonly #nodesDown = new Set<string>()

  /** `tally.storeErrors` counts every call that fails or misses its deadline (once each). */
  constructor (timeout: number, log: FastifyBaseLogger, events: Events, tally = new Tally()) {
    this.#timeout = timeout
    this.#log = log
    this.#events = events
    this.#tally = tally
  }

  /** The store whose `suspect()` is called when a call times out. */
  attach (store: SessionStore): void {
    this.#store = store
  }

  /** The store (or, with `node`, one node of a cluster) went away: log and report once per outage. */
  down (err: unknown, node?: string): void {
    const name = err instanceof Error ? err.name : 'Error'
    const message = err instanceof SessionError ? 'timed out' : err instanceof Error ? err.message : 'unknown error'
    if (node !== undefined) {
      if (this.#nodesDown.has(node)) return
      this.#nodesDown.add(node)
      this.#log.error({ store: { node, name, message } },
        'session store node unavailable; requests for its keys get 503 until it recovers')
    } else {
      if (this.#down) return
      this.#down = true
      this.#log.error({ store: { name, message } },
        'session store unavailable; requests that need a session get 503 until it recovers')
    }
    this.#events.emit('store_error', undefined, undefined, 'FST_SESSION_STORE_UNAVAILABLE')
  }

  up (node?: string): void {
    if (node !== undefined) {
      if (this.#nodesDown.delete(node)) this.#log.info({ store: { node } }, 'session store node recovered')
      return
    }
    if (!this.#down) return
    this.#down = false
    this.#log.info('session store recovered')
  }

  /** Runs a store call with the deadline; any failure becomes FST_SESSION_STORE_UNAVAILABLE (503). */
  run<T> (call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let late = false
      const timer = setTimeout(() => {
        late = true
        this.#tally.storeErrors++
        const err = sessionError('FST_SESSION_STORE_UNAVAILABLE')
        // A store that can blame a stalled link reports that link's outage itself.
        if (this.#store?.suspect?.() !== true) this.down(err)
        reject(err)
      }, this.#timeout)
      call.then((value) => {
        clearTimeout(timer)
        this.up()
        resolve(value)
      }, (err: unknown) => {
        clearTimeout(timer)
        // Refused by the store itself for a link known to be down (already reported once), or a
        // refusal that is no outage at all (a write over maxSessionBytes): passed on as it is.
        if (err instanceof SessionError) {
          if (err.code !== 'FST_SESSION_STORE_UNAVAILABLE') this.up()
          else if (!late) this.#tally.storeErrors++
          reject(err)
          return
        }
        if (!late) this.#tally.storeErrors++
        this.down(err)
        reject(sessionError('FST_SESSION_STORE_UNAVAILABLE', undefined, err))
      })
    })
  }
}
