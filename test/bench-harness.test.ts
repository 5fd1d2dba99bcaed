/**
 * The benchmark harness's accounting (benchmarks/harness/): what its budgets and tables rest on.
 * No timing here; only that commands are counted where they come from and budgets compare what
 * they say.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { evaluateBudgets, type Budget } from '../benchmarks/harness/budgets.ts'
import { pinning } from '../benchmarks/harness/pinning.ts'
import { startBenchRedis } from '../benchmarks/harness/redis.ts'
import type { Run } from '../benchmarks/harness/runner.ts'
import { summarise } from '../benchmarks/harness/stats.ts'
import type { Variant } from '../benchmarks/harness/variant.ts'

test('bench harness: MONITOR counts the commands a client sent apart from those its script ran, and both add up to INFO commandstats', async () => {
  const redis = await startBenchRedis(pinning(false, 1, 0))
  try {
    const calls0 = await redis.calls()
    const monitor = await redis.monitor()
    await redis.command('EVAL', "redis.call('SET', KEYS[1], '1'); redis.call('HSET', KEYS[2], 'f', 'v'); return redis.call('GET', KEYS[1])", '2', 'k1', 'k2')
    await redis.command('HGET', 'k2', 'f')
    const { sent, inScripts } = await monitor.stop()
    const calls1 = await redis.calls()
    assert.deepEqual(Object.fromEntries(sent), { eval: 1, hget: 1 })
    assert.deepEqual(Object.fromEntries(inScripts), { set: 1, hset: 1, get: 1 })
    let delta = 0
    for (const [name, n] of calls1) delta += n - (calls0.get(name) ?? 0)
    assert.equal(delta, 5, 'commandstats counts the sent and the scripted commands alike')
  } finally {
    await redis.stop()
  }
})

function run (variant: string, round: number, rps: number, extra: Partial<Run> = {}): Run {
  return {
    variant,
    node: process.version,
    round,
    status: 'ok',
    load: { requests: rps, durationS: 1, rps, latencyMs: { mean: 1, p50: 1, p90: 1, p99: 1, max: 1 }, badStatus: 0, socketErrors: 0 },
    ...extra,
  }
}

const variant = (name: string, baseline?: string): Variant => ({
  name,
  label: name,
  group: baseline === undefined ? 'baseline' : 'plugin',
  ...(baseline === undefined ? {} : { baseline }),
  server: { command: ['true'] },
  usesRedis: false,
  prepare: async () => ({ kind: 'fixed', request: { method: 'GET', path: '/' } }),
})

test('bench harness: a budget with versus takes the median of per-round req/s ratios; CPU over bare is the median of per-round differences; command counts compare at 0.01', () => {
  const variants = [variant('bare'), variant('a', 'bare'), variant('b', 'bare')]
  const runs: Run[] = [
    run('bare', 0, 100, { cpuUsPerRequest: 20 }), run('a', 0, 90, { cpuUsPerRequest: 23, redisCommandsPerRequest: 0.004 }), run('b', 0, 60),
    run('bare', 1, 50, { cpuUsPerRequest: 40 }), run('a', 1, 30, { cpuUsPerRequest: 50, redisCommandsPerRequest: 0.004 }), run('b', 1, 40),
    run('bare', 2, 80, { cpuUsPerRequest: 25 }), run('a', 2, 80, { cpuUsPerRequest: 29, redisCommandsPerRequest: 0.004 }), run('b', 2, 100),
  ]
  const summaries = summarise(variants, runs)
  assert.equal(summaries.find((s) => s.name === 'a')?.cpuOverheadUs, 4)
  const budgets: Budget[] = [
    { id: 'ahead', variant: 'a', metric: 'rps', versus: 'b', comparator: '>', value: 1, description: 'a ahead of b' },
    { id: 'zero', variant: 'a', metric: 'redisCommandsPerRequest', comparator: '<=', value: 0, description: 'no commands' },
    { id: 'missing', variant: 'a', metric: 'rps', versus: 'c', comparator: '>', value: 1, description: 'against one not run' },
  ]
  const [ahead, zero, missing] = evaluateBudgets(budgets, summaries, runs)
  // Per round: 90/60 = 1.5, 30/40 = 0.75, 80/100 = 0.8: the median is 0.8, although a's median req/s (80) beats b's (60).
  assert.equal(ahead?.actual, 0.8)
  assert.equal(ahead?.passed, false)
  assert.deepEqual(ahead?.range, [0.75, 1.5])
  assert.equal(zero?.actual, 0)
  assert.equal(zero?.passed, true)
  assert.equal(missing?.passed, false)
  assert.equal(missing?.reason, 'c not run')
})
