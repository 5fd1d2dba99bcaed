/**
 * What every benchmark server shares: the route shape, the listen/print-port contract and a
 * clean shutdown.
 *
 * Contract with the harness (benchmarks/harness/server-process.ts): bind 127.0.0.1 only, on the
 * port in `PORT` (0, the default, picks a free one), print `LISTENING <port>` on stdout once
 * listening, and exit 0 after closing the app on SIGTERM or SIGINT.
 *
 * Route shape (each server implements it with its own session library):
 *   POST /login   → binds `user-1` with `{ theme: 'dark', profile: PROFILE }`, sets the session cookie
 *   GET  /me      → `{ user, theme }`: the authenticated read
 *   POST /write   → sets one object-valued field `cart` (`cartFor`: its `n` from the body `{ n }`,
 *                   or a random number each request)
 *   GET  /n       → `{ n }`: the written cart's `n` (the harness's write check)
 *   POST /logout  → ends the session
 */
import type { FastifyInstance } from 'fastify'

export const USER = 'user-1'
export const THEME = 'dark'
/** 32+ bytes: the hardened plugin and @fastify/session both require it. */
export const SECRET = 'benchmark-secret-'.padEnd(48, 'x')

/** An object-valued field stored at login, as applications keep a profile in the session. */
export const PROFILE = { name: 'User One', locale: 'en-GB', timeZone: 'Europe/Berlin', roles: ['reader', 'editor'] }

export interface Cart {
  readonly n: number
  readonly items: ReadonlyArray<{ readonly sku: string, readonly qty: number }>
  readonly updatedAt: number
}

/** The one field a write request stores: a cart whose `n` is the body's, or a fresh random one. */
export function cartFor (body: unknown): Cart {
  const given = (body as { n?: unknown } | null | undefined)?.n
  const n = typeof given === 'number' ? given : Math.random()
  return { n, items: [{ sku: 'SKU-1042', qty: 2 }, { sku: 'SKU-2210', qty: 1 }], updatedAt: Date.now() }
}

/** `n` of a stored cart (undefined when there is none). */
export function cartNumber (cart: unknown): number | undefined {
  const n = (cart as { n?: unknown } | null | undefined)?.n
  return typeof n === 'number' ? n : undefined
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
