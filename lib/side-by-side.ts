/**
 * `fastify-hardened-session/side-by-side`: the same plugin and exports as the main entry, without
 * the type of `request.session`, for an application that runs `@fastify/session` (which types
 * `request.session` itself) beside this plugin during a migration. Register this plugin with
 * another `decorator` name and type that name yourself:
 *
 * ```ts
 * import hardenedSession, { type Session as HardenedSession } from 'fastify-hardened-session/side-by-side'
 * declare module 'fastify' {
 *   interface FastifyRequest { hardenedSession: HardenedSession }
 * }
 * await app.register(hardenedSession, { secrets, redis, decorator: 'hardenedSession' })
 * ```
 *
 * Every file of the application must then import this entry, not the main one. See
 * docs/migration.md.
 */
import hardenedSession from './plugin.ts'

export default hardenedSession
export * from './public.ts'
