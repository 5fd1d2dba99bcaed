/**
 * What every benchmark server shares: the route shape, the listen/print-port contract and a
 * clean shutdown.
 *
 * Contract with the harness (benchmarks/harness/server-process.ts): bind 127.0.0.1 only, on the
 * port in `PORT` (0, the default, picks a free one), print `LISTENING <port>` on stdout once
 * listening, and exit 0 after closing the app on SIGTERM or SIGINT.
 *
 * Route shape (each server implements it with its own session library):
 *   POST /login   → binds `user-1` with `{ theme: 'dark' }`, sets the session cookie
 *   GET  /me      → `{ user, theme }`: the authenticated read
 *   POST /write   → sets one field `n` (body `{ n }`, or a random number each request)
 *   GET  /n       → `{ n }`: reads the written field back (the harness's write check)
 *   POST /logout  → ends the session
 */
import type { FastifyInstance } from 'fastify'

export const USER = 'user-1'
export const THEME = 'dark'
/** 32+ bytes: the hardened plugin and @fastify/session both require it. */
export const SECRET = 'benchmark-secret-'.padEnd(48, 'x')

/** The number a write request stores: the body's `n` if given, otherwise a fresh random one. */
export function writtenNumber (body: unknown): number {
  const n = (body as { n?: unknown } | null | undefined)?.n
  return typeof n === 'number' ? n : Math.random()
}

/**
 * Imports a competitor's plugin without its type declarations. @fastify/session and
 * @fastify/secure-session each augment `FastifyRequest.session` with their own type; a static
 * import here would pull those augmentations into the project's one TypeScript program and
 * clash with this plugin's `request.session`. The servers use them through `LegacySession`.
 */
export async function importUntyped (specifier: string): Promise<any> {
  return await import(specifier)
}

/** The part of @fastify/session's and @fastify/secure-session's `request.session` used here. */
export interface LegacySession {
  get (key: string): unknown
  set (key: string, value: unknown): void
  regenerate (): unknown
}

/** Reads `--name value` from argv. */
export function argValue (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}

export async function serve (app: FastifyInstance): Promise<void> {
  let closing = false
  const shutdown = (): void => {
    if (closing) return
    closing = true
    app.close().then(() => process.exit(0), (err: unknown) => {
      console.error(err)
      process.exit(1)
    })
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  await app.listen({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0) })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  process.stdout.write(`LISTENING ${port}\n`)
}
