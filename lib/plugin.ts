/**
 * Fastify wiring, and nothing else: validates options once, assembles the services, opens the
 * store, registers `@fastify/cookie` when the application has not, and adds two instance-level
 * hooks: load the session at `onRequest` (so every hook registered after this plugin sees it,
 * in Fastify's registration order) and commit it at `onSend`. Routes registered with
 * `config: { session: false }` are skipped by both: they never touch the store.
 *
 * A request travels cookie → verified id → store (or its local cache) → `request.session`
 * (resolve.ts); its changes go back through the lifecycle service (lifecycle.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fp from 'fastify-plugin'
import { createAdmin, type SessionDecorator } from './admin.ts'
import { createFieldCodec } from './codec.ts'
import type { Core } from './core.ts'
import { createOriginCheck, isUnsafe } from './csrf.ts'
import { createFieldCipher } from './crypto/field-cipher.ts'
import { RecordSealer } from './crypto/record-seal.ts'
import { Signer } from './crypto/signer.ts'
import { sessionError } from './errors.ts'
import { Events } from './events.ts'
import { Guard } from './guard.ts'
import { ResponseHeaders } from './headers.ts'
import { establishNamingKey } from './crypto/naming.ts'
import { KeyNames, keyringKey } from './keys.ts'
import { Lifecycle } from './lifecycle.ts'
import { normaliseOptions } from './options.ts'
import { IndexPruner } from './prune.ts'
import { createPasswords } from './password/index.ts'
import { Resolver } from './resolve.ts'
import { Session, stateOf } from './session.ts'
import type { SessionState } from './state.ts'
import { openRedisStore } from './store/connect.ts'
import { checkRedisOption, checkStoreOption } from './store/option-check.ts'
import type { SessionStore } from './store/types.ts'
import { LoginThrottle } from './throttle.ts'
import type { HardenedSessionOptions } from './types.ts'

export type { SessionDecorator } from './admin.ts'

/** A request as the plugin sees it: the session under the decorator's name (`null` on `session: false` routes). */
type Carrier = Record<string, Session | null | undefined>

async function hardenedSession (fastify: FastifyInstance, options: HardenedSessionOptions): Promise<void> {
  const config = normaliseOptions(options, (message) => fastify.log.warn(message))
  if (options.store !== undefined) checkStoreOption(options.store)
  else checkRedisOption(options.redis)
  const name = config.decorator
  if (fastify.hasRequestDecorator(name)) {
    throw sessionError('FST_SESSION_INVALID_OPTION', `request.${name} is already decorated (by @fastify/session?): ` +
      "to run beside it, give this plugin another name, e.g. decorator: 'hardenedSession' (docs/migration.md)")
  }
  const cipher = options.encryption === undefined ? undefined : createFieldCipher(options.encryption)
  const passwords = createPasswords(options.password, { log: fastify.log })
  const events = new Events(config.onEvent, fastify.log)
  const guard = new Guard(config.storeTimeout, fastify.log, events)
  // The ecosystem's cookie layer: parsing on every request, `reply.setCookie` for every cookie.
  if (!fastify.hasDecorator('parseCookie')) await fastify.register(fastifyCookie)

  let store: SessionStore
  let closeStore: () => Promise<void>
  if (options.store !== undefined) {
    store = options.store
    closeStore = async () => {}
  } else {
    const opened = await openRedisStore(options.redis as NonNullable<typeof options.redis>, config, fastify.log, (up, err, node) => {
      if (up) guard.up(node)
      else guard.down(err, node)
    }, fastify.initialConfig.pluginTimeout)
    store = opened.store
    closeStore = opened.close
  }
  guard.attach(store)
  let keys: KeyNames
  try {
    keys = new KeyNames(config.keyPrefix, await establishNamingKey((proposals, create) => guard.run(store.keyring(keyringKey(config.keyPrefix), proposals, create)), config.secrets))
  } catch (err) {
    await closeStore() // register failed after the store was opened: nothing may keep the process alive
    throw err
  }

  const codec = createFieldCodec(cipher, (record, _hash, field) => {
    fastify.log.warn({ sessionRef: record.ref, field }, 'encrypted session field could not be read')
    events.emit('decrypt_error', undefined, record.ref, 'FST_SESSION_DECRYPT')
  })
  const core: Core = {
    config,
    store,
    keys,
    signer: new Signer(config.secrets, config.cacheSize),
    sealer: new RecordSealer(config.secrets),
    codec,
    guard,
    events,
    log: fastify.log,
  }
  const originCheck = config.csrf === undefined ? undefined : createOriginCheck(config.csrf.trustedOrigins)
  const resolver = new Resolver(core)
  // A missing record counts as ended only when it is still missing well after the few store
  // calls of a move (a record is created before its index entry; the second look is a margin).
  const pruner = new IndexPruner(store, core.keys, guard, 10 * config.storeTimeout)
  const lifecycle = new Lifecycle(core, new ResponseHeaders(config), {
    passwords,
    throttle: config.loginThrottle === undefined ? undefined : new LoginThrottle(config, store, guard, keys),
    originCheck,
    events,
    log: fastify.log,
  }, pruner)
  const cookieName = config.cookie.name
  let warnedScheme = false

  /** A cross-site unsafe request carrying our cookie: refused before any store access. */
  const forged = (request: FastifyRequest, header: string | undefined): boolean => {
    if (header === undefined || !header.includes(cookieName + '=')) return false
    const verdict = (originCheck as NonNullable<typeof originCheck>)(request)
    if (verdict === 'same') return false
    if (verdict === 'scheme' && !warnedScheme) {
      warnedScheme = true
      fastify.log.warn('session CSRF check: Origin differs from the request only by http/https; behind a TLS-terminating proxy, set Fastify\'s trustProxy')
    }
    events.emit('csrf')
    return true
  }

  const onRequest: onRequestHookHandler = function (request, _reply, done) {
    if (request.routeOptions.config.session === false) {
      done()
      return
    }
    const header = request.headers.cookie
    const checked = originCheck !== undefined && isUnsafe(request.method)
    if (checked && forged(request, header)) {
      done(sessionError('FST_SESSION_CSRF'))
      return
    }
    let begun: SessionState | Promise<SessionState>
    try {
      begun = resolver.begin(header, request.cookies ?? null, request)
    } catch (err) {
      done(err as Error)
      return
    }
    // Without our cookie a cross-site request passes, but must not be handed a session.
    if (checked && !(begun instanceof Promise) && begun.record === undefined && originCheck(request) !== 'same') begun.foreign = true
    if (!(begun instanceof Promise)) {
      (request as unknown as Carrier)[name] = new Session(lifecycle, begun)
      done()
      return
    }
    begun.then((state) => {
      (request as unknown as Carrier)[name] = new Session(lifecycle, state)
      done()
    }, done)
  }

  const onSend: onSendHookHandler = function (request, reply, payload, done) {
    const session = (request as unknown as Carrier)[name]
    if (session === null || session === undefined) {
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

  fastify.decorateRequest(name, null)
  fastify.decorate('session', createAdmin(core, resolver) satisfies SessionDecorator)
  fastify.decorate('passwords', passwords)

  const requireLogin: preHandlerHookHandler = function (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    if ((request as unknown as Carrier)[name]?.userId === undefined) done(sessionError('FST_SESSION_UNAUTHENTICATED'))
    else done()
  }
  fastify.decorate('requireLogin', requireLogin)
  fastify.decorate('requireFreshLogin', (maxAgeMs: number): preHandlerHookHandler => {
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0) throw sessionError('FST_SESSION_INVALID_ARGUMENT', 'requireFreshLogin: maxAgeMs must be a non-negative integer')
    return function (request, _reply, done) {
      const session = (request as unknown as Carrier)[name]
      if (session?.userId === undefined) {
        done(sessionError('FST_SESSION_UNAUTHENTICATED'))
        return
      }
      const at = session.authenticatedAt
      if (at === undefined || config.clock() - at.getTime() > maxAgeMs) done(sessionError('FST_SESSION_REAUTH_REQUIRED'))
      else done()
    }
  })

  fastify.addHook('onRequest', onRequest)
  fastify.addHook('onSend', onSend)
  fastify.addHook('onClose', async () => {
    pruner.close()
    await closeStore()
  })
}

/**
 * The plugin: `await app.register(hardenedSession, { secrets, redis })`. Decorates
 * `request.session` (or the name given as `decorator`), `fastify.session`, `fastify.passwords`, `fastify.requireLogin` and
 * `fastify.requireFreshLogin`. Options: {@link HardenedSessionOptions}.
 */
export default fp(hardenedSession, { fastify: '5.x', name: 'fastify-hardened-session' })

// `request.session` is typed in request-type.ts, which the main entry loads and the
// side-by-side entry does not (@fastify/session types `request.session` too).
declare module 'fastify' {
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
