/**
 * The type of `request.session`, loaded by the main entry (index.ts). The side-by-side entry
 * (side-by-side.ts) leaves it out: `@fastify/session` types `request.session` as its own object,
 * and two declarations of one property cannot coexist in a program.
 */
import type { Session } from './session.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The session; `null` on routes registered with `config: { session: false }`. */
    session: Session
  }
}

export {}
