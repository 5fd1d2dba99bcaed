import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { SessionError } from '../lib/errors.ts'
import { Limiter } from '../lib/password/limiter.ts'
import { createPasswords } from '../lib/password/index.ts'

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (error: Error) => void
}

function deferred (): Deferred {
  const handles: Partial<Omit<Deferred, 'promise'>> = {}
  const promise = new Promise<void>((resolve, reject) => {
    handles.resolve = () => resolve()
    handles.reject = reject
  })
  return { promise, resolve: handles.resolve!, reject: handles.reject! }
}

/** Lets every already-settled promise callback run (one event-loop turn, no timers involved). */
async function flush (): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve))
}

function isBusy (error: unknown): boolean {
  assert.ok(error instanceof SessionError)
  assert.equal(error.code, 'FST_PASSWORD_BUSY')
  assert.equal(error.statusCode, 503)
  return true
}

describe('Limiter', () => {
  test('Limiter: runs at most maxConcurrency tasks and starts the rest in arrival order', async () => {
    const limiter = new Limiter(2, 10)
    const gates = Array.from({ length: 6 }, deferred)
    const started: number[] = []
    const runs = gates.map((gate, i) => limiter.run(async () => { started.push(i); await gate.promise; return i }))
    await flush()
    assert.deepEqual(started, [0, 1])
    assert.equal(limiter.inFlight, 2)
    assert.equal(limiter.queued, 4)
    gates[1]!.resolve()
    await flush()
    assert.deepEqual(started, [0, 1, 2])
    gates[0]!.resolve()
    await flush()
    assert.deepEqual(started, [0, 1, 2, 3])
    assert.equal(limiter.inFlight, 2)
    for (const gate of gates) gate.resolve()
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3, 4, 5])
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5])
    assert.equal(limiter.inFlight, 0)
    assert.equal(limiter.queued, 0)
  })

  test('Limiter: a newcomer never overtakes a waiter when a slot is released', async () => {
    const limiter = new Limiter(1, 10)
    const first = deferred()
    const order: string[] = []
    const a = limiter.run(async () => { await first.promise; order.push('a') })
    const b = limiter.run(async () => { order.push('b') })
    first.resolve()
    await a
    // A slot was handed to b; c, arriving now, must queue behind it.
    const c = limiter.run(async () => { order.push('c') })
    assert.equal(limiter.inFlight, 1)
    await Promise.all([b, c])
    assert.deepEqual(order, ['a', 'b', 'c'])
  })

  test('Limiter: rejects with FST_PASSWORD_BUSY at once when the queue is full', async () => {
    const limiter = new Limiter(1, 1)
    const gate = deferred()
    const running = limiter.run(() => gate.promise)
    const waiting = limiter.run(async () => 'waited')
    await assert.rejects(limiter.run(async () => 'never'), isBusy)
    assert.equal(limiter.inFlight, 1)
    assert.equal(limiter.queued, 1)
    gate.resolve()
    await running
    assert.equal(await waiting, 'waited')
    const noQueue = new Limiter(1, 0)
    const hold = deferred()
    const held = noQueue.run(() => hold.promise)
    await assert.rejects(noQueue.run(async () => 1), isBusy)
    hold.resolve()
    await held
  })

  test('Limiter: a failing task releases its slot', async () => {
    const limiter = new Limiter(1, 5)
    const failing = limiter.run(async () => { throw new Error('boom') })
    const next = limiter.run(async () => 'next')
    await assert.rejects(failing, /boom/)
    assert.equal(await next, 'next')
    assert.equal(limiter.inFlight, 0)
  })
})

describe('password load', () => {
  test('verify: a burst of 3N verifies never has more than N in flight', async () => {
    const n = 2
    const passwords = createPasswords({ memoryCost: 8192, timeCost: 2, maxConcurrency: n })
    const stored = await passwords.hash('correct horse')
    const state = { settled: false }
    const burst = Promise.all(Array.from({ length: 3 * n }, (_, i) => passwords.verify(stored, i % 2 === 0 ? 'correct horse' : 'wrong horse')))
      .finally(() => { state.settled = true })
    assert.equal(passwords.inFlight, n)
    assert.equal(passwords.queued, 2 * n)
    const samples: number[] = []
    while (!state.settled) {
      samples.push(passwords.inFlight)
      await flush()
    }
    const results = await burst
    assert.deepEqual(results, [true, false, true, false, true, false])
    assert.ok(samples.length > 3 * n, `sampled ${samples.length} times`)
    assert.equal(Math.max(...samples), n)
    assert.equal(passwords.inFlight, 0)
    assert.equal(passwords.queued, 0)
  })

  test('hash: queued hashes complete in arrival order (FIFO)', async () => {
    const passwords = createPasswords({ memoryCost: 2048, timeCost: 1, maxConcurrency: 1 })
    const done: number[] = []
    await Promise.all(Array.from({ length: 8 }, (_, i) => passwords.hash(`password ${i}`).then(() => done.push(i))))
    assert.deepEqual(done, [0, 1, 2, 3, 4, 5, 6, 7])
  })

  test('hash: beyond maxQueue, a call fails at once with FST_PASSWORD_BUSY (503)', async () => {
    const passwords = createPasswords({ memoryCost: 4096, timeCost: 1, maxConcurrency: 1, maxQueue: 1 })
    let firstDone = false
    const first = passwords.hash('password a').then((hash) => { firstDone = true; return hash })
    const second = passwords.hash('password b')
    await assert.rejects(passwords.hash('password c'), isBusy)
    await assert.rejects(passwords.verify(null, 'd'), isBusy)
    assert.equal(firstDone, false, 'rejected while the first hash was still running')
    assert.equal(passwords.inFlight, 1)
    assert.equal(passwords.queued, 1)
    await Promise.all([first, second])
    assert.equal(passwords.operations, 2)
  })

  test('hash: the event loop stays responsive during a burst of hashes', async () => {
    const passwords = createPasswords({ memoryCost: 16384, timeCost: 2 })
    const histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
    const state = { done: false }
    const start = performance.now()
    // Long enough (~0.5 s on 2 cores) that blocking hashes would stall the loop far past the bounds.
    const burst = Promise.all(Array.from({ length: 96 }, (_, i) => passwords.hash(`password ${i}`)))
      .finally(() => { state.done = true })
    // Our own probe besides the histogram: the longest gap between two event-loop turns.
    let longestGap = 0
    let turns = 0
    while (!state.done) {
      const before = performance.now()
      await flush()
      longestGap = Math.max(longestGap, performance.now() - before)
      turns++
    }
    await burst
    const elapsed = performance.now() - start
    histogram.disable()
    const p99 = histogram.percentile(99) / 1e6
    assert.ok(elapsed > 300, `the burst lasted ${elapsed.toFixed(0)} ms, long enough to observe`)
    assert.ok(histogram.count > 0, 'the delay monitor took samples during the burst')
    assert.ok(turns > 10, `the event loop turned ${turns} times`)
    // Hashing on the main thread would stall the loop for whole seconds; these bounds leave room
    // for a shared 2-core machine whose four libuv threads are all hashing.
    assert.ok(longestGap < 1000, `longest event-loop gap ${longestGap.toFixed(1)} ms`)
    assert.ok(p99 < 500, `event-loop delay p99 ${p99.toFixed(1)} ms`)
  })
})
