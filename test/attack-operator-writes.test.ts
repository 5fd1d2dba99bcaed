/**
 * Operator attack on session writes (the one-read UPDATE script whose reply is cached as the
 * session's snapshot, and the login's memoised view): two instances on one Redis, writes racing
 * (some pushing past maxSessionBytes), while one link stalls or is cut, Redis restarts without
 * persistence, or Redis evicts under memory pressure. After each round both instances must serve
 * exactly what Redis holds.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createClient, createCluster } from 'redis'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { buildApp, recordKey, sessionCookie, sleep } from './helpers/app.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'
import { startCluster } from './helpers/redis-cluster.ts'

const closers: Array<() => Promise<unknown>> = []
after(async () => { for (const c of closers.reverse()) await c().catch(() => {}) })
let users = 0
const user = (): string => `ow-user-${++users}`
const MAX = 4096

/** A /peek route: what this instance serves for the session (user, v, pad length). */
const routes = (app: FastifyInstance): void => {
  app.get('/peek', async (req) => ({
    user: req.session.userId ?? null,
    v: req.session.get('v') ?? null,
    pad: ((req.session.get('pad') ?? '') as string).length,
  }))
}

interface Peek { user: string | null, v: string | null, pad: number }
/** `present`: the record and its user-index entry (an evicted entry ends the session: fail closed). */
interface Truth { present: boolean, v: string | null, pad: number, record: boolean }

/** Tracks every status: a 5xx other than 503 must carry an FST_ code. */
function recorder () {
  const uncoded: string[] = []
  const codes = new Map<string, number>()
  const inject = async (x: FastifyInstance, o: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await x.inject(o)
    let code = ''
    try { code = String((res.json() as { code?: string }).code ?? '') } catch {}
    const k = `${res.statusCode}${code ? ' ' + code : ''}`
    codes.set(k, (codes.get(k) ?? 0) + 1)
    if (res.statusCode >= 500 && res.statusCode !== 503 && !code.startsWith('FST_SESSION_')) uncoded.push(`${String(o.url)} ${res.statusCode} ${res.body.slice(0, 120)}`)
    return res
  }
  return { uncoded, codes, inject }
}

type Reader = Pick<ReturnType<typeof createClient>, 'hGetAll' | 'hGet'>

/** What Redis holds for the session (retried for 2 s: a cluster client rediscovering after a failover rejects meanwhile). */
async function truthOf (redis: Reader, key: string): Promise<Truth> {
  for (let i = 0; ; i++) {
    try { return await readTruth(redis, key) } catch (err) { if (i >= 40) throw err; await sleep(50) }
  }
}

async function readTruth (redis: Reader, key: string): Promise<Truth> {
  const all = await redis.hGetAll(key)
  if (Object.keys(all).length === 0) return { present: false, v: null, pad: 0, record: false }
  const prefix = key.slice(0, key.indexOf(':') + 1)
  const listed = all['m:k'] !== undefined && all['m:r'] !== undefined && (await redis.hGet(`${prefix}u:${all['m:k']}`, all['m:r'])) != null
  if (!listed) return { present: false, v: null, pad: 0, record: true }
  const parse = (s: string | undefined): unknown => s === undefined ? undefined : JSON.parse(s)
  return { present: true, v: (parse(all['d:v']) ?? null) as string | null, pad: ((parse(all['d:pad']) ?? '') as string).length, record: true }
}

async function peek (inject: ReturnType<typeof recorder>['inject'], x: FastifyInstance, cookie: string): Promise<Peek | undefined> {
  const res = await inject(x, { url: '/peek', headers: { cookie } })
  return res.statusCode === 200 ? res.json() as Peek : undefined
}

function agrees (p: Peek | undefined, t: Truth, u: string): boolean {
  if (p === undefined) return false // store errors count as a mismatch only if they persist
  if (!t.present) return p.user === null && p.v === null
  return p.user === u && p.v === t.v && p.pad === t.pad
}

/** Mismatches seen on a comparison's first read that a retry within 200 ms cleared (reported, not failed). */
const transient: string[] = []

/**
 * Compares both instances with Redis: reads the truth, each instance, the truth again; a mismatch
 * counts only while the truth was stable around the instance read. Bounded retry (200 ms) for an
 * invalidation still in flight; returns the mismatches that outlived it.
 */
async function compare (redis: Reader, inject: ReturnType<typeof recorder>['inject'], apps: Array<[string, FastifyInstance]>, cookie: string, key: string, u: string): Promise<string[]> {
  const out: string[] = []
  for (const [name, x] of apps) {
    const start = Date.now()
    let last = ''
    for (let first = true; ; first = false) {
      const t1 = await truthOf(redis, key)
      const p = await peek(inject, x, cookie)
      const t2 = await truthOf(redis, key)
      const stable = JSON.stringify(t1) === JSON.stringify(t2)
      if (!stable || agrees(p, t1, u)) { last = ''; if (stable) break } else {
        if (first) transient.push(`${name} first read ${JSON.stringify(p)} vs ${JSON.stringify(t1)}`)
        last = `${name} serves ${JSON.stringify(p)} but Redis holds ${JSON.stringify(t1)}`
      }
      if (Date.now() - start > 200) break
      await sleep(5)
    }
    if (last !== '') out.push(last)
  }
  return out
}

test('writes racing on two instances while B\'s link stalls mid-write then resumes or is cut: afterwards both serve exactly what Redis holds (no stale snapshot), no 5xx but 503 or coded', async (t) => {
  const server = await startRedis()
  closers.push(() => server.stop())
  const proxy = await startProxy(server.port)
  closers.push(async () => { proxy.resume(); await proxy.close() })
  const redis = createClient({ url: server.url })
  await redis.connect()
  closers.push(() => redis.close())
  const keyPrefix = 'ows:'
  const a = await buildApp({ redis: { url: server.url }, keyPrefix, storeTimeout: 300, maxSessionBytes: MAX }, {}, routes)
  const b = await buildApp({ redis: { url: proxy.url }, keyPrefix, storeTimeout: 300, maxSessionBytes: MAX }, {}, routes)
  closers.push(() => a.close(), () => b.close())
  const rec = recorder()
  const failures: string[] = []
  const tally = { rounds: 0, compared: 0 }
  for (let i = 0; i < 40; i++) {
    const u = user()
    const login = await rec.inject(i % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: u } })
    const cookie = sessionCookie(login)
    if (login.statusCode !== 200 || cookie === undefined) { await sleep(50); continue }
    const key = recordKey(keyPrefix, cookie)
    // Warm both caches (B's first use of the login's memoised view, A's miss).
    await peek(rec.inject, a, cookie); await peek(rec.inject, b, cookie)
    const set = (x: FastifyInstance, v: string, pad: number) => rec.inject(x, { method: 'POST', url: '/set', headers: { cookie }, payload: { v, pad: 'p'.repeat(pad) } })
    const pads = [100, MAX - 600, MAX + 200, 1500, MAX - 300]
    const pending = [set(b, `b1-${i}`, pads[i % 5] as number), set(a, `a1-${i}`, pads[(i + 1) % 5] as number), set(b, `b2-${i}`, pads[(i + 2) % 5] as number)]
    for (let k = 0; k < i % 4; k++) await new Promise((resolve) => setImmediate(resolve))
    proxy.stall()
    // A writes while B's bytes (its write and the invalidations it should see) are held.
    pending.push(set(a, `a2-${i}`, pads[(i + 3) % 5] as number))
    await pending[pending.length - 1]
    await sleep(i % 3 === 0 ? 400 : 30) // past storeTimeout on every third round: B's write answered 503, may land later
    if (i % 4 === 3) proxy.cut(); else proxy.resume()
    if (proxy.stalled) proxy.resume()
    await Promise.all(pending)
    // B's writes answered 503 may still land once the link delivers them; a late PEXPIRE too.
    await sleep(50)
    tally.rounds++
    const bad = await compare(redis, rec.inject, [['A', a], ['B', b]], cookie, key, u)
    tally.compared++
    for (const m of bad) failures.push(`${i} (${i % 4 === 3 ? 'cut' : 'resume'}): ${m}`)
    // One more write on each, after the incident: both must see the other's.
    await set(a, `a3-${i}`, 10)
    await set(b, `b3-${i}`, 10)
    for (const m of await compare(redis, rec.inject, [['A', a], ['B', b]], cookie, key, u)) failures.push(`${i} after: ${m}`)
  }
  t.diagnostic(`transient ${transient.length} ${transient.slice(0, 3).join(' | ')}`)
  transient.length = 0
  t.diagnostic(`${JSON.stringify(tally)} codes ${JSON.stringify([...rec.codes])}`)
  assert.deepEqual(failures.slice(0, 10), [])
  assert.deepEqual(rec.uncoded.slice(0, 10), [])
})

test('Redis restarted without persistence while writes and logins run on two instances: no session comes back from a cache (or a late write), a login just after the restart works on both, no 5xx but 503 or coded', async (t) => {
  const server: RedisServer = await startRedis()
  closers.push(() => server.stop())
  const keyPrefix = 'owr:'
  const a = await buildApp({ redis: { url: server.url }, keyPrefix, storeTimeout: 500, maxSessionBytes: MAX }, {}, routes)
  const b = await buildApp({ redis: { url: server.url }, keyPrefix, storeTimeout: 500, maxSessionBytes: MAX }, {}, routes)
  closers.push(() => a.close(), () => b.close())
  const rec = recorder()
  const failures: string[] = []
  const tally = { rounds: 0, before: 0, after: 0, racing: 0 }
  const dead = async (x: FastifyInstance, cookie: string): Promise<boolean> => {
    const p = await peek(rec.inject, x, cookie)
    return p === undefined || (p.user === null && p.v === null)
  }
  for (let round = 0; round < 5; round++) {
    const held: string[] = []
    for (let i = 0; i < 6; i++) {
      const res = await rec.inject(i % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: user() } })
      const c = sessionCookie(res)
      if (res.statusCode === 200 && c !== undefined) held.push(c)
    }
    tally.before += held.length
    // Cache the snapshots on both (the login's memoised view on one, a write's reply on both).
    for (const c of held) {
      await rec.inject(a, { method: 'POST', url: '/set', headers: { cookie: c }, payload: { v: 'before-a', pad: 'p'.repeat(100) } })
      await rec.inject(b, { method: 'POST', url: '/set', headers: { cookie: c }, payload: { v: 'before-b' } })
      await peek(rec.inject, a, c)
    }
    // Logins just before the kill, not used since: the login's memoised view is all their instance has.
    const untouched: Array<{ cookie: string, u: string }> = []
    for (let i = 0; i < 4; i++) {
      const u = user()
      const res = await rec.inject(i % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: u } })
      const c = sessionCookie(res)
      if (res.statusCode === 200 && c !== undefined) untouched.push({ cookie: c, u })
    }
    // Writes and logins in flight while Redis dies.
    const inflight: Array<Promise<unknown>> = []
    const inflightLogins: Array<Promise<{ cookie: string, u: string } | undefined>> = []
    for (const [j, c] of held.entries()) {
      inflight.push(rec.inject(j % 2 ? a : b, { method: 'POST', url: '/set', headers: { cookie: c }, payload: { v: `during-${j}`, pad: 'q'.repeat((j * 900) % MAX) } }))
      const u = user()
      inflightLogins.push(rec.inject(j % 2 ? b : a, { method: 'POST', url: '/login', payload: { user: u } }).then((res) => {
        const c2 = sessionCookie(res)
        return res.statusCode === 200 && c2 !== undefined ? { cookie: c2, u } : undefined
      }))
    }
    for (let k = 0; k < round; k++) await new Promise((resolve) => setImmediate(resolve))
    await server.kill()
    await server.restart()
    await Promise.all(inflight)
    tally.rounds++
    // Sessions logged in just before or during the restart: served by both exactly as Redis holds them
    // (a login that landed on the new server is a session; one that did not is none).
    const direct = createClient({ url: server.url })
    await direct.connect()
    const racing = [...untouched, ...(await Promise.all(inflightLogins)).filter((x) => x !== undefined)]
    for (const { cookie, u } of racing) {
      for (const m of await compare(direct, rec.inject, [['A', a], ['B', b]], cookie, recordKey(keyPrefix, cookie), u)) failures.push(`${round} racing login: ${m}`)
    }
    tally.racing += racing.length
    await direct.close()
    // A login right after the restart works on both.
    let fresh: string | undefined
    for (let tries = 0; tries < 20 && fresh === undefined; tries++) {
      const res = await rec.inject(round % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: user() } })
      fresh = res.statusCode === 200 ? sessionCookie(res) : undefined
      if (fresh === undefined) await sleep(50)
    }
    if (fresh === undefined) failures.push(`${round}: no login within 20 tries after the restart`)
    else {
      tally.after++
      const w = await rec.inject(round % 2 ? b : a, { method: 'POST', url: '/set', headers: { cookie: fresh }, payload: { v: 'fresh' } })
      if (w.statusCode !== 200) failures.push(`${round}: write on the fresh login ${w.statusCode} ${w.body.slice(0, 80)}`)
      for (const [name, x] of [['A', a], ['B', b]] as const) {
        const p = await peek(rec.inject, x, fresh)
        if (p?.v !== 'fresh' || p.user === null) failures.push(`${round}: fresh login on ${name} serves ${JSON.stringify(p)}`)
      }
    }
    // Every session from before the restart is no session on both, and a write to it resurrects nothing.
    for (const c of held) {
      for (const [name, x] of [['A', a], ['B', b]] as const) if (!(await dead(x, c))) failures.push(`${round}: pre-restart session served by ${name}: ${JSON.stringify(await peek(rec.inject, x, c))}`)
      await rec.inject(a, { method: 'POST', url: '/set', headers: { cookie: c }, payload: { v: 'zombie' } })
      for (const [name, x] of [['A', a], ['B', b]] as const) {
        const p = await peek(rec.inject, x, c)
        if (p !== undefined && p.user !== null) failures.push(`${round}: pre-restart session logged in again on ${name} after a write`)
      }
    }
  }
  t.diagnostic(`transient ${transient.length} ${transient.slice(0, 3).join(' | ')}`)
  transient.length = 0
  t.diagnostic(`${JSON.stringify(tally)} codes ${JSON.stringify([...rec.codes])}`)
  assert.deepEqual(failures.slice(0, 10), [])
  assert.deepEqual(rec.uncoded.slice(0, 10), [])
})

test('memory pressure (volatile-lru) with writes racing on two instances: no instance serves a value Redis no longer holds (evicted record => no session), no 5xx but coded', async (t) => {
  const server: RedisServer = await startRedis()
  closers.push(() => server.stop())
  const redis = createClient({ url: server.url })
  await redis.connect()
  closers.push(() => redis.close())
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
  await redis.configSet('maxmemory', String(used + 1_500_000))
  await redis.configSet('maxmemory-policy', 'volatile-lru')
  const keyPrefix = 'owm:'
  const a = await buildApp({ redis: { url: server.url }, keyPrefix, maxSessionBytes: MAX }, {}, routes)
  const b = await buildApp({ redis: { url: server.url }, keyPrefix, maxSessionBytes: MAX }, {}, routes)
  closers.push(() => a.close(), () => b.close())
  const filler = createClient({ url: server.url })
  await filler.connect()
  closers.push(() => filler.close())
  let fill = 0
  const pumping = { on: true }
  const pump = (async () => {
    while (pumping.on) {
      try { await filler.set(`fill:${fill++}`, 'x'.repeat(2000), { PX: 60_000 + (fill % 1000) }) } catch { await sleep(5) }
      if (fill % 50 === 0) await sleep(1)
    }
  })()
  const rec = recorder()
  const failures: string[] = []
  const tally = { rounds: 0, evicted: 0, unlisted: 0, present: 0 }
  const deadline = Date.now() + 10_000
  for (let i = 0; Date.now() < deadline; i++) {
    const u = user()
    const login = await rec.inject(i % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: u } })
    const cookie = sessionCookie(login)
    if (login.statusCode !== 200 || cookie === undefined) continue
    const key = recordKey(keyPrefix, cookie)
    await peek(rec.inject, a, cookie); await peek(rec.inject, b, cookie)
    const set = (x: FastifyInstance, v: string, pad: number) => rec.inject(x, { method: 'POST', url: '/set', headers: { cookie }, payload: { v, pad: 'p'.repeat(pad) } })
    await Promise.all([set(a, `a-${i}`, (i * 700) % (MAX + 400)), set(b, `b-${i}`, (i * 1100) % (MAX + 400)), set(a, `a2-${i}`, 50)])
    tally.rounds++
    const t0 = await truthOf(redis, key)
    if (t0.present) tally.present++; else if (t0.record) tally.unlisted++; else tally.evicted++
    for (const m of await compare(redis, rec.inject, [['A', a], ['B', b]], cookie, key, u)) failures.push(`${i}: ${m}`)
  }
  pumping.on = false
  await pump
  const info = await redis.info('stats')
  t.diagnostic(`transient ${transient.length} ${transient.slice(0, 3).join(' | ')}`)
  transient.length = 0
  t.diagnostic(`${JSON.stringify(tally)} evicted_keys ${/evicted_keys:(\d+)/.exec(info)?.[1]} codes ${JSON.stringify([...rec.codes])}`)
  assert.deepEqual(failures.slice(0, 10), [])
  assert.deepEqual(rec.uncoded.slice(0, 10), [])
})

test('cluster master SIGKILLed while writes race on two instances: once the failover settles, both serve exactly what the promoted master holds (a write lost with the old master is not served from a snapshot), no 5xx but 503 or coded', async (t) => {
  const cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] })
  closers.push(() => cluster.stop())
  const opts = { storeTimeout: 1000, maxSessionBytes: MAX, redis: { cluster: { rootNodes: cluster.rootNodes } } }
  const a = await buildApp(opts, {}, routes)
  const b = await buildApp(opts, {}, routes)
  closers.push(() => a.close(), () => b.close())
  const reader = createCluster({ rootNodes: cluster.rootNodes })
  reader.on('error', () => {})
  await reader.connect()
  closers.push(() => reader.close())
  const rec = recorder()
  const sessions: Array<{ cookie: string, key: string, u: string }> = []
  for (let i = 0; i < 12; i++) {
    const u = user()
    const res = await rec.inject(i % 2 ? a : b, { method: 'POST', url: '/login', payload: { user: u } })
    const cookie = sessionCookie(res)
    if (res.statusCode === 200 && cookie !== undefined) sessions.push({ cookie, u, key: recordKey('sess:', cookie) })
  }
  assert.ok(sessions.length >= 6)
  const running = { on: true }
  let writes = 0
  const writer = async (x: FastifyInstance, w: number): Promise<void> => {
    for (let i = 0; running.on; i++) {
      const s = sessions[(i + w) % sessions.length] as typeof sessions[number]
      await rec.inject(x, { method: 'POST', url: '/set', headers: { cookie: s.cookie }, payload: { v: `w${w}-${i}`, pad: 'p'.repeat((i * 613) % (MAX + 300)) } })
      await rec.inject(x === a ? b : a, { url: '/peek', headers: { cookie: s.cookie } })
      writes++
    }
  }
  const workers = [writer(a, 0), writer(b, 1), writer(a, 2), writer(b, 3)]
  await sleep(1000)
  const victim = await cluster.masterForKey((sessions[0] as typeof sessions[number]).key)
  await cluster.killMaster(victim.port)
  const { msSinceKill } = await cluster.waitForFailover(victim.port)
  await sleep(1000)
  running.on = false
  await Promise.all(workers)
  await sleep(150)
  const failures: string[] = []
  for (const s of sessions) {
    for (const m of await compare(reader, rec.inject, [['A', a], ['B', b]], s.cookie, s.key, s.u)) failures.push(`${s.key.slice(5, 15)}: ${m}`)
  }
  t.diagnostic(`transient ${transient.length} ${transient.slice(0, 3).join(' | ')}`)
  transient.length = 0
  t.diagnostic(`failover ${msSinceKill} ms; writes ${writes}; codes ${JSON.stringify([...rec.codes])}`)
  await cluster.restart(victim.port)
  assert.deepEqual(failures.slice(0, 10), [])
  assert.deepEqual(rec.uncoded.slice(0, 10), [])
})
