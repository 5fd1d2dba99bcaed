/**
 * An adversarial review of the four changes merged after lifecycle v2 (login defences, coherence
 * at scale, cluster, operations) and of how they interact, against real redis-servers. A test
 * preceded by `// Fixed defect:` fails on the reviewed code and names the invariant it breaks; every
 * other test is an attack the code withstood and stays as a regression test.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { hashPassword, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { establishNamingKey } from '../lib/keyring.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import type { KeyringChange, KeyringMode, SessionStore } from '../lib/store/contract.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import { barrier, buildApp, captureLogs, eventually, login, SECRET, sessionCookie, works } from './helpers/app.ts'
import { putToSleep, rawCommand, startRedis, type RedisServer } from './helpers/redis-server.ts'
import { record } from './helpers/store-contract.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { startCluster, type RedisCluster } from './helpers/redis-cluster.ts'
import { storageHash } from '../lib/crypto/ids.ts'

const TRIES = 40
const S1 = SECRET
const S2 = 'rotated-secret-0123456789-abcdefghijklmnop'

let redis: RedisServer
const apps: FastifyInstance[] = []
const closers: Array<() => Promise<unknown>> = []
before(async () => { redis = await startRedis(['--enable-debug-command', 'yes']) })
after(async () => {
  await Promise.all(apps.map((a) => a.close()))
  for (const close of closers) await close()
  await redis.stop()
})

let prefixes = 0
function freshPrefix (): string {
  return `fin${++prefixes}:`
}

let users = 0
function user (): string {
  return `final-user-${++users}`
}

async function app (options: Partial<HardenedSessionOptions>, routes?: (app: FastifyInstance) => void, server = {}): Promise<FastifyInstance> {
  const made = await buildApp({ redis: { url: redis.url }, keyPrefix: freshPrefix(), ...options }, server, routes)
  apps.push(made)
  return made
}

/** Two concurrent writes that fit maxSessionBytes alone but not together: exactly one is
 * accepted; returns the instance whose write was refused and the field the other one wrote. */
function acceptedWrite (a: FastifyInstance, b: FastifyInstance, statusA: number, statusB: number): { loser: FastifyInstance, field: string } {
  assert.equal([statusA, statusB].filter((s) => s === 200).length, 1, `exactly one of the two writes is accepted (A ${statusA}, B ${statusB})`)
  assert.ok([statusA, statusB].includes(500), `the refused write answers 500 FST_SESSION_TOO_LARGE (A ${statusA}, B ${statusB})`)
  return statusB === 200 ? { loser: a, field: 'fromB' } : { loser: b, field: 'fromA' }
}

function setCookies (res: { headers: Record<string, unknown> }): string[] {
  const header = res.headers['set-cookie']
  return header === undefined ? [] : Array.isArray(header) ? header as string[] : [header as string]
}

const CROSS_SITE = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }

// ---------------------------------------------------------------------------------------------
describe('csrf', () => {
  // Fixed defect: a cross-site POST without the session cookie that reaches logout() gets a Set-Cookie expiring the victim's session cookie (logout CSRF), although such requests "are never given a session ... cannot sign the visitor out by replacing their cookie".
  test('csrf: a cross-site request without the cookie that reaches logout() or destroy() sends no Set-Cookie for the session cookie', async () => {
    const a = await app({})
    for (const url of ['/logout', '/destroy']) {
      const res = await a.inject({ method: 'POST', url, headers: { ...CROSS_SITE, host: 'app.example' } })
      const mine = setCookies(res).filter((c) => c.startsWith('__Host-sid='))
      assert.deepEqual(mine, [], `${url}: a foreign page can expire the visitor's session cookie: ${mine.join(' | ')}`)
      assert.equal(res.headers['clear-site-data'], undefined, `${url}: Clear-Site-Data on a cross-site response`)
    }
  })

  test('csrf: a cross-site request without the cookie that reaches regenerate() creates nothing and sends no cookie', async () => {
    const a = await app({}, (r) => {
      r.post('/regen-set', async (req) => { await req.session.regenerate(); req.session.set('x', 1); return { ok: true } })
    })
    const plain = await a.inject({ method: 'POST', url: '/regenerate', headers: { ...CROSS_SITE, host: 'app.example' } })
    assert.equal(plain.statusCode, 200)
    assert.deepEqual(setCookies(plain), [])
    const withData = await a.inject({ method: 'POST', url: '/regen-set', headers: { ...CROSS_SITE, host: 'app.example' } })
    assert.equal(withData.statusCode, 403)
    assert.equal(withData.json().code, 'FST_SESSION_CSRF')
    assert.deepEqual(setCookies(withData), [])
  })

  test('csrf: Origin/Sec-Fetch-Site combinations with the cookie present (same-site subdomain, null, case, default port, IPv6 host)', async () => {
    const a = await app({})
    const cookie = await login(a, user())
    const post = (headers: Record<string, string>, host = 'app.example') =>
      a.inject({ method: 'POST', url: '/set', headers: { cookie, host, ...headers }, payload: { k: 1 } })
    const refused: Array<Record<string, string>> = [
      { 'sec-fetch-site': 'same-site', origin: 'http://evil.app.example' },
      { 'sec-fetch-site': 'same-site', origin: 'http://sub.app.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'cross-site', origin: 'http://app.example' },
      { origin: 'null' },
      { origin: 'http://app.example.evil.example' },
      { origin: 'http://app.example:8080' },
      { origin: 'http://app.example@evil.example' },
      { 'sec-fetch-site': 'none', origin: 'http://evil.example' },
    ]
    for (const headers of refused) {
      const res = await post(headers)
      assert.equal(res.statusCode, 403, JSON.stringify(headers))
      assert.deepEqual(setCookies(res), [], JSON.stringify(headers))
    }
    const accepted: Array<[Record<string, string>, string]> = [
      [{ origin: 'HTTP://APP.EXAMPLE' }, 'app.example'],
      [{ origin: 'http://app.example:80' }, 'app.example'],
      [{ origin: 'http://[::1]:3000' }, '[::1]:3000'],
      [{ 'sec-fetch-site': 'same-origin', origin: 'null' }, 'app.example'],
      [{}, 'app.example'],
    ]
    for (const [headers, host] of accepted) assert.equal((await post(headers, host)).statusCode, 200, JSON.stringify(headers))
  })

  test('csrf: a huge Origin header is refused in linear time and never logged', async () => {
    const { lines, logger } = captureLogs('trace')
    const a = await app({}, undefined, { logger })
    const cookie = await login(a, user())
    const huge = 'https://' + 'a'.repeat(60_000) + '.example'
    const started = performance.now()
    const res = await a.inject({ method: 'POST', url: '/set', headers: { cookie, origin: huge, host: 'app.example' }, payload: { k: 1 } })
    assert.equal(res.statusCode, 403)
    assert.ok(performance.now() - started < 2000)
    assert.ok(!JSON.stringify(lines).includes('a'.repeat(200)), 'the Origin value is not logged')
  })
})

// ---------------------------------------------------------------------------------------------
describe('naming key ring', () => {
  /**
   * Ring options on a real RedisStore whose first ring read is answered only once `peers` first
   * reads have been answered (two instances starting at the same moment).
   */
  function gatedRing (store: RedisStore, prefix: string, secrets: string[], gate: { arrived: number, peers: number, open: Promise<void>, release: () => void }) {
    let first = true
    const gated = {
      exists: (key: string) => store.exists(key),
      keyring: async (key: string, changes: readonly KeyringChange[], mode?: KeyringMode): Promise<Record<string, string>> => {
        const reply = await store.keyring(key, changes, mode)
        if (first) {
          first = false
          if (++gate.arrived === gate.peers) gate.release()
          await gate.open
        }
        return reply
      },
    } as unknown as SessionStore
    const quiet = { error () {}, warn () {}, info () {}, debug () {} } as never
    const guard = new Guard(1000, quiet, new Events(undefined, quiet))
    return { store: gated, guard, prefix, secrets: secrets.map((s) => Buffer.from(s)), mayCreate: true, waitMs: 0 }
  }

  async function trackingStore (): Promise<RedisStore> {
    const client = createClient({ url: redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
    await client.connect()
    const store = new RedisStore(client as never, { cacheSize: 100, cacheBytes: 1 << 20, storeTimeout: 1000, probeInterval: 1000 })
    closers.push(async () => { await store.close(); await client.close() })
    return store
  }

  // Fixed defect: two instances starting together on an empty ring during a rotation rollout ([S1] and [S2, S1]) each create their own naming key, so user indexes split for good: revokeUser on one instance misses sessions issued by the other.
  test('naming key ring: instances with [S1] and [S2, S1] that start together agree on one naming key', async () => {
    const [one, two] = [await trackingStore(), await trackingStore()]
    // Which creation lands first is up to scheduling; either order must end in one key.
    for (let i = 0; i < 20; i++) {
      const prefix = freshPrefix()
      let release!: () => void
      const gate = { arrived: 0, peers: 2, open: new Promise<void>((resolve) => { release = resolve }), release: () => release() }
      const [a, b] = await Promise.all([
        establishNamingKey(gatedRing(one, prefix, [S1], gate)),
        establishNamingKey(gatedRing(two, prefix, [S2, S1], gate)),
      ])
      assert.equal(a.toString('hex'), b.toString('hex'), `try ${i + 1}: the two instances name user indexes with different keys`)
    }
  })

  // Fixed defect: (consequence of the split ring) a revokeUser on the [S2, S1] instance leaves the user's session issued by the [S1] instance working.
  test('naming key ring: after a concurrent first start with [S1] and [S2, S1], revokeUser on either instance ends the user\'s sessions on both', async () => {
    const keyPrefix = freshPrefix()
    // Two real instances starting on the same empty store (a fresh prefix per try), until their first keyring reads overlap.
    let split: [FastifyInstance, FastifyInstance] | undefined
    for (let i = 0; i < TRIES && split === undefined; i++) {
      const prefix = `${keyPrefix}${i}:`
      const [a, b] = await Promise.all([
        buildApp({ redis: { url: redis.url }, keyPrefix: prefix, secrets: [S1] }),
        buildApp({ redis: { url: redis.url }, keyPrefix: prefix, secrets: [S2, S1] }),
      ])
      apps.push(a, b)
      const who = user()
      const cookie = await login(a, who)
      if (!(await works(b, cookie))) { split = [a, b]; break }
      await b.session.revokeUser(who)
      assert.equal(await works(a, cookie), false, `try ${i}: revokeUser on [S2, S1] left a session of [S1] working`)
    }
    if (split !== undefined) {
      const [a, b] = split
      const who = user()
      const cookie = await login(a, who)
      assert.equal(await b.session.revokeUser(who), 0)
      assert.equal(await works(a, cookie), false, 'revokeUser on the [S2, S1] instance missed the session issued by the [S1] instance')
    }
  })

  test('naming key ring: rotation [S1] → [S2, S1] → [S2] keeps one index per user (sessions, cap, revokeUser, list)', async () => {
    const keyPrefix = freshPrefix()
    const who = user()
    const old = await app({ keyPrefix, secrets: [S1], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    const c1 = await login(old, who)
    const mid = await app({ keyPrefix, secrets: [S2, S1], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    assert.equal(await works(mid, c1), true)
    // A touch through the rotated instance re-signs the cookie and reseals the record.
    const resigned = sessionCookie(await mid.inject({ url: '/private', headers: { cookie: c1 } })) ?? c1
    const c2 = await login(mid, who)
    const c3 = await login(mid, who)
    const last = await app({ keyPrefix, secrets: [S2], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    assert.equal((await last.session.listUserSessions(who)).length, 3)
    const c4 = await login(last, who) // the cap counts every session of the user, whoever issued it
    assert.equal((await last.session.listUserSessions(who)).length, 3)
    assert.deepEqual([await works(last, resigned), await works(last, c2), await works(last, c3), await works(last, c4)], [false, true, true, true], 'the cap evicted the oldest, issued under [S1]')
    assert.equal(await last.session.revokeUser(who), 3)
    for (const c of [resigned, c2, c3, c4]) assert.equal(await works(last, c), false)
  })
})

// ---------------------------------------------------------------------------------------------
describe('coherence: BCAST echo suppression', () => {
  async function storeWithClient () {
    const client = createClient({ url: redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
    await client.connect()
    const store = new RedisStore(client as never, { cacheSize: 100, cacheBytes: 1 << 20, storeTimeout: 2000, probeInterval: 1000 })
    closers.push(async () => { await store.close(); await client.close() })
    return { client, store }
  }

  // Fixed defect: an own write that UPDATE refuses as too large is still followed by our PEXPIRE, which hides a foreign write processed just before it in the same Redis iteration; the cached snapshot that predates the foreign write stays served indefinitely.
  test('coherence: a foreign write in the same Redis iteration as an own write refused as too large never leaves a stale snapshot cached', async (t) => {
    const own = await storeWithClient()
    const other = createClient({ url: redis.url })
    await other.connect()
    closers.push(() => other.close())
    let stale = 0
    const outcomes = { dropped: 0, fresh: 0 }
    await own.store.create(`${freshPrefix()}warm`, record({}), 60_000) // loads the scripts (no NOSCRIPT retry below)
    await own.store.update(`${freshPrefix()}warm`, { maxBytes: 200, set: new Map(), del: [] }, 60_000)
    for (let i = 0; i < 12; i++) {
      const key = `${freshPrefix()}toolarge`
      await own.store.create(key, record({ x: '"0"' }), 60_000)
      assert.equal(own.store.peek(key)?.fields.get('x'), '"0"', 'the created snapshot is cached')
      const sleeping = await putToSleep(redis.port, 0.4)
      const foreign = other.hSet(key, 'd:y', '"foreign"')
      await new Promise((resolve) => setTimeout(resolve, 20)) // the foreign command reaches Redis first
      const mine = own.store.update(key, { maxBytes: 200, set: new Map([['big', '"' + 'z'.repeat(500) + '"']]), del: [] }, 60_000).catch((err: Error & { code?: string }) => err.code)
      const [, result] = await Promise.all([foreign, mine])
      assert.equal(result, 'FST_SESSION_TOO_LARGE')
      await sleeping.awake
      await own.client.ping() // any invalidation pushed for those writes arrived before this reply
      const cached = own.store.peek(key)
      if (cached === undefined) outcomes.dropped++
      else if (cached?.fields.get('y') === '"foreign"') outcomes.fresh++
      else stale++
    }
    t.diagnostic(`dropped ${outcomes.dropped}, fresh ${outcomes.fresh}, stale ${stale}`)
    assert.equal(stale, 0, `a snapshot without the foreign write stayed cached in ${stale} of 12 tries`)
  })
})

describe('coherence: two instances', () => {
  // Fixed defect: two concurrent writes of one session, each within maxSessionBytes but over it together: the instance whose UPDATE is refused keeps serving its cached snapshot without the other instance's accepted write for good (its PEXPIRE hid the invalidation).
  test('coherence: a value written on one instance is read on the other within 100 ms even when the other\'s concurrent write of the same session is refused as too large', async (t) => {
    const keyPrefix = freshPrefix()
    const options = { keyPrefix, maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>
    const a = await app(options)
    const b = await app(options)
    // Scripts loaded, so that no NOSCRIPT retry changes the order below.
    const warm = await login(a, user())
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { w: 1 } })
    let stale = 0
    for (let i = 0; i < 10; i++) {
      const cookie = await login(a, user())
      assert.equal(await works(a, cookie), true) // cached on A
      assert.equal(await works(b, cookie), true) // and on B, so that B's write is sent at once
      const sleeping = await putToSleep(redis.port, 0.45)
      // Both writes wait for the sleeping Redis and run in one of its iterations. Which one lands
      // first is up to scheduling (B is sent 20 ms earlier, usually first), so the test follows the
      // accepted write: the instance whose write was refused must read the other's.
      const onB = b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromB: 'b'.repeat(450) } })
      await new Promise((resolve) => setTimeout(resolve, 20))
      const onA = a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromA: 'a'.repeat(450) } })
      const [resB, resA] = await Promise.all([onB, onA])
      await sleeping.awake
      t.diagnostic(`B ${resB.statusCode} ${resB.body} A ${resA.statusCode} ${resA.body}`)
      const { loser, field } = acceptedWrite(a, b, resA.statusCode, resB.statusCode)
      try {
        await eventually(async () => (await loser.inject({ url: `/get/${field}`, headers: { cookie } })).json().value !== null, 100, 'the accepted write on the other instance')
      } catch {
        stale++
      }
    }
    assert.equal(stale, 0, `an instance served the session without the other's accepted write beyond 100 ms in ${stale} of 10 tries`)
  })
})

// ---------------------------------------------------------------------------------------------
describe('maxSessionBytes', () => {
  // Fixed defect: a write the UPDATE script refuses as too large (parallel writes adding up) reaches the guard as a non-store error: the client gets 503 FST_SESSION_STORE_UNAVAILABLE instead of 500 FST_SESSION_TOO_LARGE, and a store outage is logged and reported (store_error) although Redis is fine.
  test('maxSessionBytes: a write refused by the store for the combined size answers 500 FST_SESSION_TOO_LARGE and reports no store outage', async (t) => {
    const { lines, logger } = captureLogs('trace')
    const events: SessionEvent[] = []
    const a = await app({ maxSessionBytes: 1000, onEvent: (e) => { events.push(e) } } as Partial<HardenedSessionOptions>, undefined, { logger })
    const cookie = sessionCookie(await a.inject({ method: 'POST', url: '/set', payload: { seed: 1 } })) as string
    const results = await Promise.all([0, 1, 2, 3].map((i) => a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { [`k${i}`]: 'x'.repeat(450) } })))
    const refused = results.filter((r) => r.statusCode !== 200)
    assert.ok(refused.length >= 2, `${refused.length} refused`)
    t.diagnostic(`events ${events.map((e) => e.type).join(',')}; lines ${lines.filter((l) => l.level as number >= 50).map((l) => String(l.msg)).join(' | ')}`)
    for (const r of refused) assert.deepEqual([r.statusCode, r.json().code], [500, 'FST_SESSION_TOO_LARGE'])
    assert.deepEqual(events.filter((e) => e.type === 'store_error'), [], 'a store_error event for a healthy store')
    assert.deepEqual(lines.filter((l) => String(l.msg).includes('store unavailable')).map((l) => l.msg), [], 'an outage logged for a healthy store')
  })
})

// ---------------------------------------------------------------------------------------------
describe('moves', () => {
  // Fixed defect: a regenerate whose carried delta (a concurrent write on the old id) pushes the new record over maxSessionBytes fails after TAKE: the old session is deleted, the other request's accepted write is lost, and an unreachable session stays in the user's index (listed, counted by maxSessionsPerUser).
  test('move: a regenerate whose carried concurrent write would exceed maxSessionBytes leaves the user a working session or nothing listed', async () => {
    const gate = barrier()
    const a = await app({ maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/slow-regen', async (req) => {
        req.session.set('mine', 'm'.repeat(450))
        await gate.wait()
        await req.session.regenerate()
        return { ok: true }
      })
    })
    const who = user()
    const cookie = await login(a, who)
    const slow = a.inject({ method: 'POST', url: '/slow-regen', headers: { cookie } })
    await gate.reached
    const other = await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theirs: 't'.repeat(450) } })
    assert.equal(other.statusCode, 200)
    gate.release()
    const res = await slow
    const issued = sessionCookie(res)
    const listed = await a.session.listUserSessions(who)
    const working = [cookie, ...(issued === undefined ? [] : [issued])].filter((c) => c !== undefined)
    const alive: string[] = []
    for (const c of working) if (await works(a, c)) alive.push(c)
    assert.equal(listed.length, alive.length, `status ${res.statusCode}: ${listed.length} session(s) listed, ${alive.length} reachable by any cookie the user holds`)
  })
})

// ---------------------------------------------------------------------------------------------
describe('register failures', () => {
  // Fixed defect: a register that fails after the store was opened (here FST_SESSION_KEYRING_INVALID) never closes the plugin's Redis connection, even after app.close(): a process that handles the error cannot exit.
  test('register: a process whose register failed with FST_SESSION_KEYRING_INVALID exits by itself after app.close()', async () => {
    const keyPrefix = freshPrefix()
    // Closed before the ring is altered: a running instance would repair its entry at once.
    await (await app({ keyPrefix, secrets: [S1] })).close()
    const fields = (await rawCommand(redis.port, ['HKEYS', keyPrefix + 'keyring'])).split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
    await rawCommand(redis.port, ['HSET', keyPrefix + 'keyring', fields[0] as string, randomBytes(60).toString('base64url')])
    const dir = mkdtempSync(join(tmpdir(), 'fhs-register-'))
    const script = join(dir, 'start.mts')
    const lib = fileURLToPath(new URL('../lib/index.ts', import.meta.url))
    writeFileSync(script, [
      `import Fastify from ${JSON.stringify(import.meta.resolve('fastify'))}`,
      `import plugin from ${JSON.stringify(lib)}`,
      'const app = Fastify()',
      `app.register(plugin, { secrets: [${JSON.stringify(S1)}], redis: { url: ${JSON.stringify(redis.url)} }, keyPrefix: ${JSON.stringify(keyPrefix)} })`,
      'try { await app.ready() } catch (err) { console.log(err.code); await app.close().catch(() => {}) }',
    ].join('\n'))
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const exited = await Promise.race([once(child, 'exit').then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8000))])
    if (!exited) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    assert.match(out, /FST_SESSION_KEYRING_INVALID/)
    assert.equal(exited, true, 'the process was still running 8 s after its failed register and app.close(): the Redis connection was left open')
  })
})

// ---------------------------------------------------------------------------------------------
describe('login throttle', () => {
  const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
  const PASSWORD = 'correct horse battery staple'

  async function throttled (options: Partial<HardenedSessionOptions>, server = {}): Promise<{ a: FastifyInstance, keyPrefix: string }> {
    const keyPrefix = freshPrefix()
    const hash = await hashPassword(PASSWORD, CHEAP)
    const a = await app({ keyPrefix, password: CHEAP, ...options } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/pw', async (req) => {
        const { account, password } = req.body as { account: string, password: string }
        return await req.session.loginWithPassword({ account, password, hash: account.toLowerCase() === 'alice@example.com' ? hash : null })
      })
    }, { trustProxy: true, ...server })
    return { a, keyPrefix }
  }
  const attempt = (a: FastifyInstance, account: string, ip: string, password = 'wrong') =>
    a.inject({ method: 'POST', url: '/pw', payload: { account, password }, headers: { 'x-forwarded-for': ip } })

  async function keys (pattern: string): Promise<string[]> {
    const raw = await rawCommand(redis.port, ['KEYS', pattern])
    return raw.split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
  }

  test('login throttle: counters end within their window, hold neither account nor IP, and Retry-After never exceeds the window', async () => {
    const windowMs = 60_000
    const { a, keyPrefix } = await throttled({ loginThrottle: { perAccount: { max: 3, windowMs }, perIp: { max: 100, windowMs } } })
    for (let i = 0; i < 3; i++) assert.equal((await attempt(a, 'Alice@Example.com', '198.51.100.23')).statusCode, 200)
    const res = await attempt(a, 'alice@example.com', '198.51.100.24', PASSWORD)
    assert.equal(res.statusCode, 429)
    const retry = Number(res.headers['retry-after'])
    assert.ok(retry >= 1 && retry <= windowMs / 1000, `Retry-After ${retry}`)
    const buckets = await keys(`${keyPrefix}t:*`)
    assert.ok(buckets.length >= 2)
    for (const key of buckets) {
      assert.ok(!/alice|example|198\.51|100\.23/i.test(key), key)
      const flat = (await rawCommand(redis.port, ['HGETALL', key])).split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
      assert.ok(!/alice|198\.51/i.test(flat.join(' ')))
      assert.ok(flat.length >= 2 && flat.length % 2 === 0, `${key} is a hash of counters`)
      for (let i = 1; i < flat.length; i += 2) {
        const end = Number((flat[i] as string).split(' ')[1])
        assert.ok(end > Date.now() && end <= Date.now() + windowMs, `${key} ${flat[i - 1]}: window ends in ${end - Date.now()} ms`)
      }
    }
  })

  test('login throttle: IPv4-mapped IPv6, IPv4 and every address of one IPv6 /64 share one per-IP counter', async () => {
    const { a } = await throttled({ loginThrottle: { perAccount: { max: 1000, windowMs: 60_000 }, perIp: { max: 4, windowMs: 60_000 } } })
    const v4 = ['203.0.113.9', '::ffff:203.0.113.9', '::FFFF:203.0.113.9', '203.0.113.9']
    for (const ip of v4) assert.equal((await attempt(a, `x${ip}@example.com`, ip)).statusCode, 200, ip)
    assert.equal((await attempt(a, 'y@example.com', '::ffff:203.0.113.9')).statusCode, 429)
    const v6 = ['2001:db8:1:2::1', '2001:0db8:0001:0002:ffff::9', '2001:DB8:1:2:0:0:0:abcd', '2001:db8:1:2::1:2']
    for (const ip of v6) assert.equal((await attempt(a, `z${ip}@example.com`, ip)).statusCode, 200, ip)
    assert.equal((await attempt(a, 'w@example.com', '2001:db8:1:2:dead:beef::1')).statusCode, 429)
  })

  test('login throttle: 40 parallel wrong attempts from 40 IPs never verify more than max per account', async () => {
    const { a } = await throttled({ loginThrottle: { perAccount: { max: 5, windowMs: 60_000 }, perIp: { max: 1000, windowMs: 60_000 } } })
    const results = await Promise.all(Array.from({ length: TRIES }, (_, i) => attempt(a, 'bob@example.com', `192.0.2.${i + 1}`)))
    const verified = results.filter((r) => r.statusCode === 200).length
    assert.ok(verified <= 5, `${verified} wrong passwords verified at max 5`)
    assert.ok(results.every((r) => r.statusCode === 200 || (r.statusCode === 429 && Number(r.headers['retry-after']) >= 1)))
  })

  test('login throttle: a cross-site login form is refused before any counter is touched', async () => {
    const { a, keyPrefix } = await throttled({})
    const res = await a.inject({ method: 'POST', url: '/pw', payload: { account: 'alice@example.com', password: PASSWORD }, headers: { ...CROSS_SITE, host: 'app.example' } })
    assert.equal(res.statusCode, 403)
    assert.deepEqual(await keys(`${keyPrefix}t:*`), [])
  })
})

// ---------------------------------------------------------------------------------------------
describe('logs and events', () => {
  test('logs: nothing identifying (cookie, id, account, IP, user agent, Redis password) at trace level across error paths, outage included', async () => {
    const pw = 'S3cretRedisPassw0rd-' + randomBytes(6).toString('hex')
    const guarded = await startRedis()
    closers.push(() => guarded.stop())
    await guarded.command('CONFIG', 'SET', 'requirepass', pw)
    const proxy = await startProxy(guarded.port)
    closers.push(() => proxy.close())
    const { lines, logger } = captureLogs('trace')
    const events: SessionEvent[] = []
    const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const
    const hash = await hashPassword('correct horse battery staple', CHEAP)
    const a = await app({
      redis: { url: `redis://default:${pw}@127.0.0.1:${proxy.port}` },
      password: CHEAP,
      storeTimeout: 300,
      sessionInfo: { userAgent: true, ip: true },
      loginThrottle: { perAccount: { max: 1, windowMs: 60_000 }, perIp: { max: 100, windowMs: 60_000 } },
      onEvent: (e) => { events.push(e) },
    } as Partial<HardenedSessionOptions>, (r) => {
      r.post('/pw', async (req) => {
        const { account, password } = req.body as { account: string, password: string }
        return await req.session.loginWithPassword({ account, password, hash: account === 'carol.secret@example.com' ? hash : null, userId: 'uid-carol-77' })
      })
    }, { logger, trustProxy: true })
    const ip = '198.51.100.77'
    const ua = 'AttackerAgent/9.9 (unique-ua-marker)'
    const headers = { 'x-forwarded-for': ip, 'user-agent': ua }
    await a.inject({ method: 'POST', url: '/pw', payload: { account: 'carol.secret@example.com', password: 'nope' }, headers })
    await a.inject({ method: 'POST', url: '/pw', payload: { account: 'carol.secret@example.com', password: 'nope' }, headers }) // throttled
    const cookie = await login(a, 'uid-carol-77')
    const id = cookie.split('=')[1]?.split('.')[0] as string
    await a.inject({ url: '/me', headers: { ...headers, cookie: cookie + 'x' } }) // invalid cookie
    await a.inject({ method: 'POST', url: '/set', headers: { ...headers, cookie, origin: 'https://evil.example' }, payload: { k: 1 } }) // csrf
    proxy.cut()
    proxy.stall()
    await a.inject({ method: 'POST', url: '/set', headers: { ...headers, cookie }, payload: { k: 2 } })
    await a.inject({ method: 'POST', url: '/login', headers, payload: { user: 'uid-carol-77' } })
    proxy.resume()
    await eventually(async () => (await a.inject({ url: '/me', headers: { ...headers, cookie } })).statusCode === 200, 5000, 'recovered')
    // Fastify's own request/response lines (req, res) are the application's choice; the plugin's are checked.
    const ours = lines.filter((l) => l.req === undefined && l.res === undefined)
    const text = JSON.stringify(ours) + JSON.stringify(events)
    for (const [what, value] of [['cookie value', cookie.split('=')[1] as string], ['session id', id], ['account', 'carol.secret'], ['IP', ip], ['user agent', 'unique-ua-marker'], ['Redis password', pw]]) {
      assert.ok(!text.includes(value as string), `${what} appears in a log line or event`)
    }
    assert.ok(ours.some((l) => String(l.msg).includes('store unavailable')), 'the outage was logged')
  })
})

// ---------------------------------------------------------------------------------------------
describe('coherence on a cluster', () => {
  let cluster: RedisCluster
  before(async () => { cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no', '--enable-debug-command', 'yes'] }) })
  after(async () => { await cluster?.stop() })

  // Fixed defect: (cluster) the same hidden invalidation: after A's write of a session is refused as too large in the Redis iteration that also ran B's accepted write, A serves the session without B's write for good.
  test('cluster coherence: a value written on one instance is read on the other within 100 ms even when the other\'s concurrent write is refused as too large', async () => {
    const keyPrefix = freshPrefix()
    const options = { redis: { cluster: { rootNodes: cluster.rootNodes } }, keyPrefix, maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>
    const a = await app(options)
    const b = await app(options)
    const warm = await login(a, user())
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { w: 1 } })
    let stale = 0
    for (let i = 0; i < 6; i++) {
      const cookie = await login(a, user())
      await a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { w: 1 } }) // the scripts are loaded on this shard
      assert.equal(await works(a, cookie), true)
      assert.equal(await works(b, cookie), true)
      const master = await cluster.masterForKey(keyPrefix + storageHash(cookie.split('=')[1]?.split('.')[0] as string))
      const sleeping = (await putToSleep(master.port, 0.45)).awake
      const onB = b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromB: 'b'.repeat(450) } })
      await new Promise((resolve) => setTimeout(resolve, 20))
      const onA = a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromA: 'a'.repeat(450) } })
      const [resB, resA] = await Promise.all([onB, onA])
      await sleeping
      const { loser, field } = acceptedWrite(a, b, resA.statusCode, resB.statusCode)
      try {
        await eventually(async () => (await loser.inject({ url: `/get/${field}`, headers: { cookie } })).json().value !== null, 100, 'the accepted write on the other instance')
      } catch {
        stale++
      }
    }
    assert.equal(stale, 0, `an instance served the session without the other's accepted write beyond 100 ms in ${stale} of 6 tries`)
  })
})
