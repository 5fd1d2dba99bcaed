/**
 * The per-file Redis fixture of the plugin's Redis tests: one throw-away `redis-server` started
 * before the file's tests and stopped after them, the apps and clients the tests made closed
 * first, and fresh key prefixes and user ids so that one test's keys never meet another's.
 *
 * ```ts
 * const fx = useRedis('atk', ['--enable-debug-command', 'yes'])
 * test('…', async () => {
 *   const app = await fx.app({ maxSessionBytes: 1000 }) // redis: { url: fx.redis.url }, a fresh keyPrefix
 *   fx.closers.push(() => client.close())
 * })
 * ```
 */
import { after, before } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { HardenedSessionOptions } from '../../lib/index.ts'
import { buildApp } from './app.ts'
import { startRedis, type RedisServer } from './redis-server.ts'

export interface RedisFixture {
  /** The file's redis-server (inside tests and hooks only). */
  readonly redis: RedisServer
  /** Closed after the file's tests, before the server stops. */
  readonly apps: FastifyInstance[]
  /** Run after the apps are closed (clients, stores, proxies). */
  readonly closers: Array<() => Promise<unknown>>
  /** A key prefix of its own (`<tag><n>:`). */
  freshPrefix (): string
  /** A user id of its own. */
  user (): string
  /** An app on the file's Redis with a fresh key prefix (unless `options` names one), closed after. */
  app (options?: Partial<HardenedSessionOptions>, routes?: (app: FastifyInstance) => void, server?: object): Promise<FastifyInstance>
}

/** Registers the `before`/`after` hooks of the calling test file; call it at the file's top level. */
export function useRedis (tag: string, extraArgs: string[] = []): RedisFixture {
  let server: RedisServer | undefined
  let prefixes = 0
  let users = 0
  const apps: FastifyInstance[] = []
  const closers: Array<() => Promise<unknown>> = []
  before(async () => { server = await startRedis(extraArgs) })
  after(async () => {
    // Teardown: a close that fails does not hide the result of the tests (nor stop the server).
    await Promise.all(apps.map((a) => a.close().catch(() => {})))
    for (const close of closers) await close().catch(() => {})
    await server?.stop()
  })
  const fixture: RedisFixture = {
    get redis (): RedisServer {
      if (server === undefined) throw new Error('the Redis fixture is used outside a test')
      return server
    },
    apps,
    closers,
    freshPrefix: () => `${tag}${++prefixes}:`,
    user: () => `${tag}-user-${++users}`,
    async app (options = {}, routes, serverOptions = {}) {
      const made = await buildApp({ redis: { url: fixture.redis.url }, keyPrefix: fixture.freshPrefix(), ...options }, serverOptions, routes)
      apps.push(made)
      return made
    },
  }
  return fixture
}
