/**
 * What `durability: 'replica'` costs a logout, against `'primary'`, on a master with one replica
 * (both redis-servers started here on free loopback ports, stopped by pid). Each round builds
 * one app per setting (in an order that alternates from round to round), logs in distinct users
 * and times their logouts: one at a time (latency: median and p99) and `--concurrency` at a
 * time (logouts per second). With taskset and ≥ 2 CPUs, this process runs on CPU 1 and both
 * redis-servers on CPU 0.
 *
 *   npx tsx benchmarks/durability.ts [--rounds 3] [--logouts 1000] [--concurrency 16]
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { buildApp, sessionCookie } from '../test/helpers/app.ts'
import { startRedis, type RedisServer } from '../test/helpers/redis-server.ts'
import { median } from './harness/stats.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string' }, logouts: { type: 'string' }, concurrency: { type: 'string' } } })
const rounds = Number(values.rounds ?? 3)
const logouts = Number(values.logouts ?? 1000)
const concurrency = Number(values.concurrency ?? 16)
type Mode = 'replica' | 'primary'

const pinned = availableParallelism() >= 2 && spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' }).status === 0
function pinRedis (pid: number): void {
  if (pinned) spawnSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' })
}

async function until (what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

async function loginMany (app: FastifyInstance, n: number, tag: string): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, async (_, j) =>
      await app.inject({ method: 'POST', url: '/login', payload: { user: `${tag}-${i + j}` } })))
    for (const res of batch) {
      const cookie = sessionCookie(res)
      if (res.statusCode !== 200 || cookie === undefined) throw new Error(`login answered ${res.statusCode}`)
      cookies.push(cookie)
    }
  }
  return cookies
}

async function logout (app: FastifyInstance, cookie: string): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  if (res.statusCode !== 200) throw new Error(`logout answered ${res.statusCode}: ${res.body}`)
}

interface Sample { mode: Mode, round: number, medianMs: number, p99Ms: number, perSecond: number, waits: number }

async function measure (mode: Mode, round: number, master: RedisServer): Promise<Sample> {
  const app = await buildApp({ redis: { url: master.url }, durability: mode })
  try {
    // Until the probe has seen the replica (ROLE), a revocation need not wait for it.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const serial = await loginMany(app, logouts + 50, `${mode}-${round}-s`)
    for (const cookie of serial.splice(0, 50)) await logout(app, cookie) // warm-up
    const waits0 = (await master.commandStats()).get('wait') ?? 0
    const times: number[] = []
    for (const cookie of serial) {
      const started = performance.now()
      await logout(app, cookie)
      times.push(performance.now() - started)
    }
    const waits = ((await master.commandStats()).get('wait') ?? 0) - waits0
    const parallel = await loginMany(app, logouts, `${mode}-${round}-p`)
    const started = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < parallel.length) await logout(app, parallel[next++] as string)
    }))
    const perSecond = parallel.length / ((performance.now() - started) / 1000)
    times.sort((a, b) => a - b)
    return { mode, round, medianMs: percentile(times, 50), p99Ms: percentile(times, 99), perSecond, waits: waits / serial.length }
  } finally {
    await app.close()
  }
}

const master = await startRedis()
// The replica writes the master's snapshot to its directory: a temporary one.
const replicaDir = mkdtempSync(join(tmpdir(), 'durability-replica-'))
const replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port), '--dir', replicaDir])
try {
  pinRedis(master.pid)
  pinRedis(replica.pid)
  await until('the replica is in sync', async () => (await replica.command('INFO', 'replication')).includes('master_link_status:up'))
  await until('the master lists the replica online', async () => /slave0:.*state=online/.test(await master.command('INFO', 'replication')))
  const load0 = loadavg()
  const samples: Sample[] = []
  for (let round = 0; round < rounds; round++) {
    const order: Mode[] = round % 2 === 0 ? ['replica', 'primary'] : ['primary', 'replica']
    for (const mode of order) {
      const s = await measure(mode, round, master)
      samples.push(s)
      console.log(`round ${round + 1} ${mode.padEnd(7)} logout median ${s.medianMs.toFixed(3)} ms, p99 ${s.p99Ms.toFixed(3)} ms, ${Math.round(s.perSecond)} logouts/s at concurrency ${concurrency}, WAIT per logout ${s.waits.toFixed(2)}`)
    }
  }
  const load1 = loadavg()
  const of = (mode: Mode, pick: (s: Sample) => number): number => median(samples.filter((s) => s.mode === mode).map(pick)) ?? NaN
  const ratio = (pick: (s: Sample) => number): number => median(samples.filter((s) => s.mode === 'replica').map((s) => pick(s) / pick(samples.find((x) => x.mode === 'primary' && x.round === s.round) as Sample))) ?? NaN
  console.log(`\nnode ${process.version}, ${pinned ? 'app on CPU 1, redis-servers on CPU 0' : 'unpinned'}, load average ${load0.map((x) => x.toFixed(2)).join(' ')} → ${load1.map((x) => x.toFixed(2)).join(' ')}; medians of ${rounds} rounds, ${logouts} logouts each way`)
  console.log('| durability | logout median | logout p99 | logouts/s (concurrency ' + concurrency + ') | WAIT per logout |')
  console.log('| --- | ---: | ---: | ---: | ---: |')
  for (const mode of ['primary', 'replica'] as const) {
    console.log(`| '${mode}' | ${of(mode, (s) => s.medianMs).toFixed(3)} ms | ${of(mode, (s) => s.p99Ms).toFixed(3)} ms | ${Math.round(of(mode, (s) => s.perSecond))} | ${of(mode, (s) => s.waits).toFixed(2)} |`)
  }
  console.log(`'replica' ÷ 'primary' (median of per-round ratios): median latency ${ratio((s) => s.medianMs).toFixed(2)}×, p99 ${ratio((s) => s.p99Ms).toFixed(2)}×, throughput ${ratio((s) => s.perSecond).toFixed(2)}×`)
} finally {
  await replica.stop()
  await master.stop()
  rmSync(replicaDir, { recursive: true, force: true })
}
