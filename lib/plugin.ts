/**
 * Fastify wiring, and nothing else: validates options once, assembles the services, opens the
 * store, registers `@fastify/cookie` when the application has not, and adds two instance-level
 * hooks: load the session at `onRequest` (so every hook registered after this plugin sees it,
 * in Fastify's registration order) and commit it at `onSend`. Routes registered with
 * `config: { session: false }` are skipped by both: they never touch the store.
 *
 * A request travels cookie → verified id → store (or its local cache) → `request.session`
 * (resolve.ts); its changes go back through the write-back (write-back.ts), its moves through
 * the lifecycle service (lifecycle.ts).
 */
import type {
  FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler,
  preHandlerHookHandler,
} from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fp from 'fastify-plugin'
import { createAdmin, type SessionDecorator } from './admin.ts'
import { assembleCore } from './services.ts'
import { createOriginCheck, isUnsafe, isUpgrade } from './defences/csrf.ts'
import { DeviceBinding } from './dbsc/service.ts'
import { sessionError } from './errors.ts'
import { Events } from './events.ts'
import { Guard } from './store-deadline.ts'
import { ResponseHeaders } from './headers.ts'
import { EpochKeeper } from './epoch.ts'
import { establishNamingKey, KeyringKeeper, type KeyringOptions } from './keyring.ts'
import { KeyNames } from './key-names.ts'
import { Lifecycle } from './lifecycle.ts'
import { RecordMaker } from './record-making.ts'
import { WriteBack } from './write-back.ts'
import { loginWithPassword, type PasswordLoginDeps } from './defences/password-login.ts'
import { checkRouteSession, normaliseOptions } from './config.ts'
import { IndexPruner } from './prune.ts'
import { createPasswordsFrom } from './password/passwords.ts'
import { Resolver } from './resolve.ts'
import { Session, stateOf, type SessionOps } from './session.ts'
import type { SessionState } from './state.ts'
import { openRedisStore } from './store/connect.ts'
import type { SessionStore } from './store/contract.ts'
import { LoginThrottle } from './defences/throttle.ts'
import type { HardenedSessionOptions } from './public-types.ts'
import { Telemetry } from './telemetry.ts'

export type { SessionDecorator } from './admin.ts'

/** A request as the plugin sees it: the session under the decorator's name (`null` on `session: false` routes). */
type Carrier = Record<string, Session | null | undefined>

async function hardenedSession (fastify: FastifyInstance, options: HardenedSessionOptions): Promise<void> {
  const config = normaliseOptions(options, (message) => fastify.log.warn(message))
  const name = config.decorator
  if (fastify.hasRequestDecorator(name)) {
    throw sessionError('FST_SESSION_INVALID_OPTION', `request.${name} is already decorated (by @fastify/session?): ` +
      "to run beside it, give this plugin another name, e.g. decorator: 'hardenedSession' (docs/migration.md)")
  }
  // Metrics and traces when @opentelemetry/api is installed and a provider registered (telemetry.ts).
  const telemetry = await Telemetry.load()
  const passwords = telemetry.passwords(createPasswordsFrom(config.password, { log: fastify.log }))
  const events = new Events(config.onEvent, fastify.log)
  const guard = new Guard(config.storeTimeout, fastify.log, events, telemetry.tally)
  // The ecosystem's cookie layer: parsing on every request, `reply.setCookie` for every cookie.
  if (!fastify.hasDecorator('parseCookie')) await fastify.register(fastifyCookie)

  let store: SessionStore
  let closeStore: () => Promise<void>
  if (config.store !== undefined) {
    store = config.store
    closeStore = async () => {}
  } else {
    const redis = config.redis as NonNullable<typeof config.redis>
    const opened = await openRedisStore(redis, config, fastify.log, (up, err, node) => {
      if (up) guard.up(node)
      else guard.down(err, node)
    }, fastify.initialConfig.pluginTimeout)
    store = opened.store
    closeStore = opened.close
  }
  store = telemetry.attach(store)
  const closeOpened = closeStore
  closeStore = async () => {
    telemetry.close()
    await closeOpened()
  }
  guard.attach(store)
  const ring: KeyringOptions = {
    store,
    guard,
    prefix: config.keyPrefix,
    secrets: config.secrets,
    mayCreate: true,
    // A ring lost while sessions exist is restored by a running instance within a few probe
    // intervals; a start waits that long for it, within its connect budget.
    waitMs: Math.min(config.connectTimeout, 2000),
  }
  let naming: Buffer
  let keys: KeyNames
  let epochs: EpochKeeper
  try {
    naming = await establishNamingKey(ring)
    keys = new KeyNames(config.keyPrefix, naming, store.sharded === true)
    epochs = new EpochKeeper(store, keys, guard)
    // Learns the epoch (made here on a first start, after the ring: see keyring.ts).
    await epochs.fresh(keys.epoch)
  } catch (err) {
    await closeStore() // register failed after the store was opened: nothing may keep the process alive
    throw err
  }
  const keeper = new KeyringKeeper(ring, keys, naming, fastify.log)
  keeper.watch()
  epochs.watch()

  const core = assembleCore({
    config,
    store,
    keys,
    epochs,
    guard,
    events,
    log: fastify.log,
    tally: telemetry.tally,
    unreadable (record) {
      // The field's name is application data (it may be chosen by a visitor): never logged.
      fastify.log.warn({ sessionRef: record.ref }, 'encrypted session field could not be read')
      events.emit('decrypt_error', undefined, record.ref, 'FST_SESSION_DECRYPT')
    },
  })
  const originCheck = config.csrf === undefined ? undefined : createOriginCheck(config.csrf.trustedOrigins)
  const device = config.deviceBound === undefined ? undefined : new DeviceBinding(core, config.deviceBound)
  const resolver = new Resolver(core, device)
  // A missing record counts as ended only when it is still missing well after the few store
  // calls of a move (a record is created before its index entry; the second look is a margin).
  const pruner = new IndexPruner(store, core.keys, guard, 10 * config.storeTimeout)
  const records = new RecordMaker(core)
  const lifecycle = new Lifecycle(core, records, pruner, device, (record, hash, userId, generation) => {
    resolver.issued(record, hash, userId, generation)
  })
  const writeBack = new WriteBack(core, new ResponseHeaders(config), records)
  const passwordLogin: PasswordLoginDeps = {
    passwords,
    throttle: config.loginThrottle === undefined ? undefined : new LoginThrottle(config, store, guard, keys),
    originCheck,
    events,
    log: fastify.log,
    tally: core.tally,
    generation: (userId) => guard.run(store.generation(keys.index(keys.userKey(userId)))),
    login: (state, userId, data, generation) => lifecycle.login(state, userId, data, undefined, generation),
  }
  // What `request.session` calls: the moves, and the password login built on them.
  const ops: SessionOps = {
    codec: core.codec,
    idleTimeout: config.idleTimeout,
    now: config.clock,
    login: (state, userId, data, keep) => lifecycle.login(state, userId, data, keep),
    regenerate: (state) => lifecycle.regenerate(state),
    end: (state, type) => lifecycle.end(state, type),
    revokeOthers: (state) => lifecycle.revokeOthers(state),
    loginWithPassword: (state, args) => loginWithPassword(passwordLogin, state, args),
  }
  const cookieName = config.cookie.name
  let warnedScheme = false

  /** A cross-site unsafe request carrying our cookie: refused before any store access. */
  const forged = (request: FastifyRequest, header: string | undefined): boolean => {
    if (header === undefined || !header.includes(cookieName + '=')) return false
    const verdict = (originCheck as NonNullable<typeof originCheck>)(request)
    if (verdict === 'same') return false
    if (verdict === 'scheme' && !warnedScheme) {
      warnedScheme = true
      fastify.log.warn('session CSRF check: Origin differs from the request only by http/https; ' +
        'behind a TLS-terminating proxy, set Fastify\'s trustProxy')
    }
    events.emit('csrf')
    return true
  }

  const onRequest: onRequestHookHandler = function (request, reply, done) {
    const route = request.routeOptions.config.session
    if (route === false) {
      done()
      return
    }
    const header = request.headers.cookie
    const upgrade = isUpgrade(request.headers)
    const checked = originCheck !== undefined &&
      (upgrade || isUnsafe(request.method) || (typeof route === 'object' && route.stateChanging === true))
    if (checked && forged(request, header)) {
      // A refused HTTP/1.1 upgrade's connection is closed once the 403 is out: a WebSocket
      // plugin whose hooks run after this one never learns of it and would leave the socket
      // open. (An HTTP/2 connection carries other requests: it stays.)
      if (request.headers.upgrade !== undefined && request.raw.httpVersionMajor === 1) {
        const socket = request.raw.socket
        reply.header('connection', 'close')
        reply.raw.once('finish', () => { socket.end(() => socket.destroy()) })
      }
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
    if (checked && !(begun instanceof Promise) && begun.record === undefined && originCheck(request) !== 'same') {
      begun.foreign = true
    }
    if (!(begun instanceof Promise)) {
      (request as unknown as Carrier)[name] = new Session(ops, begun)
      done()
      return
    }
    begun.then((state) => {
      (request as unknown as Carrier)[name] = new Session(ops, state)
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
      pending = writeBack.commit(stateOf(session), reply)
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

  const requireLogin: preHandlerHookHandler = function (
    request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction
  ) {
    if ((request as unknown as Carrier)[name]?.userId === undefined) done(sessionError('FST_SESSION_UNAUTHENTICATED'))
    else done()
  }
  fastify.decorate('requireLogin', requireLogin)
  fastify.decorate('requireFreshLogin', (maxAgeMs: number): preHandlerHookHandler => {
    if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0) {
      throw sessionError('FST_SESSION_INVALID_ARGUMENT', 'requireFreshLogin: maxAgeMs must be a non-negative integer')
    }
    return function (request, _reply, done) {
      const session = (request as unknown as Carrier)[name]
      if (session?.userId === undefined) {
        done(sessionError('FST_SESSION_UNAUTHENTICATED'))
        return
      }
      const at = session.authenticatedAt
      if (at === undefined || config.clock() - at.getTime() > maxAgeMs) {
        done(sessionError('FST_SESSION_REAUTH_REQUIRED'))
      } else {
        done()
      }
    }
  })

  // A route's `config.session` is checked when the route is added, like every option.
  fastify.addHook('onRoute', (route) => {
    checkRouteSession(route.config?.session, `route ${String(route.method)} ${route.url}: config.session`)
  })
  fastify.addHook('onRequest', onRequest)
  fastify.addHook('onSend', onSend)
  if (device !== undefined) {
    // The DBSC endpoints (dbsc/service.ts), in a scope of their own that accepts any request
    // body (browsers send none that matters) and inherits the session hooks above.
    fastify.register(async (scope) => {
      scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 4096 }, (_request, _body, done) => {
        done(null, undefined)
      })
      const state = (request: FastifyRequest): SessionState => {
        const session = (request as unknown as Carrier)[name]
        if (session === null || session === undefined) throw sessionError('FST_SESSION_UNAUTHENTICATED')
        return stateOf(session)
      }
      scope.post(device.config.registrationPath,
        async (request, reply) => await device.register(state(request), request, reply, lifecycle))
      scope.post(device.config.refreshPath,
        async (request, reply) => await device.refresh(state(request), request, reply))
    })
  }
  fastify.addHook('onClose', async () => {
    keeper.close()
    epochs.close()
    pruner.close()
    await closeStore()
  })
}

/**
 * The plugin: `await app.register(hardenedSession, { secrets, redis })`. Decorates
 * `request.session` (or the name given as `decorator`), `fastify.session`, `fastify.passwords`,
 * `fastify.requireLogin` and `fastify.requireFreshLogin`. Options: {@link HardenedSessionOptions}.
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
    /**
     * `false`: this route never loads or saves a session. `{ stateChanging: true }`: a GET (or
     * HEAD) route that changes state gets the origin check of unsafe methods (403
     * `FST_SESSION_CSRF` for a foreign origin carrying the session cookie).
     */
    session?: boolean | { stateChanging?: boolean }
  }
}
