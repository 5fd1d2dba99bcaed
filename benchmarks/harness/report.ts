/**
 * Results as a markdown table (for docs and README), as JSON (every run, for tooling), and as
 * console output.
 */
import type { BudgetResult } from './budgets.ts'
import type { Run } from './runner.ts'
import { roundRatio, type Summary } from './stats.ts'

export interface Meta {
  readonly date: string
  /** git commit measured (`+dirty`: lib/ had uncommitted changes). */
  readonly revision: string
  /** The Node.js that ran the harness and every server. */
  readonly node: string
  readonly cpu: string
  /** `os.loadavg()` (1, 5, 15 min) when the run started and when it ended: how busy the machine was. */
  readonly loadAverage: { readonly start: readonly number[], readonly end: readonly number[] }
  /** `--against`: the other checkout, its commit and its label in the tables. */
  readonly against?: { readonly dir: string, readonly revision: string, readonly label: string } | undefined
  readonly cpus: number
  readonly os: string
  readonly loadGenerator: string
  readonly pinning: string
  readonly connections: number
  readonly durationS: number
  readonly warmupS: number
  readonly rounds: number
  readonly smoke: boolean
  readonly command: string
  /** lib/ changed while the run was going on (the rounds measured different code). */
  readonly libChanged?: boolean
}

export interface Report {
  readonly meta: Meta
  readonly summaries: readonly Summary[]
  readonly budgets: readonly BudgetResult[] | undefined
  readonly runs: readonly Run[]
  /** Runs repeated because other processes disturbed them (`--wait-quiet`). */
  readonly discarded: readonly Run[]
}

const dash = '–'

function num (n: number | undefined, digits: number): string {
  return n === undefined ? dash : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function ratio (n: number | undefined, spread?: readonly [number, number]): string {
  if (n === undefined) return dash
  return spread === undefined || spread[0] === spread[1] ? `${n.toFixed(2)}×` : `${n.toFixed(2)}× (${spread[0].toFixed(2)}–${spread[1].toFixed(2)})`
}

/** Redis commands per operation: total, and (where MONITOR saw them) sent + run inside scripts. */
function commands (s: Summary): string {
  const total = num(s.redisCommandsPerOperation, 2)
  if (s.redisSentPerOperation === undefined || s.redisInScriptsPerOperation === undefined) return total
  return `${total} (${num(s.redisSentPerOperation, 2)} + ${num(s.redisInScriptsPerOperation, 2)})`
}

export function summaryTable (summaries: readonly Summary[]): string {
  const lines = [
    '| variant | req/s | × bare | p99 ms | p99 × bare | server CPU µs/req | CPU µs over bare | Redis cmds/op (sent + in scripts) | Redis CPU µs/req | status |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  for (const s of summaries) {
    const status = s.status === 'ok' ? 'ok' : `**FAILED**: ${s.errors[0] ?? 'no successful round'}`.replace(/\|/g, '\\|').replace(/\n/g, ' ')
    const over = s.cpuOverheadUs === undefined ? dash : `${s.cpuOverheadUs >= 0 ? '+' : ''}${num(s.cpuOverheadUs, 1)}`
    lines.push(`| ${s.label} | ${num(s.rps, 0)} | ${ratio(s.ratioToBaseline, s.ratioRange)} | ${num(s.p99Ms, 2)} | ${ratio(s.p99RatioToBaseline, s.p99RatioRange)} | ${num(s.cpuUsPerRequest, 1)} | ${over} | ${commands(s)} | ${num(s.redisCpuUsPerRequest, 1)} | ${status} |`)
  }
  return lines.join('\n')
}

/** `--against`: each variant beside its counterpart on the other checkout, and their same-round req/s ratio. */
export function comparisonTable (summaries: readonly Summary[], runs: readonly Run[], label: string): string | undefined {
  const pairs = summaries.filter((s) => s.counterpart !== undefined)
  if (pairs.length === 0) return undefined
  const lines = [
    `| path | × bare: ${label} → this | CPU µs over bare: ${label} → this | Redis cmds/op: ${label} → this | req/s this ÷ ${label} (same round) |`,
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  for (const before of pairs) {
    const after = summaries.find((s) => s.name === before.counterpart)
    if (after === undefined) continue
    const r = roundRatio(runs, after.name, before.name)
    const over = (x: Summary): string => x.cpuOverheadUs === undefined ? dash : `${x.cpuOverheadUs >= 0 ? '+' : ''}${num(x.cpuOverheadUs, 1)}`
    lines.push(`| ${after.label} | ${ratio(before.ratioToBaseline)} → ${ratio(after.ratioToBaseline)} | ${over(before)} → ${over(after)} | ${commands(before)} → ${commands(after)} | ${ratio(r.median, r.range)} |`)
  }
  return lines.join('\n')
}

/** The local cache of the variants that report it: hit ratio, and what a miss costs. */
export function cacheTable (summaries: readonly Summary[]): string | undefined {
  const rows = summaries.filter((s) => s.cacheHitRate !== undefined)
  if (rows.length === 0) return undefined
  const lines = [
    '| variant | cache hit ratio | misses/req | server CPU µs per miss | Redis cmds per miss | of them sent (round trips at most) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const s of rows) {
    lines.push(`| ${s.label} | ${num((s.cacheHitRate ?? 0) * 100, 1)} % | ${num(s.missesPerRequest, 3)} | ${num(s.cpuUsPerMiss, 1)} | ${num(s.redisCommandsPerMiss, 2)} | ${num(s.redisSentPerMiss, 2)} |`)
  }
  return lines.join('\n')
}

function budgetValue (b: BudgetResult, n: number | undefined): string {
  if (n === undefined) return dash
  const ratio = b.metric === 'ratioToBaseline' || b.metric === 'p99RatioToBaseline' || b.versus !== undefined
  return ratio ? `${n.toFixed(2)}×` : num(n, b.metric === 'rps' ? 0 : 2)
}

export function budgetTable (results: readonly BudgetResult[], summaries: readonly Summary[] = []): string {
  const lines = ['| budget | variant | required | measured (median; per-round range) | result |', '| --- | --- | ---: | ---: | --- |']
  for (const b of results) {
    const verdict = b.passed ? 'pass' : `**FAIL**${b.reason === undefined ? '' : ` (${b.reason})`}`
    const s = summaries.find((x) => x.name === b.variant)
    const spread = b.versus !== undefined ? b.range : b.metric === 'ratioToBaseline' ? s?.ratioRange : b.metric === 'p99RatioToBaseline' ? s?.p99RatioRange : undefined
    const measured = budgetValue(b, b.actual) + (spread === undefined || b.actual === undefined || spread[0] === spread[1] ? '' : ` (${spread[0].toFixed(2)}–${spread[1].toFixed(2)})`)
    const metric = b.versus === undefined ? b.metric : `rps ÷ \`${b.versus}\``
    lines.push(`| ${b.description} | \`${b.variant}\` | ${metric} ${b.comparator} ${budgetValue(b, b.value)} | ${measured} | ${verdict} |`)
  }
  return lines.join('\n')
}

export function metaLine (m: Meta): string {
  const la = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ')
  return `${m.date} · commit ${m.revision} · **Node ${m.node}** · ${m.cpu} (${m.cpus} CPUs) · ${m.os} · load average ${la(m.loadAverage.start)} at the start, ${la(m.loadAverage.end)} at the end · ` +
    `load: ${m.loadGenerator}, ${m.connections} connections, ${m.durationS} s per variant after ${m.warmupS} s warm-up, ${m.rounds} interleaved round(s) · pinning: ${m.pinning}` +
    (m.against === undefined ? '' : ` · against: ${m.against.label} = commit ${m.against.revision} (${m.against.dir})`)
}

export function markdown (r: Report): string {
  const parts = [
    '<!-- generated by `' + r.meta.command + '`; do not edit by hand -->',
    '',
    metaLine(r.meta),
    '',
    'Medians across rounds. "× bare" is the median of per-round ratios to bare Fastify with the same route shape ' +
      '(GET /me for reads, POST /write for writes and the login/logout cycle), measured in the same round; ' +
      'in parentheses the lowest and highest per-round ratio. "CPU µs over bare": server CPU per request minus bare\'s, ' +
      'same round (median). "Redis cmds/op": per request, per login + logout cycle for the cycle; INFO commandstats of the ' +
      'timed load, split by MONITOR during a 1-s accounting load into commands the server sent and commands its scripts ran.',
    '',
    summaryTable(r.summaries),
  ]
  const comparison = comparisonTable(r.summaries, r.runs, r.meta.against?.label ?? 'before')
  if (comparison !== undefined) parts.push('', `**Before/after** (${r.meta.against?.label ?? 'before'}: commit ${r.meta.against?.revision ?? '?'}; this: commit ${r.meta.revision}; same rounds)`, '', comparison)
  const noise = Math.max(0, ...r.summaries.map((s) => s.foreignCpuPctMax ?? 0))
  const repeated = r.discarded.length === 0 ? '' : ` (${r.discarded.length} disturbed run(s) were repeated)`
  parts.push('', `Other processes on the machine (and hypervisor steal) used at most ${noise.toFixed(1)} % of a CPU during any timed run${repeated}` +
    (noise >= 10 ? ' (**disturbed**: rerun on a quiet machine, or with `--wait-quiet 120`).' : '.'))
  const cache = cacheTable(r.summaries)
  if (cache !== undefined) {
    parts.push('', '**Local cache** (record look-ups; CPU per miss against the all-hits variant of the same round)', '', cache)
  }
  if (r.budgets !== undefined) parts.push('', '**Budgets** (`benchmarks/budgets.json`)', '', budgetTable(r.budgets, r.summaries))
  if (r.meta.libChanged === true) parts.push('', '**Warning**: lib/ changed during this run, so its rounds measured different versions of the code.')
  if (r.meta.smoke) parts.push('', '_Smoke run: ~1 s per variant, one round; numbers are not meaningful._')
  return parts.join('\n') + '\n'
}

export function json (r: Report): string {
  return JSON.stringify(r, null, 2) + '\n'
}
