/**
 * Metrics and traces through `@opentelemetry/api`, an optional peer dependency: loaded once, at
 * register, by a guarded dynamic import. Without it, or when no meter or tracer provider is
 * registered by then, nothing is wrapped and nothing is recorded: what remains are the plain
 * integer counters below (`n++`), which the plugin keeps in any case.
 *
 * Cheap on the per-request path: the cached read is counted by the store's own `stats()`
 * counters and everything else by plain integers; observable counters read them when the
 * metric reader collects (once per export interval), so a registered meter provider adds no
 * work to a request. Store round trips and password verifications (milliseconds each) get a
 * span and a histogram sample.
 *
 * Protects against telemetry leaking identities: every attribute value is one of the fixed
 * strings below (an operation, an outcome, a kind); span status messages carry an error code,
 * never an error's message. No id, user id, account, IP, key name or secret reaches an exporter.
 */
import type { Meter, ObservableCounter, Span, Tracer } from '@opentelemetry/api'
import type { Passwords } from './password/index.ts'
import type { SessionStore, StoreStats } from './store/contract.ts'

type Api = typeof import('@opentelemetry/api')

/** The instrumentation scope every meter and tracer of the plugin uses. */
export const SCOPE = 'fastify-hardened-session'

const OUTCOMES = ['ok', 'failed', 'throttled'] as const
/** `session.logins` attribute `outcome`. */
export type LoginOutcome = typeof OUTCOMES[number]

const KINDS = ['logout', 'destroy', 'session', 'others', 'user', 'all', 'limit'] as const
/**
 * `session.revocations` attribute `kind`: `logout()`, `destroy()`, `revokeSession`,
 * `revokeOthers`, `revokeUser`, `revokeAll`, and a login beyond `maxSessionsPerUser`.
 */
export type RevocationKind = typeof KINDS[number]

/** The store calls timed and traced (every method returning a promise but `close`). */
type AsyncMethod = {
  [K in keyof SessionStore]-?: NonNullable<SessionStore[K]> extends (...args: never[]) => Promise<unknown>
    ? K
    : never
}[keyof SessionStore]
const TIMED: Record<Exclude<AsyncMethod, 'close'>, true> = {
  read: true,
  create: true,
  update: true,
  destroy: true,
  take: true,
  getMember: true,
  admit: true,
  dismiss: true,
  dismissAll: true,
  members: true,
  getEpoch: true,
  getWithEpoch: true,
  replaceEpoch: true,
  bumpEpoch: true,
  exists: true,
  generation: true,
  hit: true,
  readHits: true,
  unhit: true,
  release: true,
  clearHits: true,
  keyring: true,
  durable: true,
}

/** Store round trips: ms buckets from a local Redis (sub-ms) to a call at `storeTimeout` (1 s default). */
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

/** Counts kept by the plugin whether or not anything exports them (plain integers). */
export class Tally {
  /** Store calls that failed or missed their deadline (each call once). */
  storeErrors = 0
  readonly logins: Record<LoginOutcome, number> = { ok: 0, failed: 0, throttled: 0 }
  readonly revocations: Record<RevocationKind, number> = {
    logout: 0, destroy: 0, session: 0, others: 0, user: 0, all: 0, limit: 0,
  }

  login (outcome: LoginOutcome): void {
    this.logins[outcome]++
  }

  revoked (kind: RevocationKind): void {
    this.revocations[kind]++
  }
}

/** One plugin instance as the meter sees it. */
interface Source { readonly tally: Tally, readonly store: SessionStore }

/** Cumulative counter values of one instance (or of all, summed). */
interface Totals {
  hits: number
  misses: number
  invalidations: number
  errors: number
  logins: Record<LoginOutcome, number>
  revocations: Record<RevocationKind, number>
}

function zero (): Totals {
  return {
    hits: 0,
    misses: 0,
    invalidations: 0,
    errors: 0,
    logins: { ok: 0, failed: 0, throttled: 0 },
    revocations: { logout: 0, destroy: 0, session: 0, others: 0, user: 0, all: 0, limit: 0 },
  }
}

function add (into: Totals, tally: Tally, stats: StoreStats): void {
  into.hits += stats.cacheHits
  into.misses += stats.cacheMisses
  into.invalidations += stats.invalidations ?? 0
  into.errors += tally.storeErrors
  for (const o of OUTCOMES) into.logins[o] += tally.logins[o]
  for (const k of KINDS) into.revocations[k] += tally.revocations[k]
}

/**
 * The instruments of one meter, shared by every plugin instance reporting to it (two apps in one
 * process): one batch callback sums them, so each series has one value per collection. An
 * instance that closes leaves its last counts behind, so the counters never go down.
 */
class Registry {
  readonly #sources = new Set<Source>()
  readonly #retired = zero()
  readonly histogram: ReturnType<Meter['createHistogram']>

  constructor (meter: Meter, api: Api) {
    const int = { valueType: api.ValueType.INT }
    const counter = (name: string, description: string): ObservableCounter =>
      meter.createObservableCounter(name, { ...int, description })
    const hits = counter('session.cache.hits', 'Session reads answered from the local cache, with no command sent')
    const misses = counter('session.cache.misses', 'Session reads that had to ask the store')
    const invalidations = counter('session.invalidations',
      'Invalidations pushed by Redis to this process (one per key changed under the prefix by another client)')
    const errors = counter('session.store.errors', 'Store calls that failed or exceeded storeTimeout')
    const logins = counter('session.logins', 'Logins by outcome: ok, failed (wrong password), throttled')
    const revocations = counter('session.revocations', 'Revocation calls by kind')
    const entries = meter.createObservableGauge('session.cache.entries', {
      ...int,
      description: 'Entries held in the local cache (records, index entries, epochs)',
    })
    this.histogram = meter.createHistogram('session.store.duration', {
      unit: 'ms',
      description: 'Store round trips by operation',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    })
    const outcome = Object.fromEntries(OUTCOMES.map((o) => [o, { outcome: o }])) as
      Record<LoginOutcome, { outcome: string }>
    const kind = Object.fromEntries(KINDS.map((k) => [k, { kind: k }])) as Record<RevocationKind, { kind: string }>
    meter.addBatchObservableCallback((result) => {
      const total = structuredClone(this.#retired)
      let cached: number | undefined
      for (const source of this.#sources) {
        const stats = source.store.stats()
        add(total, source.tally, stats)
        if (stats.cacheEntries !== undefined) cached = (cached ?? 0) + stats.cacheEntries
      }
      result.observe(hits, total.hits)
      result.observe(misses, total.misses)
      result.observe(invalidations, total.invalidations)
      result.observe(errors, total.errors)
      for (const o of OUTCOMES) result.observe(logins, total.logins[o], outcome[o])
      for (const k of KINDS) result.observe(revocations, total.revocations[k], kind[k])
      if (cached !== undefined) result.observe(entries, cached)
    }, [hits, misses, invalidations, errors, logins, revocations, entries])
  }

  join (source: Source): void {
    this.#sources.add(source)
  }

  leave (source: Source): void {
    if (!this.#sources.delete(source)) return
    add(this.#retired, source.tally, source.store.stats())
  }
}

const registries = new WeakMap<Meter, Registry>()

let loading: Promise<Api | undefined> | undefined

/** `@opentelemetry/api`, or undefined when it is not installed (imported once per process). */
function loadApi (): Promise<Api | undefined> {
  loading ??= import('@opentelemetry/api').then((api) => api, () => undefined)
  return loading
}

/** A span's end: status ERROR with a code only (a message may name a key or an address). */
function endSpan (api: Api, span: Span, err?: unknown): void {
  if (err !== undefined) {
    const coded = (err as { code?: unknown } | null)?.code
    const named = err instanceof Error ? err.name : 'Error'
    const code = typeof coded === 'string' && coded.startsWith('FST_') ? coded : named
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: code })
  }
  span.end()
}

/**
 * One plugin instance's telemetry. `load()` at register; `attach(store)` once the store is open;
 * `close()` with the instance.
 */
export class Telemetry {
  readonly tally = new Tally()
  readonly #api: Api | undefined
  readonly #registry: Registry | undefined
  readonly #tracer: Tracer | undefined
  #source: Source | undefined
  readonly #attributes = new Map<string, { operation: string }>()
  readonly #spanAttributes = new Map<string, { 'session.store.operation': string }>()

  private constructor (api: Api | undefined) {
    this.#api = api
    if (api === undefined) return
    // The providers registered now are the ones used: register the OpenTelemetry SDK before the plugin.
    const meter = api.metrics.getMeter(SCOPE)
    if (meter.constructor !== api.createNoopMeter().constructor) {
      let registry = registries.get(meter)
      if (registry === undefined) registries.set(meter, registry = new Registry(meter, api))
      this.#registry = registry
    }
    type Delegating = { getDelegateTracer?: (name: string) => Tracer | undefined }
    const provider = api.trace.getTracerProvider() as ReturnType<Api['trace']['getTracerProvider']> & Delegating
    // The global provider is a proxy; without a delegate (no SDK registered) every span is a no-op.
    if (typeof provider.getDelegateTracer !== 'function' || provider.getDelegateTracer(SCOPE) !== undefined) {
      this.#tracer = api.trace.getTracer(SCOPE)
    }
  }

  /** Loads `@opentelemetry/api` if it is installed and looks up the registered providers. */
  static async load (): Promise<Telemetry> {
    return new Telemetry(await loadApi())
  }

  /** Whether a meter or tracer provider is registered: only then is anything recorded. */
  get recording (): boolean {
    return this.#registry !== undefined || this.#tracer !== undefined
  }

  /**
   * Starts reporting the store's counters and returns the store the plugin should use: the same
   * store when nothing records, else one whose round trips are timed and traced (its
   * synchronous local reads are the store's own methods, bound).
   */
  attach (store: SessionStore): SessionStore {
    if (this.#registry !== undefined) {
      this.#source = { tally: this.tally, store }
      this.#registry.join(this.#source)
    }
    if (!this.recording) return store
    const wrapped: Record<string, unknown> = {}
    const target = store as unknown as Record<string, unknown>
    const seen = new Set<string>()
    const next = (proto: object): object | null => Object.getPrototypeOf(proto) as object | null
    for (let proto: object | null = store; proto !== null && proto !== Object.prototype; proto = next(proto)) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        if (name === 'constructor' || seen.has(name)) continue
        seen.add(name)
        const value = (Object.getOwnPropertyDescriptor(proto, name) as PropertyDescriptor).value as unknown
        if (typeof value !== 'function') {
          // A getter or a plain value (`notifies`, `sharded`): read from the store each time.
          Object.defineProperty(wrapped, name, { get: () => target[name], enumerable: true })
          continue
        }
        const method = (value as (...args: unknown[]) => unknown).bind(store)
        wrapped[name] = Object.hasOwn(TIMED, name)
          ? (...args: unknown[]) => this.#timed(name, () => method(...args) as Promise<unknown>)
          : method
      }
    }
    return wrapped as unknown as SessionStore
  }

  /** The password helpers with verification traced (the same object when nothing traces). */
  passwords (passwords: Passwords): Passwords {
    if (this.#tracer === undefined) return passwords
    const trace = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => (...args: A): Promise<R> =>
      this.#span('session.password.verify', undefined, () => fn(...args))
    return Object.freeze({
      hashPassword: passwords.hashPassword,
      hash: passwords.hash,
      needsRehash: passwords.needsRehash,
      verifyPassword: trace(passwords.verifyPassword),
      verify: trace(passwords.verify),
      verifyAndUpgrade: trace(passwords.verifyAndUpgrade),
      options: passwords.options,
      get inFlight () { return passwords.inFlight },
      get queued () { return passwords.queued },
      get operations () { return passwords.operations },
    }) satisfies Passwords
  }

  /** The instance is closing: its counts stay in the meter's totals, its store is no longer read. */
  close (): void {
    if (this.#source !== undefined) this.#registry?.leave(this.#source)
    this.#source = undefined
  }

  /** Runs `call` inside a span (a child of the active context: the request's, under `@fastify/otel`). */
  #span<T> (
    name: string, attributes: Record<string, string> | undefined, call: () => Promise<T>, done?: (ok: boolean) => void
  ): Promise<T> {
    const api = this.#api as Api
    const tracer = this.#tracer
    let span: Span | undefined
    let promise: Promise<T>
    try {
      if (tracer === undefined) promise = call()
      else {
        span = tracer.startSpan(name, attributes === undefined ? undefined : { attributes }, api.context.active())
        promise = api.context.with(api.trace.setSpan(api.context.active(), span), call)
      }
    } catch (err) {
      if (span !== undefined) endSpan(api, span, err)
      done?.(false)
      throw err
    }
    promise.then(() => {
      if (span !== undefined) endSpan(api, span)
      done?.(true)
    }, (err: unknown) => {
      if (span !== undefined) endSpan(api, span, err)
      done?.(false)
    })
    return promise
  }

  /** A store round trip: a span, and its duration in the histogram when it settles. */
  #timed (operation: string, call: () => Promise<unknown>): Promise<unknown> {
    const started = performance.now()
    const histogram = this.#registry?.histogram
    let metric = this.#attributes.get(operation)
    if (metric === undefined) this.#attributes.set(operation, metric = { operation })
    let span = this.#spanAttributes.get(operation)
    if (span === undefined) this.#spanAttributes.set(operation, span = { 'session.store.operation': operation })
    return this.#span(`session.store.${operation}`, span, call, histogram === undefined
      ? undefined
      : () => { histogram.record(performance.now() - started, metric) })
  }
}
