/**
 * HTTP benchmark harness: `npm run bench` (see docs/benchmarks.md).
 *
 * Starts its own redis-server, runs every variant as its own server process pinned to one CPU,
 * loads it from a separate load-generator process pinned to another (wrk, or autocannon when wrk
 * is missing), in interleaved rounds; checks each variant's correctness before timing it;
 * reports medians, ratios to bare Fastify from the same round, server CPU µs and Redis commands
 * per request; writes benchmarks/results/<name>.{md,json,svg}; `--check` enforces budgets.json.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, availableParallelism, release, tmpdir, type as osType } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { parseOptions, USAGE, type Options } from './harness/args.ts'
import { evaluateBudgets, loadBudgets, type BudgetResult } from './harness/budgets.ts'
import { loadConfigFile, variantsFromTarget } from './harness/config.ts'
import { pickLoadGenerator } from './harness/load/index.ts'
import { pinning } from './harness/pinning.ts'
import { installCleanup, onCleanup } from './harness/processes.ts'
import { QUIET_PCT, waitForQuiet } from './harness/quiet.ts'
import { startBenchCluster, startBenchRedis, type BenchRedis } from './harness/redis.ts'
import { budgetTable, cacheTable, json, markdown, summaryTable, type Meta, type Report } from './harness/report.ts'
import { runVariant, type Run } from './harness/runner.ts'
import { roundOrder, summarise } from './harness/stats.ts'
import { renderSvg } from './harness/svg.ts'
import type { Variant } from './harness/variant.ts'
import { builtInVariants, REPO_ROOT } from './harness/variants.ts'

/** The commit measured, with `+dirty` when lib/ has uncommitted changes (read-only git calls). */
const MAX_RETRIES = 2

/** A hash of lib/'s sources: a run during which it changes measured more than one version. */
function libHash (): string {
  const hash = createHash('sha256')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) hash.update(path).update(readFileSync(path))
    }
  }
  walk(join(REPO_ROOT, 'lib'))
  return hash.digest('hex').slice(0, 12)
}

function revision (): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' })
  if (head.status !== 0) return 'unknown'
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: REPO_ROOT, encoding: 'utf8' })
  return head.stdout.trim() + (dirty.stdout.trim() === '' ? '' : '+dirty')
}

function selectVariants (opts: Options): Variant[] {
  const all = opts.config !== undefined
    ? loadConfigFile(opts.config)
    : opts.targetUrl !== undefined
      ? variantsFromTarget({ ...opts, targetUrl: opts.targetUrl })
      : [...builtInVariants]
  if (opts.variants === undefined) return all
  const wanted = new Set(opts.variants)
  for (const name of wanted) {
    if (!all.some((v) => v.name === name)) throw new TypeError(`unknown variant ${name}; --list shows them`)
  }
  for (const v of all) {
    if (!wanted.has(v.name)) continue
    if (v.baseline !== undefined) wanted.add(v.baseline)
    if (v.missBaseline !== undefined) wanted.add(v.missBaseline)
  }
  return all.filter((v) => wanted.has(v.name))
}

function describeRun (run: Run): string {
  if (run.status === 'failed' && run.load === undefined) return `FAILED: ${run.error ?? ''}`
  const l = run.load
  const parts = [
    `${Math.round(l?.rps ?? 0).toLocaleString('en-US').padStart(7)} req/s`,
    `p99 ${(l?.latencyMs.p99 ?? 0).toFixed(2)} ms`,
    `cpu ${run.cpuUsPerRequest?.toFixed(1) ?? '–'} µs/req`,
    `redis ${run.redisCommandsPerRequest?.toFixed(2) ?? '–'} cmd/req`,
  ]
  const mix = Object.entries(run.redisCommandMix ?? {}).filter(([, n]) => n >= 0.01)
  if (mix.length > 0) parts[parts.length - 1] += ` (${mix.map(([name, n]) => `${name} ${n.toFixed(2)}`).join(' ')})`
  if (run.foreignCpuPct !== undefined && run.foreignCpuPct >= 5) parts.push(`other processes ${run.foreignCpuPct.toFixed(0)} % CPU`)
  if (run.cache !== undefined) parts.push(`cache ${run.cache.hits} hits / ${run.cache.misses} misses`)
  if (run.status === 'failed') parts.push(`FAILED: ${run.error ?? ''}`)
  return parts.join(', ')
}

async function main (): Promise<number> {
  installCleanup()
  const opts = parseOptions(process.argv.slice(2))
  if (opts.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const variants = selectVariants(opts)
  if (opts.list) {
    for (const v of variants) console.log(`${v.name.padEnd(26)} ${v.label}${v.baseline === undefined ? '' : `  (vs ${v.baseline})`}`)
    return 0
  }

  const pin = pinning(opts.pin, opts.serverCpu, opts.loadCpu, opts.redisCpu)
  const { generator, note } = pickLoadGenerator(opts.load)
  const builtIn = opts.config === undefined && opts.targetUrl === undefined
  const budgetsPath = resolve(REPO_ROOT, opts.budgets)
  const useBudgets = !opts.smoke && (builtIn || process.argv.includes('--budgets'))
  const budgets = useBudgets ? loadBudgets(budgetsPath) : undefined

  const meta: Meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    revision: revision(),
    node: process.version,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: availableParallelism(),
    os: `${osType()} ${release()}`,
    loadGenerator: note,
    pinning: pin.description,
    connections: opts.connections,
    durationS: opts.durationS,
    warmupS: opts.warmupS,
    rounds: opts.rounds,
    smoke: opts.smoke,
    baselineLabel: builtIn ? 'bare' : 'baseline',
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  }
  console.log(`bench: ${variants.length} variants × ${opts.rounds} round(s), ${opts.durationS} s each (+${opts.warmupS} s warm-up), ${opts.connections} connections`)
  console.log(`bench: load generator: ${note}`)
  console.log(`bench: pinning: ${pin.description}`)

  const libAtStart = libHash()
  const tmpDir = mkdtempSync(join(tmpdir(), 'hardened-bench-'))
  const removeTmp = (): void => rmSync(tmpDir, { recursive: true, force: true })
  onCleanup(removeTmp)

  let redis: BenchRedis | undefined
  let cluster: BenchRedis | undefined
  const runs: Run[] = []
  const discarded: Run[] = []
  try {
    if (variants.some((v) => (v.usesRedis || v.measureRedis === true) && v.usesCluster !== true)) {
      redis = await startBenchRedis(pin)
      console.log(`bench: redis-server at ${redis.url}`)
    }
    if (variants.some((v) => v.usesCluster === true)) {
      cluster = await startBenchCluster(pin)
      console.log(`bench: redis cluster (3 masters) at ${cluster.urls}`)
    }
    const settings = { durationS: opts.durationS, warmupS: opts.warmupS, connections: opts.connections, generator, pin, redis, cluster, tmpDir }
    for (let round = 0; round < opts.rounds; round++) {
      for (const variant of roundOrder(variants, round, opts.rounds)) {
        let run: Run
        for (let attempt = 0; ; attempt++) {
          if (opts.waitQuietS > 0) await waitForQuiet(opts.waitQuietS, () => redis?.cpuUs(), console.log)
          run = await runVariant(variant, round, settings)
          console.log(`  round ${round + 1}/${opts.rounds}  ${variant.name.padEnd(26)} ${describeRun(run)}`)
          // With --wait-quiet, a run that other processes (or the hypervisor) disturbed anyway is
          // repeated, at most twice; every attempt stays in the JSON.
          const disturbed = opts.waitQuietS > 0 && (run.foreignCpuPct ?? 0) > QUIET_PCT
          if (!disturbed || attempt === MAX_RETRIES) break
          console.log(`  … disturbed (${(run.foreignCpuPct ?? 0).toFixed(0)} % of a CPU used by others), repeating`)
          discarded.push(run)
        }
        runs.push(run)
      }
    }
  } finally {
    await redis?.stop()
    await cluster?.stop()
    removeTmp()
  }

  const libChanged = libHash() !== libAtStart
  if (libChanged) console.error('bench: WARNING: lib/ changed during the run, so the rounds measured different code; rerun for numbers of one version')
  const summaries = summarise(variants, runs)
  const budgetResults: BudgetResult[] | undefined = budgets === undefined ? undefined : evaluateBudgets(budgets, summaries)
  const report: Report = { meta: { ...meta, libChanged }, summaries, budgets: budgetResults, runs, discarded }

  const outDir = opts.out !== undefined
    ? (isAbsolute(opts.out) ? opts.out : resolve(opts.out))
    : opts.smoke ? mkdtempSync(join(tmpdir(), 'hardened-bench-smoke-')) : join(REPO_ROOT, 'benchmarks', 'results')
  if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true })
  const stem = join(outDir, opts.name)
  writeFileSync(`${stem}.md`, markdown(report))
  writeFileSync(`${stem}.json`, json(report))
  writeFileSync(`${stem}.svg`, renderSvg(summaries, 'fastify-hardened-session: HTTP benchmark', `${meta.date} · ${meta.loadGenerator.split(':')[0]} · ${opts.connections} connections · ${opts.rounds} round(s) × ${opts.durationS} s · node ${meta.node}`))

  console.log('\n' + summaryTable(summaries, meta.baselineLabel))
  const cache = cacheTable(summaries)
  if (cache !== undefined) console.log('\n' + cache)
  if (budgetResults !== undefined) console.log('\n' + budgetTable(budgetResults, summaries))
  console.log(`\nbench: wrote ${stem}.md, .json, .svg`)

  let code = 0
  const failed = summaries.filter((s) => s.status !== 'ok')
  for (const s of failed) console.error(`bench: variant ${s.name} FAILED: ${s.errors.join('; ')}`)
  if (failed.length > 0) code = 1
  if (opts.check && budgetResults !== undefined) {
    const missed = budgetResults.filter((b) => !b.passed)
    for (const b of missed) {
      console.error(`bench: budget ${b.id} FAILED: ${b.description}: measured ${b.actual === undefined ? b.reason ?? 'nothing' : b.actual.toFixed(3)}, required ${b.comparator} ${b.value}`)
    }
    if (missed.length > 0) code = 1
    else console.log('bench: all budgets met')
  }
  return code
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err)
  process.exitCode = 1
})
