/**
 * A FIFO concurrency limiter with a bounded queue, for argon2 work.
 *
 * Protects against resource exhaustion: each argon2id hash holds `memoryCost` KiB and a libuv
 * thread for its whole run, so an unbounded login burst would exhaust memory and the thread pool
 * (which file system and DNS work share). At most `maxConcurrency` tasks run; up to `maxQueue`
 * wait in arrival order; beyond that a call fails at once with `FST_PASSWORD_BUSY` (503), so load
 * is shed early instead of every request timing out late (OWASP Denial of Service Cheat Sheet).
 */
import { sessionError } from '../errors.ts'

export class Limiter {
  readonly maxConcurrency: number
  readonly maxQueue: number
  #active = 0
  readonly #waiting: Array<() => void> = []

  constructor (maxConcurrency: number, maxQueue: number) {
    this.maxConcurrency = maxConcurrency
    this.maxQueue = maxQueue
  }

  /** Tasks holding a slot right now (never more than `maxConcurrency`). */
  get inFlight (): number {
    return this.#active
  }

  /** Tasks waiting for a slot (never more than `maxQueue`). */
  get queued (): number {
    return this.#waiting.length
  }

  /**
   * Runs `task` once a slot is free. The slot is taken synchronously when one is free, so the
   * counters are exact as soon as `run` returns its promise.
   */
  async run<T> (task: () => Promise<T>): Promise<T> {
    if (this.#active < this.maxConcurrency) {
      this.#active++
    } else if (this.#waiting.length < this.maxQueue) {
      // The releasing task hands its slot over directly: #active is not decremented in between,
      // so a newcomer can never overtake a waiter (FIFO) nor exceed the cap.
      await new Promise<void>((resolve) => { this.#waiting.push(resolve) })
    } else {
      throw sessionError('FST_PASSWORD_BUSY')
    }
    try {
      return await task()
    } finally {
      this.#release()
    }
  }

  #release (): void {
    const next = this.#waiting.shift()
    if (next === undefined) this.#active--
    else next()
  }
}
