/**
 * Audit events: the one place `onEvent` is called.
 *
 * Protects against an audit hook breaking requests (its exceptions are logged, never thrown)
 * and against identifiers leaking into audit trails: events carry a session's lineage
 * reference, never its id, cookie or storage hash.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { SessionErrorCode } from './errors.ts'
import type { SessionEvent, SessionEventType } from './public-types.ts'

export class Events {
  readonly #onEvent: ((event: SessionEvent) => void) | undefined
  readonly #log: FastifyBaseLogger

  constructor (onEvent: ((event: SessionEvent) => void) | undefined, log: FastifyBaseLogger) {
    this.#onEvent = onEvent
    this.#log = log
  }

  emit (type: SessionEventType, userId?: string, sessionRef?: string, code?: SessionErrorCode): void {
    const onEvent = this.#onEvent
    if (onEvent === undefined) return
    try {
      onEvent({ type, at: new Date(), userId, sessionRef, code })
    } catch (err) {
      // An audit hook must not break the request; its error is the application's to see.
      this.#log.error({ err }, 'session onEvent handler threw')
    }
  }
}
