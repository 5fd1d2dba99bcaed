/**
 * HTTP benchmark harness: `npm run bench` (see docs/benchmarks.md).
 *
 * Runs on Node 24 unless told otherwise (fetching it from npm when the machine's Node is
 * another one). Starts its own redis-server, runs every variant as its own server process
 * pinned to one CPU, loads it from a separate load-generator process pinned to another (wrk, or
 * autocannon when wrk is missing), in interleaved rounds; checks each variant's correctness
 * before timing it; reports medians, ratios to bare Fastify from the same round, server CPU µs
 * and Redis commands per request; writes benchmarks/results/<name>.{md,json,svg}; `--check`
 * enforces budgets.json. `--against DIR` adds this plugin's main paths on another checkout.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, availableParallelism, loadavg, release, tmpdir, type as osType } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseOptions, USAGE, type Options } from './harness/args.ts'
import { evaluateBudgets, loadBudgets, type BudgetResult } from './harness/budgets.ts'
import { pickLoadGenerator } from './harness/load/index.ts'
import { pinning } from './harness/pinning.ts'
import { installCleanup, onCleanup } from './harness/processes.ts'
import { QUIET_PCT, waitForQuiet } from './harness/quiet.ts'
import { startBenchCluster, startBenchRedis, type BenchRedis } from './harness/redis.ts'
import { compiledLib, sourceHash } from './harness/compiled-lib.ts'
import { budgetTable, cacheTable, comparisonTable, json, markdown, summaryTable, type Meta, type Report } from './harness/report.ts'
import { runVariant, type Run } from './harness/runner.ts'
import { reexecOn, resolveNode } from './harness/runtime.ts'
import { roundOrder, summarise } from './harness/stats.ts'
import { renderSvg } from './harness/svg.ts'
import type { Variant } from './harness/variant.ts'
import { againstVariants, builtInVariants, REPO_ROOT } from './harness/variants.ts'

const MAX_RETRIES = 2

/** The commit measured, with `+dirty` when lib/ has uncommitted changes (read-only git calls). */
function revision (root = REPO_ROOT): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' })
  if (head.status !== 0) return 'unknown'
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: root, encoding: 'utf8' })
  return head.stdout.trim() + (dirty.stdout.trim() === '' ? '' : '+dirty')
}

function selectVariants (opts: Options, against: { dir: string, label: string } | undefined): Variant[] {
  // Each --against variant right after its counterpart: the two meet the machine in the same state.
  const others = against === undefined ? [] : againstVariants(against.dir, against.label, builtInVariants)
  const all = builtInVariants.flatMap((v) => [v, ...others.filter((o) => o.counterpart === v.name)])
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
  // With --against, a selected variant brings its counterpart on the other checkout.
  for (const v of all) if (v.counterpart !== undefined && wanted.has(v.counterpart)) wanted.add(v.name)
  for (const v of all) if (wanted.has(v.name) && v.missBaseline !== undefined) wanted.add(v.missBaseline)
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
  if (run.redisSentPerRequest !== undefined) {
    const sent = Object.entries(run.redisSentMix ?? {}).filter(([, n]) => n >= 0.01).map(([name, n]) => `${name} ${n.toFixed(2)}`).join(' ')
    parts.push(`sent ${run.redisSentPerRequest.toFixed(2)}${sent === '' ? '' : ` (${sent})`} + in scripts ${run.redisInScriptsPerRequest?.toFixed(2) ?? '–'} /req`)
  }
  if (run.foreignCpuPct !== undefined && run.foreignCpuPct >= 5) parts.push(`other processes ${run.foreignCpuPct.toFixed(0)} % CPU`)
  if (run.cache !== undefined) parts.push(`cache ${run.cache.hits} hits / ${run.cache.misses} misses`)
  if (run.status === 'failed') parts.push(`FAILED: ${run.error ?? ''}`)
  return parts.join(', ')
}

async function main (): Promise<number> {
  const opts = parseOptions(process.argv.slice(2))
  if (opts.help) {
    process.stdout.write(USAGE)
    return 0
  }
  // The runtime measured: re-run this script on it when it is not the one running.
  const node = resolveNode(opts.node, REPO_ROOT, console.log)
  const code = reexecOn(node, fileURLToPath(import.meta.url), process.argv.slice(2))
  if (code !== undefined) return code
  installCleanup()

  let against: { dir: string, label: string, revision: string } | undefined
  if (opts.against !== undefined) {
    const dir = resolve(opts.against)
    if (!existsSync(join(dir, 'lib', 'index.ts'))) throw new Error(`--against ${opts.against}: no lib/index.ts there`)
    if (!existsSync(join(dir, 'node_modules'))) throw new Error(`--against ${opts.against}: run npm install there first`)
    const rev = revision(dir)
    against = { dir, revision: rev, label: opts.againstLabel ?? `before ${rev}` }
  }
  const variants = selectVariants(opts, against)
  // The arguments as given (without the `--node current` a re-run on the wanted Node adds).
  const shownArgs = process.argv.slice(2)
  if (process.env['HARDENED_BENCH_REEXEC'] === '1' && shownArgs.at(-2) === '--node' && shownArgs.at(-1) === 'current') shownArgs.splice(-2)
  if (opts.list) {
    for (const v of variants) console.log(`${v.name.padEnd(26)} ${v.label}${v.baseline === undefined ? '' : `  (vs ${v.baseline})`}`)
    return 0
  }

  const pin = pinning(opts.pin, opts.serverCpu, opts.loadCpu, opts.redisCpu)
  const { generator, note } = pickLoadGenerator(opts.load)
  const budgetsPath = resolve(REPO_ROOT, opts.budgets)
  const budgets = opts.smoke ? undefined : loadBudgets(budgetsPath)

  const meta: Meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    revision: revision(),
    node: process.version,
    loadAverage: { start: loadavg(), end: [] },
    against,
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
    command: ['npm run bench', ...(shownArgs.length > 0 ? ['--', ...shownArgs] : [])].join(' '),
  }
  console.log(`bench: Node ${process.version} (${process.execPath}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  if (against !== undefined) console.log(`bench: against ${against.dir} (commit ${against.revision}) as "${against.label}"`)
  console.log(`bench: ${variants.length} variants × ${opts.rounds} round(s), ${opts.durationS} s each (+${opts.warmupS} s warm-up, +${opts.accountS} s accounting under MONITOR), ${opts.connections} connections`)
  console.log(`bench: load generator: ${note}`)
  console.log(`bench: pinning: ${pin.description}`)

  // A run during which a lib/ changes measured more than one version.
  const libAtStart = sourceHash(REPO_ROOT) + (against === undefined ? '' : sourceHash(against.dir))
  // The plugin is measured compiled, as published: compiled here once, before any server starts.
  if (variants.some((v) => v.server.command.some((part) => part.endsWith('hardened.ts')))) {
    compiledLib(REPO_ROOT, REPO_ROOT)
    if (against !== undefined) compiledLib(against.dir, REPO_ROOT)
    console.log('bench: lib/ compiled (tsc -p tsconfig.build.json) for the plugin\'s servers')
  }
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
    const settings = { durationS: opts.durationS, warmupS: opts.warmupS, accountS: opts.accountS, connections: opts.connections, generator, pin, redis, cluster, tmpDir }
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

  const libChanged = sourceHash(REPO_ROOT) + (against === undefined ? '' : sourceHash(against.dir)) !== libAtStart
  if (libChanged) console.error('bench: WARNING: lib/ changed during the run, so the rounds measured different code; rerun for numbers of one version')
  const summaries = summarise(variants, runs)
  const budgetResults: BudgetResult[] | undefined = budgets === undefined ? undefined : evaluateBudgets(budgets, summaries, runs)
  const report: Report = { meta: { ...meta, loadAverage: { ...meta.loadAverage, end: loadavg() }, libChanged }, summaries, budgets: budgetResults, runs, discarded }

  const outDir = opts.out !== undefined
    ? (isAbsolute(opts.out) ? opts.out : resolve(opts.out))
    : opts.smoke ? mkdtempSync(join(tmpdir(), 'hardened-bench-smoke-')) : join(REPO_ROOT, 'benchmarks', 'results')
  if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true })
  const stem = join(outDir, opts.name)
  writeFileSync(`${stem}.md`, markdown(report))
  writeFileSync(`${stem}.json`, json(report))
  writeFileSync(`${stem}.svg`, renderSvg(summaries, 'fastify-hardened-session: HTTP benchmark', `${meta.date} · ${meta.loadGenerator.split(':')[0]} · ${opts.connections} connections · ${opts.rounds} round(s) × ${opts.durationS} s · node ${meta.node}`))

  console.log(`\nNode ${process.version}, load average ${meta.loadAverage.start.map((x) => x.toFixed(2)).join(' ')} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log('\n' + summaryTable(summaries))
  const comparison = comparisonTable(summaries, runs, against?.label ?? 'before')
  if (comparison !== undefined) console.log('\n' + comparison)
  const cache = cacheTable(summaries)
  if (cache !== undefined) console.log('\n' + cache)
  if (budgetResults !== undefined) console.log('\n' + budgetTable(budgetResults, summaries))
  console.log(`\nbench: wrote ${stem}.md, .json, .svg`)

  let exit = 0
  const failed = summaries.filter((s) => s.status !== 'ok')
  for (const s of failed) console.error(`bench: variant ${s.name} FAILED: ${s.errors.join('; ')}`)
  if (failed.length > 0) exit = 1
  if (opts.check && budgetResults !== undefined) {
    const missed = budgetResults.filter((b) => !b.passed)
    for (const b of missed) {
      console.error(`bench: budget ${b.id} FAILED: ${b.description}: measured ${b.actual === undefined ? b.reason ?? 'nothing' : b.actual.toFixed(3)}, required ${b.comparator} ${b.value}`)
    }
    if (missed.length > 0) exit = 1
    else console.log('bench: all budgets met')
  }
  return exit
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err)
  process.exitCode = 1
})
