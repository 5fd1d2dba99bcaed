/**
 * Where does a variant's time go? Runs one built-in variant's server under `node --cpu-prof`,
 * loads it like the harness does (same checks, pinning and load generator), and prints the top
 * self-time functions and the split by module / package.
 *
 *   npx tsx benchmarks/profile.ts hardened-encrypted-read [--duration 10] [--top 25] [--connections 50]
 *
 * The raw profile is kept (path printed) for Chrome DevTools or speedscope.
 */
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { summariseProfile } from './harness/cpuprofile.ts'
import { pickLoadGenerator } from './harness/load/index.ts'
import { pinning } from './harness/pinning.ts'
import { installCleanup } from './harness/processes.ts'
import { startBenchCluster, startBenchRedis, type BenchRedis } from './harness/redis.ts'
import { startServer, type ServerSpec } from './harness/server-process.ts'
import { builtInVariants } from './harness/variants.ts'

installCleanup()
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { duration: { type: 'string' }, top: { type: 'string' }, connections: { type: 'string' } },
})
const name = positionals[0]
const variant = builtInVariants.find((v) => v.name === name)
if (variant === undefined) {
  console.error(`usage: npx tsx benchmarks/profile.ts <variant> [--duration S] [--top N]\nvariants: ${builtInVariants.map((v) => v.name).join(', ')}`)
  process.exit(2)
}
const durationS = Number(values.duration ?? 10)
const top = Number(values.top ?? 25)
const connections = Number(values.connections ?? 50)

const profDir = mkdtempSync(join(tmpdir(), 'hardened-prof-'))
// Built-in servers are `node --import tsx <script>`; --cpu-prof must follow node itself
// (it is not allowed in NODE_OPTIONS).
const [node, ...rest] = variant.server.command
const spec: ServerSpec = { ...variant.server, command: [node as string, '--cpu-prof', `--cpu-prof-dir=${profDir}`, ...rest] }
const pin = pinning(true, 1, 0)
const { generator, note } = pickLoadGenerator('auto')
let redis: BenchRedis | undefined
let loadStart = 0
let loadEnd = 0
let stoppedAt = 0
let requests = 0
try {
  if (variant.usesRedis) redis = variant.usesCluster === true ? await startBenchCluster(pin) : await startBenchRedis(pin)
  const server = await startServer(variant.name, spec, pin.server, { redisUrl: redis?.url ?? '', redisUrls: redis?.urls ?? '' })
  try {
    const plan = await variant.prepare({ origin: server.origin, redis })
    const settings = { origin: server.origin, connections, pinPrefix: pin.load, tmpDir: profDir }
    await generator.run(plan, { ...settings, durationS: 1 }) // warm-up, not in the summary
    loadStart = performance.now()
    const result = await generator.run(plan, { ...settings, durationS })
    requests = result.requests
    console.log(`${variant.name}: ${Math.round(result.rps).toLocaleString('en-US')} req/s under ${note}, ${connections} connections, ${durationS} s (profiling slows it down)`)
  } finally {
    loadEnd = performance.now()
    await server.stop() // the profile is written as the server exits
    stoppedAt = performance.now()
  }
} finally {
  await redis?.stop()
}

const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
if (file === undefined) throw new Error(`no .cpuprofile written in ${profDir}`)
// Samples from the timed load to the server's exit (start-up and warm-up left out).
const windowMs = stoppedAt - loadStart
const summary = summariseProfile(join(profDir, file), windowMs)
const perRequest = (ms: number): string => (requests === 0 ? '' : `${((ms * 1000) / requests).toFixed(2).padStart(6)} µs/req`)
console.log(`\nprofile: ${join(profDir, file)}`)
console.log(`${summary.total.toFixed(0)} ms of non-idle samples in the last ${windowMs.toFixed(0)} ms (load ${(loadEnd - loadStart).toFixed(0)} ms + shutdown): ${perRequest(summary.total)} over ${requests} requests`)
console.log('\nself time by place:')
for (const p of summary.places.slice(0, 15)) console.log(`  ${p.pct.toFixed(1).padStart(5)} %  ${perRequest(p.ms)}  ${p.name}`)
console.log(`\ntop ${top} functions by self time:`)
for (const f of summary.functions.slice(0, top)) console.log(`  ${f.pct.toFixed(1).padStart(5)} %  ${perRequest(f.ms)}  ${f.name.padEnd(32)} ${f.where}`)
