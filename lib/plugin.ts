/**
 * Fastify wiring, and nothing else: validates options once, assembles the services, opens the
 * store, and adds the two per-route hooks (load the session at `onRequest`, commit it at
 * `onSend`) to every route that does not opt out with `config: { session: false }` —
 * opted-out routes carry no session hook at all.
 *
 * A request travels cookie → verified id → store (or its local cache) → `request.session`
 * (resolve.ts); its changes go back through the lifecycle service (lifecycle.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { createAdmin, type SessionDecorator } from './admin.ts'
import { createFieldCodec } from './codec.ts'
import { cookieWriter } from './cookie.ts'
import type { Core } from './core.ts'
import { createFieldCipher } from './crypto/field-cipher.ts'
import { RecordSealer } from './crypto/record-seal.ts'
import { Signer } from './crypto/signer.ts'
import { sessionError } from './errors.ts'
import { Events } from './events.ts'
import { Guard } from './guard.ts'
import { ResponseHeaders } from './headers.ts'
import { KeyNames } from './keys.ts'
import { Lifecycle } from './lifecycle.ts'
import { normaliseOptions } from './options.ts'
import { IndexPruner } from './prune.ts'
import { createPasswords } from './password/index.ts'
import { Resolver } from './resolve.ts'
import { Session, stateOf } from './session.ts'
import type { SessionState } from './state.ts'
import { openRedisStore } from './store/connect.ts'
import type { SessionStore } from './store/types.ts'
import type { HardenedSessionOptions } from './types.ts'

export type { SessionDecorator } from './admin.ts'

function appendHook<T> (existing: T | T[] | undefined, hook: T): T[] {
  if (existing === undefined) return [hook]
  return Array.isArray(existing) ? [hook, ...existing] : [hook, existing]
}

async function hardenedSession (fastify: FastifyInstance, options: HardenedSessionOptions): Promise<void> {
  const config = normaliseOptions(options)
  const cipher = options.encryption === undefined ? undefined : createFieldCipher(options.encryption)
  const passwords = createPasswords(options.password, { log: fastify.log })
  const events = new Events(config.onEvent, fastify.log)
  const guard = new Guard(config.storeTimeout, fastify.log, events)

  let store: SessionStore
  let closeStore: () => Promise<void>
  if (options.store !== undefined) {
    store = options.store
    closeStore = async () => {}
  } else {
    const opened = await openRedisStore(options.redis as NonNullable<typeof options.redis>, config, fastify.log, (up, err, node) => {
      if (up) guard.up(node)
      else guard.down(err, node)
    })
    store = opened.store
    closeStore = opened.close
  }
  guard.attach(store)

  const codec = createFieldCodec(cipher, (record, _hash, field) => {
    fastify.log.warn({ sessionRef: record.ref, field }, 'encrypted session field could not be read')
    events.emit('decrypt_error', undefined, record.ref, 'FST_SESSION_DECRYPT')
  })
  const core: Core = {
    config,
    store,
    keys: new KeyNames(config.keyPrefix, config.secrets),
    signer: new Signer(config.secrets, config.cacheSize),
    sealer: new RecordSealer(config.secrets),
    codec,
    guard,
    events,
    log: fastify.log,
  }
  const resolver = new Resolver(core)
  // A login writes the index entry before the record: a missing record counts as ended only when
  // it is still missing well after the few store calls between the two.
  const pruner = new IndexPruner(store, core.keys, guard, 10 * config.storeTimeout)
  const lifecycle = new Lifecycle(core, new ResponseHeaders(config, cookieWriter(config.cookie)), pruner)

  const onRequest: onRequestHookHandler = function (request, _reply, done) {
    let begun: SessionState | Promise<SessionState>
    try {
      begun = resolver.begin(request.headers.cookie, request)
    } catch (err) {
      done(err as Error)
      return
    }
    if (!(begun instanceof Promise)) {
      request.session = new Session(lifecycle, begun)
      done()
      return
    }
    begun.then((state) => {
      request.session = new Session(lifecycle, state)
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
      pending = lifecycle.commit(stateOf(session), reply)
    } catch (err) {
      done(err as Error)
      return
    }
    if (pending === undefined) done(null, payload)
    else pending.then(() => done(null, payload), done)
  }

  fastify.decorateRequest('session', null as unknown as Session)
  fastify.decorate('session', createAdmin(core, resolver) satisfies SessionDecorator)
  fastify.decorate('passwords', passwords)

  const requireLogin: preHandlerHookHandler = function (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (request.session?.userId === undefined) done(sessionError('FST_SESSION_UNAUTHENTICATED'))
    else done()
  }
  fastify.decorate('requireLogin', requireLogin)
  fastify.decorate('requireFreshLogin', (maxAgeMs: number): preHandlerHookHandler => {
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0) throw sessionError('FST_SESSION_INVALID_ARGUMENT', 'requireFreshLogin: maxAgeMs must be a non-negative integer')
    return function (request, _reply, done) {
      const session = request.session
      if (session?.userId === undefined) {
        done(sessionError('FST_SESSION_UNAUTHENTICATED'))
        return
      }
      const at = session.authenticatedAt
      if (at === undefined || config.clock() - at.getTime() > maxAgeMs) done(sessionError('FST_SESSION_REAUTH_REQUIRED'))
      else done()
    }
  })

  fastify.addHook('onRoute', (route) => {
    if ((route.config as { session?: unknown } | undefined)?.session === false) return
    route.onRequest = appendHook(route.onRequest, onRequest)
    route.onSend = appendHook(route.onSend, onSend)
  })
  fastify.addHook('onClose', async () => {
    pruner.close()
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
