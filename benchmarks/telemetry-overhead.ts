/**
 * What a registered OpenTelemetry provider costs the cached authenticated read, in server CPU
 * per request, measured in one run on a throw-away redis-server:
 *
 *   node --import tsx benchmarks/telemetry-overhead.ts [--rounds 24] [--block 4] [--seconds 3] [--connections 8]
 *   # prints a table; writes benchmarks/results/telemetry-overhead.{md,json}
 *
 * Three server processes of the same app (GET /me reading a logged-in session that every
 * request finds in the local cache), differing only in what is registered before the plugin:
 *   - `none`: no provider (what an app without OpenTelemetry runs);
 *   - `meter`: a MeterProvider whose PeriodicExportingMetricReader collects every second into
 *     an in-memory exporter (the collection's own CPU is counted);
 *   - `meter+tracer`: the same, and a TracerProvider with an in-memory span exporter.
 * The load generator (autocannon) runs in this process; each server's CPU time (utime + stime
 * from /proc/<pid>/stat) over a round, divided by the requests it answered, is its µs/request.
 * Rounds alternate between the servers (in a rotating order) so that noise from other work on
 * the machine spreads over all of them, and every `--block` rounds all three are restarted (a
 * process's own placement would otherwise read as a difference between variants); the table gives each server's median and spread, and its
 * difference from `none` paired by round (the two measured back to back).
 */
import { once } from 'node:events'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { cpuTimeUs } from './harness/cpu.ts'
import { median as medianOf } from './harness/stats.ts'

const VARIANTS = ['none', 'meter', 'meter+tracer'] as const
type Variant = typeof VARIANTS[number]
const SECRET = 'bench-secret-0123456789-abcdefghijklmnop'
/** Clock ticks per second of /proc's CPU times. */

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}

/** Server mode: one app, the providers of `variant` registered first; prints `READY <port> <cookie>`. */
async function serve (variant: Variant, redisUrl: string): Promise<void> {
  if (variant !== 'none') {
    const { metrics } = await import('@opentelemetry/api')
    const { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics')
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1000 })
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
    // Keep the exporter from holding every collection in memory for the whole run.
    setInterval(() => { exporter.reset() }, 5000).unref()
    if (variant === 'meter+tracer') {
      const { trace, context } = await import('@opentelemetry/api')
      const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks')
      const { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } = await import('@opentelemetry/sdk-trace')
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
      const spans = new InMemorySpanExporter()
      trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] }))
      setInterval(() => { spans.reset() }, 5000).unref()
    }
  }
  const { default: Fastify } = await import('fastify')
  const { default: hardenedSession } = await import('../lib/index.ts')
  const app = Fastify({ logger: false })
  await app.register(hardenedSession, { secrets: [SECRET], redis: { url: redisUrl } })
  app.post('/login', async (req) => {
    await req.session.login('bench-user')
    return { ok: true }
  })
  app.get('/me', async (req) => ({ user: req.session.userId }))
  app.get('/stats', { config: { session: false } }, async () => app.session.stats())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const res = await app.inject({ method: 'POST', url: '/login' })
  const cookie = String(res.headers['set-cookie']).split(';')[0] as string
  // Loads the session into the local cache before any measured request.
  await app.inject({ url: '/me', headers: { cookie } })
  await app.inject({ url: '/me', headers: { cookie } })
  process.stdout.write(`READY ${port} ${cookie}\n`)
}

interface Server { readonly variant: Variant, readonly child: ChildProcess, readonly port: number, readonly cookie: string }

async function startServer (variant: Variant, redisUrl: string): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', variant, '--redis-url', redisUrl], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> })
  for await (const line of lines) {
    const m = /^READY (\d+) (.+)$/.exec(line)
    if (m !== null) return { variant, child, port: Number(m[1]), cookie: m[2] as string }
  }
  throw new Error(`server ${variant} exited before it was ready`)
}

async function load (server: Server, seconds: number, connections: number): Promise<{ requests: number, cpuUs: number }> {
  const before = cpuTimeUs(server.child.pid)
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}/me`,
    headers: { cookie: server.cookie },
    connections,
    duration: seconds,
  })
  const after = cpuTimeUs(server.child.pid)
  if (before === undefined || after === undefined) throw new Error('/proc/<pid>/stat is needed (Linux)')
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${server.variant}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return { requests: result.requests.total, cpuUs: after - before }
}

/** The median of samples that are never empty here. */
function median (values: readonly number[]): number {
  return medianOf(values) ?? Number.NaN
}

function signed (n: number): string {
  return `${n >= 0 ? '+' : ''}${n.toFixed(2)}`
}

async function main (): Promise<void> {
  const rounds = Number(arg('rounds') ?? 24)
  const seconds = Number(arg('seconds') ?? 3)
  const connections = Number(arg('connections') ?? 8)
  const perBlock = Number(arg('block') ?? 4)
  const { startRedis } = await import('../test/helpers/redis-server.ts')
  const redis = await startRedis()
  let servers: Server[] = []
  const stop = async (): Promise<void> => {
    for (const s of servers) {
      s.child.kill('SIGTERM')
      if (s.child.exitCode === null) await once(s.child, 'exit')
    }
    servers = []
  }
  try {
    const perRequest = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]))
    const hits = new Map<Variant, { cacheHits: number, cacheMisses: number }>(VARIANTS.map((v) => [v, { cacheHits: 0, cacheMisses: 0 }]))
    for (let round = 0; round < rounds; round++) {
      // Fresh server processes every `perBlock` rounds: a process's own luck (where its heap and
      // code landed, which core it shares) would otherwise count as a difference between variants.
      if (round % perBlock === 0) {
        await stop()
        for (const variant of VARIANTS) servers.push(await startServer(variant, redis.url))
        // Warm-up (JIT, connection pools): not measured.
        for (const server of servers) await load(server, 1, connections)
      }
      // Rotate the order, so no server always runs first (or right after another).
      const order = servers.map((_s, i) => servers[(i + round) % servers.length] as Server)
      for (const server of order) {
        const { requests, cpuUs } = await load(server, seconds, connections)
        perRequest.get(server.variant)?.push(cpuUs / requests)
      }
      process.stderr.write(`round ${round + 1}/${rounds}: ${VARIANTS.map((v) => `${v} ${(perRequest.get(v)?.at(-1) ?? 0).toFixed(2)}`).join(', ')} µs/request\n`)
      if (round % perBlock === perBlock - 1 || round === rounds - 1) {
        for (const s of servers) {
          const got = await (await fetch(`http://127.0.0.1:${s.port}/stats`)).json() as { cacheHits: number, cacheMisses: number }
          const total = hits.get(s.variant) as { cacheHits: number, cacheMisses: number }
          total.cacheHits += got.cacheHits
          total.cacheMisses += got.cacheMisses
        }
      }
    }
    const stats = VARIANTS.map((v) => hits.get(v) as { cacheHits: number, cacheMisses: number })
    const none = perRequest.get('none') as number[]
    const rows = VARIANTS.map((variant, i) => {
      const values = perRequest.get(variant) as number[]
      // Paired by round: each round measured the servers back to back, so drift cancels.
      const deltas = values.map((v, r) => v - (none[r] as number)).sort((a, b) => a - b)
      const s = stats[i] as { cacheHits: number, cacheMisses: number }
      return {
        variant,
        medianUs: Number(median(values).toFixed(2)),
        minUs: Number(Math.min(...values).toFixed(2)),
        maxUs: Number(Math.max(...values).toFixed(2)),
        deltaUs: Number(median(deltas).toFixed(2)),
        deltaQ1Us: Number((deltas[Math.floor((deltas.length - 1) / 4)] as number).toFixed(2)),
        deltaQ3Us: Number((deltas[Math.ceil((deltas.length - 1) * 3 / 4)] as number).toFixed(2)),
        hitRatio: Number((s.cacheHits / Math.max(1, s.cacheHits + s.cacheMisses)).toFixed(5)),
      }
    })
    const local = await indirection(redis.url)
    const meta = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', rounds, block: perBlock, seconds, connections, date: new Date().toISOString() }
    const table = [
      '| provider registered | server CPU µs/request (median of rounds) | min – max | vs none, paired by round: median (quartiles) | cache hit ratio |',
      '| --- | --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.variant} | ${r.medianUs.toFixed(2)} | ${r.minUs.toFixed(2)} – ${r.maxUs.toFixed(2)} | ${signed(r.deltaUs)} (${signed(r.deltaQ1Us)} … ${signed(r.deltaQ3Us)}) | ${r.hitRatio} |`),
    ].join('\n')
    const md = `# Telemetry overhead on the cached read\n\n\`node --import tsx benchmarks/telemetry-overhead.ts --rounds ${rounds} --block ${perBlock} --seconds ${seconds} --connections ${connections}\`; Node ${meta.node}, ${meta.cpus} × ${meta.cpu}, ${meta.date}.\n\nServer processes under HTTP load (autocannon), server CPU from /proc:\n\n${table}\n\nThe code a registered provider adds to that read (the store used through a wrapper of bound methods), timed in-process: the three local look-ups of a logged-in read take ${local.rawNs} ns on the store itself, ${local.wrappedNs} ns through the wrapper (paired difference ${local.deltaNs >= 0 ? '+' : ''}${local.deltaNs} ns).\n`
    console.log(md)
    const dir = fileURLToPath(new URL('results/', import.meta.url))
    mkdirSync(dir, { recursive: true })
    writeFileSync(`${dir}telemetry-overhead.md`, md)
    writeFileSync(`${dir}telemetry-overhead.json`, JSON.stringify({ meta, rows, lookups: local }, null, 2) + '\n')
  } finally {
    await stop()
    await redis.stop()
  }
}

/**
 * The only code a registered provider adds to the cached read: the plugin then uses the store
 * through a wrapper whose synchronous local reads are the store's own methods, bound. Timed here
 * directly, in ns per read (the three local look-ups of a logged-in read: record, epoch, index
 * entry, each a cache hit), raw store against wrapped store, batches alternated.
 */
async function indirection (redisUrl: string): Promise<{ rawNs: number, wrappedNs: number, deltaNs: number }> {
  const { metrics } = await import('@opentelemetry/api')
  const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
  const { createClient } = await import('redis')
  const { RedisStore } = await import('../lib/store/redis.ts')
  const { TrackingOnlyCache } = await import('../lib/store/tracking.ts')
  const { Telemetry } = await import('../lib/telemetry.ts')
  const client = createClient({ url: redisUrl, RESP: 3, clientSideCache: new TrackingOnlyCache('ind:') })
  await client.connect()
  const raw = new RedisStore(client as never, { cacheSize: 1000, cacheBytes: 1 << 24, storeTimeout: 5000, probeInterval: 5000 })
  const provider = new MeterProvider()
  metrics.setGlobalMeterProvider(provider)
  const telemetry = await Telemetry.load()
  const wrapped = telemetry.attach(raw)
  if (wrapped === raw) throw new Error('a registered meter provider should make the plugin wrap the store')
  // Cache hits: a record known absent, the epoch copy, an index entry known absent.
  const EPOCH_VALUE = `1.${'a'.repeat(22)}.${'b'.repeat(22)}` // the format of an epoch (crypto/epoch.ts)
  // The first read writes the epoch copy (its echo drops it again); the second caches all three.
  for (let i = 0; i < 2; i++) {
    await raw.getWithEpoch('ind:s', 'ind:epoch', EPOCH_VALUE)
    await raw.getMember('ind:u', 'ref')
    await raw.getEpoch('ind:epoch', EPOCH_VALUE)
  }
  const reads = (store: typeof raw | typeof wrapped, n: number): number => {
    let sink = 0
    const start = process.cpuUsage()
    for (let i = 0; i < n; i++) {
      if (store.peek('ind:s') === null) sink++
      if (store.peekEpoch('ind:epoch') !== undefined) sink++
      if (store.peekMember('ind:u', 'ref') === null) sink++
    }
    const used = process.cpuUsage(start)
    if (sink !== 3 * n) throw new Error(`the look-ups were not cache hits: ${String(store.peek('ind:s'))} ${String(store.peekEpoch('ind:epoch'))} ${String(store.peekMember('ind:u', 'ref'))}`)
    return (used.user + used.system) * 1000 / n
  }
  const N = 1_000_000
  reads(raw, N)
  reads(wrapped, N)
  const rawNs: number[] = []
  const wrappedNs: number[] = []
  for (let i = 0; i < 20; i++) {
    rawNs.push(reads(raw, N))
    wrappedNs.push(reads(wrapped, N))
  }
  telemetry.close()
  await raw.close()
  await client.quit()
  await provider.shutdown()
  metrics.disable()
  const deltas = wrappedNs.map((w, i) => w - (rawNs[i] as number))
  return { rawNs: Number(median(rawNs).toFixed(1)), wrappedNs: Number(median(wrappedNs).toFixed(1)), deltaNs: Number(median(deltas).toFixed(1)) }
}

const serveAs = arg('serve')
if (serveAs !== undefined) await serve(serveAs as Variant, arg('redis-url') as string)
else await main()
