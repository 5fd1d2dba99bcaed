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
import type { SessionStore } from './store/types.ts'

export class Guard {
  readonly #timeout: number
  readonly #log: FastifyBaseLogger
  readonly #events: Events
  #store: SessionStore | undefined
  #down = false

  constructor (timeout: number, log: FastifyBaseLogger, events: Events) {
    this.#timeout = timeout
    this.#log = log
    this.#events = events
  }

  /** The store whose `suspect()` is called when a call times out. */
  attach (store: SessionStore): void {
    this.#store = store
  }

  /** The store went away: log and report once per outage. */
  down (err: unknown): void {
    if (this.#down) return
    this.#down = true
    const name = err instanceof Error ? err.name : 'Error'
    const message = err instanceof SessionError ? 'timed out' : err instanceof Error ? err.message : 'unknown error'
    this.#log.error({ store: { name, message } }, 'session store unavailable; requests that need a session get 503 until it recovers')
    this.#events.emit('store_error', undefined, undefined, 'FST_SESSION_STORE_UNAVAILABLE')
  }

  up (): void {
    if (!this.#down) return
    this.#down = false
    this.#log.info('session store recovered')
  }

  /** Runs a store call with the deadline; any failure becomes FST_SESSION_STORE_UNAVAILABLE (503). */
  run<T> (call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = sessionError('FST_SESSION_STORE_UNAVAILABLE')
        this.#store?.suspect?.()
        this.down(err)
        reject(err)
      }, this.#timeout)
      call.then((value) => {
        clearTimeout(timer)
        this.up()
        resolve(value)
      }, (err: unknown) => {
        clearTimeout(timer)
        this.down(err)
        reject(sessionError('FST_SESSION_STORE_UNAVAILABLE', undefined, err))
      })
    })
  }
}
