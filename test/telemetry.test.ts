/**
 * Metrics and traces through @opentelemetry/api, read back with the OpenTelemetry SDK's own
 * readers (a manual metric reader, the in-memory span exporter) on a real Redis: what a cached
 * read, a logout elsewhere and a stalled link look like to an operator, that spans nest under
 * @fastify/otel's request span, that no attribute carries anything identifying, and that the
 * package works where @opentelemetry/api is not installed at all.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { DataPointType, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import hardenedSession, { createMemoryStore, hashPassword, type HardenedSessionOptions } from '../lib/index.ts'
import { Telemetry } from '../lib/telemetry.ts'
import { buildApp, eventually, idOf, login, refOf, SECRET, sessionCookie } from './helpers/app.ts'
import { ensureBuilt, root, scratchDir } from './helpers/build.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'
import { startProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const

/** A reader the test collects from when it chooses (the SDK's base reader, no timer). */
class ManualReader extends MetricReader {
  protected override async onForceFlush (): Promise<void> {}
  protected override async onShutdown (): Promise<void> {}
}

interface Point { readonly attributes: Record<string, unknown>, readonly value: number | Histogram }

/** Every data point of the plugin's instruments, by instrument name. */
async function collect (reader: ManualReader): Promise<Map<string, Point[]>> {
  const { resourceMetrics } = await reader.collect()
  const out = new Map<string, Point[]>()
  for (const scope of resourceMetrics.scopeMetrics) {
    if (scope.scope.name !== 'fastify-hardened-session') continue
    for (const metric of scope.metrics) {
      const points = (metric.dataPoints as Array<{ attributes: Record<string, unknown>, value: number | Histogram }>).map((p) => ({ attributes: p.attributes, value: p.value }))
      out.set(metric.descriptor.name, [...(out.get(metric.descriptor.name) ?? []), ...points])
      if (metric.descriptor.name === 'session.store.duration') assert.equal(metric.dataPointType, DataPointType.HISTOGRAM)
    }
  }
  return out
}

/** The value of a counter's point with these attributes (0 when absent). */
function value (points: Map<string, Point[]>, name: string, attributes: Record<string, string> = {}): number {
  const point = (points.get(name) ?? []).find((p) => JSON.stringify(p.attributes) === JSON.stringify(attributes))
  return point === undefined ? 0 : point.value as number
}

const spans = new InMemorySpanExporter()
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] })
let redis: RedisServer
let proxy: TcpProxy
const apps: FastifyInstance[] = []

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(tracerProvider)
  redis = await startRedis()
  proxy = await startProxy(redis.port)
})
after(async () => {
  proxy.resume()
  await Promise.all(apps.map((a) => a.close()))
  await proxy.close()
  await redis.stop()
  await tracerProvider.shutdown()
  metrics.disable()
})

/**
 * Builds an app while a fresh MeterProvider is the global one (the plugin takes the meter at
 * register), so that two instances in this process report to two readers, like two processes.
 */
async function metered (build: () => Promise<FastifyInstance>): Promise<{ app: FastifyInstance, reader: ManualReader }> {
  const reader = new ManualReader()
  metrics.disable()
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
  try {
    const app = await build()
    apps.push(app)
    return { app, reader }
  } finally {
    metrics.disable()
  }
}

/**
 * Runs `call` under a span of the test's own, so that the spans it causes can be told apart from
 * those of the other apps' background store calls (key ring and epoch watchers), which start
 * traces of their own. Returns the trace id.
 */
async function traced (call: () => Promise<unknown>): Promise<string> {
  const span = tracerProvider.getTracer('test').startSpan('test')
  try {
    await context.with(trace.setSpan(context.active(), span), call)
  } finally {
    span.end()
  }
  return span.spanContext().traceId
}

/** The store spans of one trace. */
function storeSpans (traceId: string): string[] {
  return spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId).map((s) => s.name).filter((n) => n.startsWith('session.store.'))
}

test('telemetry: with no meter or tracer provider registered nothing is wrapped; with one the store is', async () => {
  metrics.disable()
  trace.disable()
  try {
    const idle = await Telemetry.load()
    assert.equal(idle.recording, false)
    const store = createMemoryStore()
    assert.equal(idle.attach(store), store, 'the plugin uses the store itself')
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new ManualReader()] }))
    const metered = await Telemetry.load()
    assert.equal(metered.recording, true)
    const wrapped = metered.attach(store)
    assert.notEqual(wrapped, store)
    assert.equal(wrapped.peek('absent'), store.peek('absent'), 'local reads go to the store')
    metered.close()
    await store.close()
  } finally {
    metrics.disable()
    trace.setGlobalTracerProvider(tracerProvider)
  }
})

test('telemetry: a cached read counts a hit and makes no store span', async () => {
  const elsewhere = await buildApp({ redis: { url: redis.url } })
  apps.push(elsewhere)
  const { app, reader } = await metered(() => buildApp({ redis: { url: redis.url } }))
  const invalidations = app.session.stats().invalidations ?? 0
  const cookie = await login(elsewhere, 'u-cached')
  // The login's invalidations (its record and its user's index) reach this instance first: an
  // index entry read while its invalidation is still on the way is used but not cached.
  await eventually(async () => (app.session.stats().invalidations ?? 0) - invalidations >= 2, 2000, 'the login\'s invalidations arrived')
  // First read on this instance: a miss, one round trip with its span and duration.
  const first = await traced(async () => {
    assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  })
  const before = await collect(reader)
  assert.equal(value(before, 'session.cache.misses'), 1)
  assert.ok(storeSpans(first).includes('session.store.getWithEpoch'), `spans: ${storeSpans(first).join(', ')}`)
  assert.ok((before.get('session.store.duration') ?? []).some((p) => p.attributes.operation === 'getWithEpoch' && (p.value as Histogram).count === 1))
  // Second read: served from the local cache.
  const second = await traced(async () => {
    assert.equal((await app.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  })
  const after = await collect(reader)
  assert.equal(value(after, 'session.cache.hits') - value(before, 'session.cache.hits'), 1, 'one hit')
  assert.equal(value(after, 'session.cache.misses') - value(before, 'session.cache.misses'), 0, 'no miss')
  assert.deepEqual(storeSpans(second), [], 'no store round trip, so no store span')
  assert.ok(value(after, 'session.cache.entries') >= 1, 'the gauge sees the cached record')
  // The same numbers as stats(), read at collection time.
  assert.equal(value(after, 'session.cache.hits'), app.session.stats().cacheHits)
})

test('telemetry: a logout on instance A shows as invalidations on instance B', async () => {
  const a = await metered(() => buildApp({ redis: { url: redis.url } }))
  const b = await metered(() => buildApp({ redis: { url: redis.url } }))
  const cookie = await login(a.app, 'u-invalidated')
  assert.equal((await b.app.inject({ url: '/private', headers: { cookie } })).statusCode, 200) // cached on B
  const before = value(await collect(b.reader), 'session.invalidations')
  const out = await a.app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  assert.equal(out.statusCode, 200)
  // The index entry and the record changed: B hears of both.
  await eventually(async () => value(await collect(b.reader), 'session.invalidations') >= before + 2, 2000, 'B counts the invalidations')
  assert.equal(value(await collect(a.reader), 'session.revocations', { kind: 'logout' }), 1, 'A counts the logout')
  assert.equal(value(await collect(b.reader), 'session.revocations', { kind: 'logout' }), 0, 'B revoked nothing')
  assert.equal((await b.app.inject({ url: '/private', headers: { cookie } })).statusCode, 401)
})

test('telemetry: a stalled store shows as store errors and as latency', async () => {
  const STORE_TIMEOUT = 300
  const a = await buildApp({ redis: { url: redis.url } })
  apps.push(a)
  const b = await metered(() => buildApp({ redis: { url: proxy.url }, storeTimeout: STORE_TIMEOUT }))
  const cookie = await login(a, 'u-stalled')
  assert.equal(value(await collect(b.reader), 'session.store.errors'), 0)
  proxy.stall()
  try {
    // Not in B's cache: a round trip, which gets no answer.
    const res = await b.app.inject({ url: '/private', headers: { cookie } })
    assert.equal(res.statusCode, 503)
    assert.ok(value(await collect(b.reader), 'session.store.errors') >= 1, 'the timed-out call is a store error')
  } finally {
    proxy.resume()
  }
  // The stalled call completes once the link moves again: its duration shows the stall.
  await eventually(async () => {
    const read = (await collect(b.reader)).get('session.store.duration') ?? []
    return read.some((p) => p.attributes.operation === 'getWithEpoch' && ((p.value as Histogram).max ?? 0) >= STORE_TIMEOUT)
  }, 5000, 'a getWithEpoch duration of at least storeTimeout')
  const stalled = spans.getFinishedSpans().filter((s) => s.name === 'session.store.getWithEpoch' && s.duration[0] * 1000 + s.duration[1] / 1e6 >= STORE_TIMEOUT)
  assert.ok(stalled.length >= 1, 'its span shows the stall too')
})

test('telemetry: store and password spans nest under the request span of @fastify/otel', async () => {
  const instrumentation = new FastifyOtelInstrumentation()
  instrumentation.setTracerProvider(tracerProvider)
  const hash = await hashPassword('correct horse battery staple', CHEAP)
  const app = Fastify()
  await app.register(instrumentation.plugin())
  await app.register(hardenedSession, { secrets: [SECRET], redis: { url: redis.url }, password: CHEAP } as HardenedSessionOptions)
  app.post('/login', async (req) => await req.session.loginWithPassword({ account: 'nest@example.com', hash, password: 'correct horse battery staple', userId: 'u-nest' }))
  await app.ready()
  apps.push(app)
  spans.reset()
  const res = await app.inject({ method: 'POST', url: '/login' })
  assert.equal(res.statusCode, 200)
  const finished = spans.getFinishedSpans()
  const request = finished.find((s) => s.name === 'request')
  assert.ok(request !== undefined, `spans: ${finished.map((s) => s.name).join(', ')}`)
  const byId = new Map(finished.map((s) => [s.spanContext().spanId, s]))
  // Other apps of this file run background store calls (key ring and epoch watchers): their
  // spans are roots of traces of their own. The login's spans must be in the request's trace.
  const ours = finished.filter((s) => s.name.startsWith('session.') && s.spanContext().traceId === request.spanContext().traceId)
  assert.ok(ours.some((s) => s.name === 'session.password.verify'), 'a password verification span in the request')
  assert.ok(ours.some((s) => s.name === 'session.store.admit'), 'a store span for the login in the request')
  assert.ok(ours.some((s) => s.name === 'session.store.create'), 'the new record\'s store span in the request')
  for (const span of ours) {
    let parent = span.parentSpanContext?.spanId
    let reached = false
    for (let depth = 0; parent !== undefined && depth < 10; depth++) {
      if (parent === request.spanContext().spanId) reached = true
      parent = byId.get(parent)?.parentSpanContext?.spanId
    }
    assert.ok(reached, `${span.name} nests under the request span`)
  }
})

test('telemetry: logins count by outcome and revocations by kind; no attribute holds an id, user id, account, IP or secret', async () => {
  const account = 'carol.secret@example.com'
  const userId = 'uid-carol-4711'
  const password = 'correct horse battery staple'
  const ip = '203.0.113.77'
  const hash = await hashPassword(password, CHEAP)
  spans.reset()
  const { app, reader } = await metered(() => buildApp({
    redis: { url: redis.url },
    password: CHEAP,
    sessionInfo: { ip: true, userAgent: true },
    loginThrottle: { perAccount: { max: 2, windowMs: 60_000 }, perIp: { max: 100, windowMs: 60_000 } },
  }, {}, (r) => {
    r.post('/pw', async (req) => await req.session.loginWithPassword({ account, hash, password: (req.body as { p: string }).p, userId }))
  }))
  const attempt = (p: string, cookie?: string): Promise<LightMyRequestResponse> =>
    app.inject({ method: 'POST', url: '/pw', payload: { p }, remoteAddress: ip, headers: { 'user-agent': 'Agent/1.0 (carol-laptop)', ...(cookie === undefined ? {} : { cookie }) } })
  const ok = await attempt(password)
  assert.equal(ok.json().ok, true)
  const first = sessionCookie(ok) as string
  const second = sessionCookie(await attempt(password)) as string
  const third = sessionCookie(await attempt(password)) as string
  assert.equal((await attempt('wrong password 1')).json().ok, false)
  assert.equal((await attempt('wrong password 2')).json().ok, false)
  assert.equal((await attempt('wrong password 3')).statusCode, 429)
  const ref = await refOf(app, second)
  assert.equal(await app.session.revokeSession(userId, ref), true)
  assert.equal((await app.inject({ method: 'POST', url: '/revoke-others', headers: { cookie: third }, remoteAddress: ip })).statusCode, 200)
  assert.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie: third }, remoteAddress: ip })).statusCode, 200)
  const other = await login(app, userId)
  await app.session.revokeUser(userId)
  await app.inject({ method: 'POST', url: '/destroy', headers: { cookie: await login(app, 'u-destroyed') } })
  await app.session.revokeAll()
  const points = await collect(reader)

  assert.equal(value(points, 'session.logins', { outcome: 'ok' }), 5, 'three password logins and two login()')
  assert.equal(value(points, 'session.logins', { outcome: 'failed' }), 2)
  assert.equal(value(points, 'session.logins', { outcome: 'throttled' }), 1)
  for (const kind of ['session', 'others', 'logout', 'user', 'destroy', 'all']) {
    assert.equal(value(points, 'session.revocations', { kind }), 1, kind)
  }
  assert.ok(spans.getFinishedSpans().some((s) => s.name === 'session.password.verify'))

  const secrets = [account, userId, password, 'wrong password', ip, '203.0.113', SECRET, ref, 'carol', 'Agent/1.0', 'u-destroyed',
    ...[ok, first, second, third, other].flatMap((c) => typeof c === 'string' ? [c, idOf(c), c.split('=')[1] as string] : [])]
  const seen: string[] = []
  for (const [name, list] of points) {
    seen.push(name)
    for (const p of list) seen.push(...Object.entries(p.attributes).flat().map(String))
  }
  for (const span of spans.getFinishedSpans()) {
    seen.push(span.name, span.status.message ?? '', ...Object.entries(span.attributes).flat().map(String))
    for (const event of span.events) seen.push(event.name, ...Object.entries(event.attributes ?? {}).flat().map(String))
  }
  const text = seen.join('\n')
  for (const secret of secrets) assert.ok(!text.includes(secret), `an attribute holds ${JSON.stringify(secret)}`)
  // Every attribute value of the plugin's metrics is one of the fixed names.
  const allowed = new Set(['ok', 'failed', 'throttled', 'logout', 'destroy', 'session', 'others', 'user', 'all', 'limit'])
  for (const [, list] of points) {
    for (const p of list) {
      for (const [key, v] of Object.entries(p.attributes)) {
        if (key === 'operation') assert.match(String(v), /^[a-zA-Z]+$/)
        else assert.ok(allowed.has(String(v)), `${key}=${String(v)}`)
      }
    }
  }
})

test('telemetry: without @opentelemetry/api installed the package loads and works', () => {
  ensureBuilt()
  const dir = scratchDir('no-otel')
  // A resolve hook that makes @opentelemetry/api unresolvable, as in an install without it.
  const hook = join(dir, 'hide-otel.mjs')
  writeFileSync(hook, `
    export async function resolve (specifier, context, next) {
      if (specifier === '@opentelemetry/api' || specifier.startsWith('@opentelemetry/api/')) {
        const err = new Error("Cannot find package '@opentelemetry/api'")
        err.code = 'ERR_MODULE_NOT_FOUND'
        throw err
      }
      return next(specifier, context)
    }
  `)
  const register = join(dir, 'register.mjs')
  writeFileSync(register, `import { register } from 'node:module'\nregister(${JSON.stringify(new URL('file://' + hook).href)})\n`)
  const script = `
    import Fastify from 'fastify'
    import plugin, { createMemoryStore } from 'fastify-hardened-session'
    let resolvable = true
    try { await import('@opentelemetry/api') } catch { resolvable = false }
    const app = Fastify()
    await app.register(plugin, { secrets: [${JSON.stringify(SECRET)}], store: createMemoryStore() })
    app.post('/login', async (req) => { await req.session.login('u-1'); return { ok: true } })
    app.get('/me', async (req) => ({ user: req.session.userId ?? null }))
    const res = await app.inject({ method: 'POST', url: '/login' })
    const cookie = res.headers['set-cookie'].split(';')[0]
    const me = await app.inject({ url: '/me', headers: { cookie } })
    console.log(JSON.stringify({ resolvable, login: res.statusCode, me: me.json(), stats: app.session.stats() }))
    await app.close()
  `
  const out = execFileSync(process.execPath, ['--import', register, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })
  const result = JSON.parse(out) as { resolvable: boolean, login: number, me: { user: string | null }, stats: { cacheHits: number } }
  assert.equal(result.resolvable, false, '@opentelemetry/api cannot be resolved in the child')
  assert.equal(result.login, 200)
  assert.deepEqual(result.me, { user: 'u-1' })
  assert.ok(result.stats.cacheHits >= 1)
})
