/**
 * Fastify wiring: validates options once, opens the store, and adds the two per-route hooks
 * (load the session at `onRequest`, commit it at `onSend`) to every route that does not opt out
 * with `config: { session: false }` — opted-out routes carry no session hook at all.
 *
 * A request travels cookie → verified id → store (or its local cache) → `request.session`;
 * see manager.ts for those four stops and session.ts for the commit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { cookieWriter } from './cookie.ts'
import { createFieldCipher } from './crypto/field-cipher.ts'
import { Signer } from './crypto/signer.ts'
import { sessionError } from './errors.ts'
import { Manager } from './manager.ts'
import { normaliseOptions } from './options.ts'
import { createPasswords } from './password/index.ts'
import { Session } from './session.ts'
import { openRedisStore } from './store/connect.ts'
import type { SessionStore } from './store/types.ts'
import type { HardenedSessionOptions, SessionInfo } from './types.ts'

export interface SessionDecorator {
  revokeUser (userId: string): Promise<number>
  listUserSessions (userId: string): Promise<SessionInfo[]>
  stats (): { cacheHits: number, cacheMisses: number }
}

function appendHook<T> (existing: T | T[] | undefined, hook: T): T[] {
  if (existing === undefined) return [hook]
  return Array.isArray(existing) ? [hook, ...existing] : [hook, existing]
}

async function hardenedSession (fastify: FastifyInstance, options: HardenedSessionOptions): Promise<void> {
  const config = normaliseOptions(options)
  const cipher = options.encryption === undefined ? undefined : createFieldCipher(options.encryption)
  const passwords = createPasswords(options.password, { log: fastify.log })

  let store: SessionStore
  let closeStore: () => Promise<void>
  // Outage reports go to the manager, which exists only once the store does.
  const late: { manager?: Manager } = {}
  if (options.store !== undefined) {
    store = options.store
    closeStore = async () => {}
  } else {
    const opened = await openRedisStore(options.redis as NonNullable<typeof options.redis>, config, fastify.log, (up, err) => {
      if (up) late.manager?.storeUp()
      else late.manager?.storeDown(err)
    })
    store = opened.store
    closeStore = opened.close
  }
  const m = new Manager(config, store, new Signer(config.secrets), cipher, cookieWriter(config.cookie), fastify.log)
  late.manager = m

  const onRequest: onRequestHookHandler = function (request, _reply, done) {
    let begun: Session | Promise<Session>
    try {
      begun = m.begin(request.headers.cookie)
    } catch (err) {
      done(err as Error)
      return
    }
    if (begun instanceof Session) {
      request.session = begun
      done()
      return
    }
    begun.then((session) => {
      request.session = session
      done()
    }, done)
  }

  const onSend: onSendHookHandler = function (request, reply, payload, done) {
    const session = request.session
    if (session === null) {
      done(null, payload)
      return
    }
    let pending: Promise<void> | undefined
    try {
      pending = session.commit(reply)
    } catch (err) {
      done(err as Error)
      return
    }
    if (pending === undefined) done(null, payload)
    else pending.then(() => done(null, payload), done)
  }

  fastify.decorateRequest('session', null as unknown as Session)
  fastify.decorate('session', {
    revokeUser: (userId: string) => m.revokeUser(userId),
    listUserSessions: (userId: string) => m.listUserSessions(userId),
    stats: () => m.stats(),
  } satisfies SessionDecorator)
  fastify.decorate('passwords', passwords)

  const requireLogin: preHandlerHookHandler = function (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (request.session?.userId === undefined) done(sessionError('FST_SESSION_UNAUTHENTICATED'))
    else done()
  }
  fastify.decorate('requireLogin', requireLogin)
  fastify.decorate('requireFreshLogin', (maxAgeMs: number): preHandlerHookHandler => {
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0) throw new TypeError('requireFreshLogin: maxAgeMs must be a non-negative integer')
    return function (request, _reply, done) {
      const session = request.session
      if (session?.userId === undefined) {
        done(sessionError('FST_SESSION_UNAUTHENTICATED'))
        return
      }
      const at = session.authenticatedAt
      if (at === undefined || Date.now() - at.getTime() > maxAgeMs) done(sessionError('FST_SESSION_REAUTH_REQUIRED'))
      else done()
    }
  })

  fastify.addHook('onRoute', (route) => {
    if ((route.config as { session?: unknown } | undefined)?.session === false) return
    route.onRequest = appendHook(route.onRequest, onRequest)
    route.onSend = appendHook(route.onSend, onSend)
  })
  fastify.addHook('onClose', async () => {
    await closeStore()
  })
}

export default fp(hardenedSession, { fastify: '5.x', name: 'fastify-hardened-session' })

declare module 'fastify' {
  interface FastifyRequest {
    /** The session; `null` on routes registered with `config: { session: false }`. */
    session: Session
  }
  interface FastifyInstance {
    session: SessionDecorator
    passwords: import('./password/index.ts').Passwords
    requireLogin: preHandlerHookHandler
    requireFreshLogin (maxAgeMs: number): preHandlerHookHandler
  }
  interface FastifyContextConfig {
    /** `false`: this route never loads or saves a session. */
    session?: boolean
  }
}
