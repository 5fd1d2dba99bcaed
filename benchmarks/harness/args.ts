/**
 * Command-line options of `npm run bench` (`tsx benchmarks/run.ts`).
 */
import { parseArgs } from 'node:util'

export const USAGE = `npm run bench -- [options]

  --rounds N           interleaved rounds (default 3; every variant once per round, order rotated)
  --duration S         seconds of timed load per variant and round (default 5, whole seconds)
  --warmup S           seconds of untimed load before each timed one (default 1; 0 = none)
  --connections N      concurrent connections (default 50)
  --variants a,b       only these variants (their baselines are added)
  --check              exit non-zero and name every budget in --budgets that is not met
  --budgets FILE       budgets file (default benchmarks/budgets.json)
  --smoke              CI mode: 1 s per variant, 1 round, no warm-up, no budget check
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
  --config FILE        benchmark your own servers and routes (see docs/benchmarks.md)
  --target-url URL     load an already-running server on 127.0.0.1 (one route)
  --baseline-url URL   ... and compare it with this one
  --cookie VALUE       Cookie header sent with --target-url
  --method M           method for --target-url (default GET)
  --body TEXT          body for --target-url
  --header "k: v"      extra header for --target-url (repeatable)
  --server-pid PID     pid of the --target-url server, for CPU µs/request
  --list               list the built-in variants and exit
  -h, --help
`

export interface Options {
  rounds: number
  durationS: number
  warmupS: number
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
  config: string | undefined
  targetUrl: string | undefined
  baselineUrl: string | undefined
  cookie: string | undefined
  method: string
  body: string | undefined
  headers: string[]
  serverPid: number | undefined
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
      config: { type: 'string' },
      'target-url': { type: 'string' },
      'baseline-url': { type: 'string' },
      cookie: { type: 'string' },
      method: { type: 'string' },
      body: { type: 'string' },
      header: { type: 'string', multiple: true },
      'server-pid': { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const smoke = values.smoke === true
  const load = values.load ?? 'auto'
  if (load !== 'auto' && load !== 'wrk' && load !== 'autocannon') throw new TypeError(`--load must be wrk, autocannon or auto, got ${load}`)
  if (values.config !== undefined && values['target-url'] !== undefined) throw new TypeError('use either --config or --target-url')
  return {
    rounds: smoke ? 1 : int(values.rounds, 'rounds', 3, 1),
    durationS: smoke ? 1 : int(values.duration, 'duration', 5, 1),
    warmupS: smoke ? 0 : int(values.warmup, 'warmup', 1, 0),
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
    config: values.config,
    targetUrl: values['target-url'],
    baselineUrl: values['baseline-url'],
    cookie: values.cookie,
    method: values.method ?? 'GET',
    body: values.body,
    headers: values.header ?? [],
    serverPid: values['server-pid'] === undefined ? undefined : int(values['server-pid'], 'server-pid', 0, 1),
    list: values.list === true,
    help: values.help === true,
  }
}
