/**
 * Attacks on the one-read UPDATE script (scripts.ts), the pooled random tokens (random.ts) and
 * the signer's pre-populated memo (signer.ts), against a real redis-server.
 * Every test is an attack; a test preceded by `// Defect:` failed on the code it was written against.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateEncryptionKey, type HardenedSessionOptions } from '../lib/index.ts'
import type { RedisStore } from '../lib/store/redis.ts'
import { decodeRecord } from '../lib/store/record-encoding.ts'
import type { RecordUpdate, SessionRecord } from '../lib/store/contract.ts'
import { randomToken } from '../lib/crypto/random.ts'
import { generateId, generateRef, isWellFormedId } from '../lib/crypto/ids.ts'
import { Signer } from '../lib/crypto/signer.ts'
import { eventually, login, recordKey, works } from './helpers/app.ts'
import { putToSleep } from './helpers/redis-server.ts'
import { record } from './helpers/store-contract.ts'
import { useRedis } from './helpers/redis-fixture.ts'
import { plainClient, trackedStore } from './helpers/tracked-store.ts'

const fx = useRedis('wscr', ['--enable-debug-command', 'yes'])

/** A deterministic PRNG, so that a failing seed can be replayed. */
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Plain = Awaited<ReturnType<typeof plainClient>>

/** What Redis holds for `key`, decoded as the store decodes it. */
async function held (other: Plain, key: string): Promise<SessionRecord | undefined> {
  const all = await other.hGetAll(key)
  return Object.keys(all).length === 0 ? undefined : decodeRecord(all)
}

/** The cache is coherent when it holds nothing, or holds exactly what Redis holds. */
async function assertCoherent (store: RedisStore, client: { ping: () => Promise<unknown> }, other: Plain, key: string, what: string): Promise<'held' | 'dropped'> {
  await client.ping() // any invalidation pushed before this reply has been applied
  const local = store.peek(key)
  if (local === undefined) return 'dropped'
  const actual = await held(other, key)
  // The reply of `held` may race a later invalidation only if someone wrote meanwhile: nobody does here.
  assert.deepEqual(local === null ? undefined : local, actual, `${what}: the cached snapshot differs from Redis`)
  return 'held'
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']

function randomUpdate (rnd: () => number, maxBytes = 1 << 20, names = NAMES): RecordUpdate {
  const pick = (): string => names[Math.floor(rnd() * names.length)] as string
  const set = new Map<string, string>()
  const del: string[] = []
  const replace = new Map<string, { from: string, to: string }>()
  for (let i = Math.floor(rnd() * 4); i > 0; i--) set.set(pick(), `"s${Math.floor(rnd() * 1000)}"`)
  for (let i = Math.floor(rnd() * 5); i > 0; i--) del.push(pick()) // duplicates, absent fields, fields also set
  for (let i = Math.floor(rnd() * 3); i > 0; i--) {
    // `from` is sometimes the value a field holds (see seedFields) and sometimes not.
    const name = pick()
    replace.set(name, { from: rnd() < 0.6 ? `"v${name}"` : '"nope"', to: `"r${Math.floor(rnd() * 1000)}"` })
  }
  const touch = rnd() < 0.3
    ? { idleExpiry: Date.now() + 30_000 + Math.floor(rnd() * 1000), seal: `seal${Math.floor(rnd() * 1000)}`, sealed: [], user: undefined, userAgent: rnd() < 0.5 ? `ua${Math.floor(rnd() * 100)}` : undefined, ip: rnd() < 0.5 ? '10.0.0.1' : undefined }
    : undefined
  return { maxBytes, set, del, replace, touch }
}

function seedFields (rnd: () => number, names = NAMES): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of names) if (rnd() < 0.6) out[name] = `"v${name}"`
  return out
}

/** The record an update should leave, from what Redis held before it (the script's semantics). */
function model (before: SessionRecord, update: RecordUpdate): SessionRecord {
  const fields = new Map(before.fields)
  for (const [k, v] of update.set) fields.set(k, v)
  for (const [k, { from, to }] of update.replace ?? []) if (fields.get(k) === from) fields.set(k, to)
  for (const k of update.del) fields.delete(k)
  const t = update.touch
  const meta = t === undefined
    ? {}
    : { idleExpiry: t.idleExpiry, seal: t.seal, sealed: t.sealed, ...(t.userAgent === undefined ? {} : { userAgent: t.userAgent }), ...(t.ip === undefined ? {} : { ip: t.ip }) }
  return { ...before, ...meta, fields }
}

function sorted (r: SessionRecord | undefined | null): unknown {
  if (r === undefined || r === null) return r
  return { ...r, fields: [...r.fields].sort(([x], [y]) => x < y ? -1 : 1) }
}

describe('UPDATE script: snapshot coherence', () => {
  for (const names of [NAMES, Array.from({ length: 40 }, (_, k) => `f${k}`)]) {
    test(`UPDATE (${names.length} data field names): over 300 random updates (sets, duplicate deletes, absent deletes, fields both set and deleted, matching and stale replaces) and touches (meta and TTL), after a foreign writer edited, added and deleted fields, the result equals a model of the update applied to what Redis held, the TTL is the touch's, and the cached snapshot equals Redis`, async (t) => {
      const own = await trackedStore(fx, 1000)
      const other = await plainClient(fx)
      const prefix = fx.freshPrefix()
      let heldCount = 0
      for (let seed = 1; seed <= 300; seed++) {
        const rnd = prng(seed)
        const key = `${prefix}${seed}`
        await own.store.create(key, record(seedFields(rnd, names)), 60_000)
        // A foreign writer edits, adds and deletes data fields (the store does not see these writes).
        const edits = other.multi()
        for (const name of names) {
          const r = rnd()
          if (r < 0.15) edits.hSet(key, `d:${name}`, `"foreign-${name}"`)
          else if (r < 0.3) edits.hDel(key, `d:${name}`)
          else if (r < 0.4) edits.hSet(key, `d:${name}`, `"v${name}"`)
        }
        await edits.exec()
        const before = await held(other, key) as SessionRecord
        const update = randomUpdate(rnd, 1 << 20, names)
        assert.equal(await other.pExpire(key, 90_000), 1)
        assert.equal(await own.store.update(key, update, 30_000), true)
        const pttl = await other.pTTL(key)
        // The pipelined PEXPIRE sets the request's view of the lifetime, touched or not.
        assert.ok(pttl <= 30_000 && pttl > 25_000, `seed ${seed}: TTL ${pttl}`)
        const after = await held(other, key)
        assert.deepEqual(sorted(after), sorted(model(before, update)), `seed ${seed}: Redis after the update`)
        if (await assertCoherent(own.store, own.client, other, key, `seed ${seed}`) === 'held') heldCount++
      }
      t.diagnostic(`snapshot held after ${heldCount} of 300 updates`)
    })
  }

  test('UPDATE: deleting every data field of a record plus several absent ones, and setting then deleting the same field, leaves Redis and the cache with no data fields and the meta fields untouched', async () => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const key = `${fx.freshPrefix()}all`
    await own.store.create(key, record({ a: '1', b: '2', c: '3' }), 60_000)
    const before = await other.hGetAll(key)
    assert.equal(await own.store.update(key, { maxBytes: 1 << 20, set: new Map([['z', '9']]), del: ['c', 'a', 'x', 'b', 'z', 'a'] }, 60_000), true)
    const after = await other.hGetAll(key)
    const meta = Object.fromEntries(Object.entries(before).filter(([f]) => !f.startsWith('d:')))
    assert.deepEqual(after, meta)
    assert.equal(await assertCoherent(own.store, own.client, other, key, 'all deleted'), 'held')
  })

  test('UPDATE: an update of a record a foreign writer deleted or emptied writes nothing (no partial record is created) and is reported as gone', async () => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const key = `${fx.freshPrefix()}gone`
    await own.store.create(key, record({ a: '1' }), 60_000)
    await other.del(key)
    assert.equal(await own.store.update(key, { maxBytes: 1 << 20, set: new Map([['a', '2']]), del: ['a'] }, 60_000), false)
    assert.equal(await other.exists(key), 0, 'a late write recreated the deleted record')
    const local = own.store.peek(key)
    assert.ok(local === undefined || local === null, 'the deleted record is still served')
  })

  test('UPDATE: a foreign write pipelined in the same Redis iteration as many own updates (sleeping Redis) never leaves a snapshot cached that differs from Redis', async (t) => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const prefix = fx.freshPrefix()
    const warm = `${prefix}warm`
    await own.store.create(warm, record({}), 60_000)
    await own.store.update(warm, { maxBytes: 1 << 20, set: new Map([['a', '1']]), del: [] }, 60_000)
    const outcomes = { held: 0, dropped: 0 }
    for (let i = 0; i < 10; i++) {
      const key = `${prefix}${i}`
      await own.store.create(key, record({ a: '"0"', b: '"0"', c: '"0"' }), 60_000)
      const sleeping = await putToSleep(fx.redis.port, 0.3)
      const ops: Array<Promise<unknown>> = []
      // Own updates and foreign edits interleaved; all run in one iteration after the sleep.
      ops.push(own.store.update(key, { maxBytes: 1 << 20, set: new Map([['a', '"1"']]), del: ['b'] }, 60_000))
      await new Promise((resolve) => setTimeout(resolve, 10))
      ops.push(other.hSet(key, 'd:c', '"foreign"'))
      await new Promise((resolve) => setTimeout(resolve, 10))
      ops.push(own.store.update(key, { maxBytes: 1 << 20, set: new Map([['d', '"2"']]), del: ['a'], replace: new Map([['c', { from: '"0"', to: '"r"' }]]) }, 60_000))
      await new Promise((resolve) => setTimeout(resolve, 10))
      ops.push(other.hDel(key, 'd:d'))
      await Promise.all(ops)
      await sleeping.awake
      const actual = await held(other, key)
      assert.equal(actual?.fields.get('c'), '"foreign"', 'the foreign write of c was overwritten (the replace must be a compare-and-set)')
      outcomes[await assertCoherent(own.store, own.client, other, key, `round ${i}`)]++
    }
    t.diagnostic(`held ${outcomes.held}, dropped ${outcomes.dropped}`)
  })

  test('UPDATE: two stores (two connections) updating one record concurrently in 40 rounds of random updates: each one\'s cached snapshot is dropped or equals Redis', async (t) => {
    const a = await trackedStore(fx, 1000)
    const b = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const prefix = fx.freshPrefix()
    const outcomes = { held: 0, dropped: 0 }
    for (let round = 0; round < 40; round++) {
      const rnd = prng(1000 + round)
      const key = `${prefix}${round}`
      await a.store.create(key, record(seedFields(rnd)), 60_000)
      await b.store.read(key) // cached on b too
      const writes: Array<Promise<unknown>> = []
      for (let i = 0; i < 6; i++) writes.push((i % 2 === 0 ? a : b).store.update(key, randomUpdate(rnd), 60_000))
      await Promise.all(writes)
      for (const [name, s] of [['a', a], ['b', b]] as const) outcomes[await assertCoherent(s.store, s.client, other, key, `round ${round} store ${name}`)]++
    }
    t.diagnostic(`held ${outcomes.held}, dropped ${outcomes.dropped}`)
  })
})

describe('UPDATE script: cost', () => {
  // Defect: the one-read UPDATE finds each set, replaced or deleted field by a linear scan of the HGETALL reply, so a write costs O(fields written x fields held): on a 3000-field record (about 30 KB, within the default maxSessionBytes of 64 KiB) a write of 3000 fields and 3000 deletes blocked Redis for about 1 s (12 ms before the change), stalling every instance sharing it.
  test('UPDATE: a write of 3000 new fields, 1500 deletes of held fields and 1500 deletes of absent ones on a 3000-field record runs under 200 ms inside Redis (SLOWLOG), and the cached snapshot equals Redis', async () => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const key = `${fx.freshPrefix()}wide`
    const fields: Record<string, string> = {}
    for (let i = 0; i < 3000; i++) fields[`f${i}`] = '1'
    await own.store.create(key, record(fields), 60_000)
    await own.store.update(key, { maxBytes: 1 << 20, set: new Map([['warm', '1']]), del: [] }, 60_000) // the script is loaded
    await other.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '200000'])
    await other.sendCommand(['SLOWLOG', 'RESET'])
    const set = new Map<string, string>()
    for (let i = 0; i < 3000; i++) set.set(`n${i}`, '2')
    const del: string[] = []
    for (let i = 0; i < 3000; i += 2) del.push(`f${i}`, `x${i}`)
    assert.equal(await own.store.update(key, { maxBytes: 1 << 20, set, del }, 60_000), true)
    const slow = await other.sendCommand(['SLOWLOG', 'GET', '10']) as Array<[unknown, unknown, number, string[]]>
    await other.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '10000'])
    assert.deepEqual(slow.map((e) => `${e[3]?.[0]} ${Math.round(e[2] / 1000)} ms`), [], 'commands over 200 ms inside Redis')
    const after = await held(other, key)
    assert.equal(after?.fields.size, 3000 + 1500 + 1)
    await assertCoherent(own.store, own.client, other, key, 'wide')
  })
})

describe('UPDATE script: size refusal', () => {
  test('UPDATE: a write refused as too large (with sets, replaces and deletes) leaves every field of Redis unchanged, drops the cached snapshot, and a read then serves what Redis holds', async () => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const key = `${fx.freshPrefix()}big`
    await own.store.create(key, record({ a: '"1"', b: '"2"', c: '"3"' }), 60_000)
    assert.ok(own.store.peek(key) !== undefined)
    const before = await other.hGetAll(key)
    const err = await own.store.update(key, {
      maxBytes: 400,
      set: new Map([['big', `"${'x'.repeat(500)}"`], ['a', '"changed"']]),
      del: ['b', 'c'],
      replace: new Map([['a', { from: '"1"', to: '"r"' }]]),
    }, 60_000).catch((e: Error & { code?: string }) => e.code)
    assert.equal(err, 'FST_SESSION_TOO_LARGE')
    assert.deepEqual(await other.hGetAll(key), before, 'a refused write changed Redis')
    assert.equal(own.store.peek(key), undefined, 'a refused write leaves a snapshot cached')
    // A read after the refusal serves what Redis holds.
    assert.deepEqual(sorted(await own.store.read(key)), sorted(decodeRecord(before)))
  })

  test('UPDATE: a write that shrinks a record already over maxBytes (deletes) is accepted and one that grows it is refused', async () => {
    const own = await trackedStore(fx, 1000)
    const other = await plainClient(fx)
    const key = `${fx.freshPrefix()}shrink`
    await own.store.create(key, record({ a: `"${'a'.repeat(300)}"`, b: `"${'b'.repeat(300)}"` }), 60_000)
    assert.equal(await own.store.update(key, { maxBytes: 500, set: new Map([['c', '"1"']]), del: ['a'] }, 60_000), true)
    assert.deepEqual([...(await held(other, key))?.fields.keys() ?? []].sort(), ['b', 'c'])
    await assertCoherent(own.store, own.client, other, key, 'shrunk')
    const err = await own.store.update(key, { maxBytes: 500, set: new Map([['d', `"${'d'.repeat(300)}"`]]), del: ['c'] }, 60_000).catch((e: Error & { code?: string }) => e.code)
    assert.equal(err, 'FST_SESSION_TOO_LARGE')
    assert.deepEqual([...(await held(other, key))?.fields.keys() ?? []].sort(), ['b', 'c'], 'the refused write deleted c')
  })

  test('plugin: two instances writing one session concurrently, 12 rounds, each write fitting alone but not together: exactly one lands, Redis holds it, and both instances read Redis\'s value within 100 ms', async (t) => {
    const keyPrefix = fx.freshPrefix()
    const options = { keyPrefix, maxSessionBytes: 1000 } as Partial<HardenedSessionOptions>
    const a = await fx.app(options)
    const b = await fx.app(options)
    const other = await plainClient(fx)
    const warm = await login(a, fx.user())
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { w: 1 } })
    let bad = 0
    for (let i = 0; i < 12; i++) {
      const cookie = await login(a, fx.user())
      assert.equal(await works(a, cookie), true)
      assert.equal(await works(b, cookie), true)
      const [ra, rb] = await Promise.all([
        a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromA: 'a'.repeat(450) } }),
        b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { fromB: 'b'.repeat(450) } }),
      ])
      const ok = [ra.statusCode, rb.statusCode].filter((s) => s === 200).length
      assert.equal(ok, 1, `exactly one accepted (A ${ra.statusCode}, B ${rb.statusCode})`)
      const inRedis = await other.hGetAll(recordKey(keyPrefix, cookie))
      const field = ra.statusCode === 200 ? 'fromA' : 'fromB'
      const refused = ra.statusCode === 200 ? 'fromB' : 'fromA'
      assert.ok(inRedis[`d:${field}`] !== undefined && inRedis[`d:${refused}`] === undefined, 'Redis holds the accepted write only')
      for (const app of [a, b]) {
        try {
          await eventually(async () => {
            const got = (await app.inject({ url: `/get/${field}`, headers: { cookie } })).json().value
            const gone = (await app.inject({ url: `/get/${refused}`, headers: { cookie } })).json().value
            return got !== null && gone === null
          }, 100, 'the accepted write and not the refused one')
        } catch { bad++ }
      }
    }
    assert.equal(bad, 0, `an instance served something other than Redis beyond 100 ms in ${bad} reads`)
    t.diagnostic('all rounds coherent')
  })
})

describe('UPDATE script: re-encryption compare-and-set racing a write', () => {
  test('plugin: a re-encrypting write (K1 -> K2) on one instance racing a write of the same encrypted field and deletes of several fields on another, 12 rounds: the written value always wins, the deleted fields stay deleted, Redis holds it under K2 or as written, and both instances read it within 100 ms', async (t) => {
    const K1 = { id: 'k1', key: generateEncryptionKey() }
    const K2 = { id: 'k2', key: generateEncryptionKey() }
    const keyPrefix = fx.freshPrefix()
    const old = await fx.app({ keyPrefix, encryption: { keys: [K1], fields: ['secret', 'a', 'b'] } } as Partial<HardenedSessionOptions>)
    const a = await fx.app({ keyPrefix, encryption: { keys: [K2, K1], fields: ['secret', 'a', 'b'] } } as Partial<HardenedSessionOptions>)
    const b = await fx.app({ keyPrefix, encryption: { keys: [K2, K1], fields: ['secret', 'a', 'b'] } } as Partial<HardenedSessionOptions>)
    const other = await plainClient(fx)
    let bad = 0
    for (let i = 0; i < 12; i++) {
      const cookie = await login(old, fx.user(), { secret: 'old', a: 'a', b: 'b', c: 'c', d: 'd' })
      const key = recordKey(keyPrefix, cookie)
      assert.match(await other.hGet(key, 'd:secret') ?? '', /^~1\.k1\./)
      assert.equal(await works(a, cookie), true)
      assert.equal(await works(b, cookie), true)
      const [ra, rb, rc] = await Promise.all([
        a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { other: i } }), // re-encrypts secret, a, b (CAS)
        b.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { secret: `new${i}` } }),
        b.inject({ method: 'POST', url: '/delete/c', headers: { cookie } }),
      ])
      assert.deepEqual([ra.statusCode, rb.statusCode, rc.statusCode], [200, 200, 200])
      const stored = await other.hGetAll(key)
      assert.equal(stored['d:c'], undefined, 'a deleted field came back')
      for (const app of [a, b]) {
        try {
          await eventually(async () => {
            const got = (await app.inject({ url: '/get/secret', headers: { cookie } })).json().value
            const other = (await app.inject({ url: '/get/other', headers: { cookie } })).json().value
            const c = (await app.inject({ url: '/get/c', headers: { cookie } })).json().value
            const av = (await app.inject({ url: '/get/a', headers: { cookie } })).json().value
            return got === `new${i}` && other === i && c === null && av === 'a'
          }, 100, 'the written value')
        } catch { bad++ }
      }
    }
    t.diagnostic(`bad ${bad}`)
    assert.equal(bad, 0, `an instance did not read the written value within 100 ms in ${bad} reads`)
  })
})

describe('UPDATE script: a late write after logout', () => {
  test('plugin: writes racing a logout on another instance, 15 rounds: the session never comes back (Redis has no record, both instances answer without it)', async () => {
    const keyPrefix = fx.freshPrefix()
    const options = { keyPrefix } as Partial<HardenedSessionOptions>
    const a = await fx.app(options)
    const b = await fx.app(options)
    const other = await plainClient(fx)
    for (let i = 0; i < 15; i++) {
      const cookie = await login(a, fx.user())
      assert.equal(await works(b, cookie), true)
      await Promise.all([
        a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { x: i } }),
        b.inject({ method: 'POST', url: '/logout', headers: { cookie } }),
        a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { y: i } }),
      ])
      assert.equal(await other.exists(recordKey(keyPrefix, cookie)), 0, `round ${i}: a late write recreated the record`)
      await eventually(async () => !(await works(a, cookie)) && !(await works(b, cookie)), 200, 'the logged-out session')
    }
  })
})

describe('random tokens', () => {
  test('randomToken: 200 000 ids and refs drawn across many pool refills, with sizes 1, 1023, 1024, 1025 and 4096 in between, never repeat, are well formed and never come from zeroed bytes', () => {
    const seen = new Set<string>()
    let zeroRuns = 0
    for (let i = 0; i < 100_000; i++) {
      const id = generateId()
      const ref = generateRef()
      assert.ok(isWellFormedId(id))
      assert.match(ref, /^[A-Za-z0-9_-]{12}$/)
      assert.ok(!seen.has(id) && !seen.has(ref), 'a token repeated')
      seen.add(id)
      seen.add(ref)
      // 32 zero bytes would be 'AAAA…': the chance of 8 zero bytes in a row from a CSPRNG is 2^-64.
      if (id.includes('AAAAAAAAAAA') || ref.includes('AAAAAAAAAAA')) zeroRuns++
      if (i % 997 === 0) {
        for (const n of [1, 1023, 1024, 1025, 4096]) {
          const t = randomToken(n)
          assert.equal(Buffer.from(t, 'base64url').length, n)
          if (n >= 16) assert.ok(!Buffer.from(t, 'base64url').subarray(0, 16).equals(Buffer.alloc(16)), 'a token of zeroed bytes')
        }
      }
    }
    assert.equal(zeroRuns, 0, 'tokens made of zeroed (already handed out) bytes')
  })
})

describe('signer memo', () => {
  test('signer: a cookie signed with remember verifies, and every single-character alteration of it, a truncation, an extension and the same id under another secret never verify', () => {
    const signer = new Signer(['secret-a-0123456789-abcdefghijklmnop', 'secret-b-0123456789-abcdefghijklmnop'], 100)
    const id = generateId()
    const value = signer.sign(id, true)
    assert.equal(signer.verify(value)?.id, id)
    assert.equal(signer.verify(value)?.stale, false)
    const alphabet = 'ABCZabcz019-_.'
    let tried = 0
    for (let i = 0; i < value.length; i++) {
      for (const ch of alphabet) {
        if (value[i] === ch) continue
        const altered = value.slice(0, i) + ch + value.slice(i + 1)
        tried++
        assert.equal(signer.verify(altered), undefined, `altered at ${i} to ${ch} verified`)
      }
    }
    assert.ok(tried > 1000)
    assert.equal(signer.verify(value.slice(0, -1)), undefined)
    assert.equal(signer.verify(value + 'A'), undefined)
    assert.equal(signer.verify(` ${value}`), undefined)
    const other = new Signer(['secret-c-0123456789-abcdefghijklmnop'], 100)
    assert.equal(other.verify(value), undefined, 'a memo shared across signers')
    const rotated = new Signer(['secret-c-0123456789-abcdefghijklmnop', 'secret-a-0123456789-abcdefghijklmnop'], 100)
    assert.equal(rotated.verify(value)?.stale, true, 'a cookie of a retired secret is stale after rotation')
    signer.forget(value)
    assert.equal(signer.verify(value)?.id, id, 'a forgotten cookie still verifies in full')
  })

  test('plugin: a cookie the server just issued with one character of its signature or id changed is no session (the memo of the issued cookie does not leak to it)', async () => {
    const app = await fx.app({})
    const cookie = await login(app, fx.user())
    assert.equal(await works(app, cookie), true)
    const [name, value] = cookie.split('=') as [string, string]
    for (const i of [0, 10, 42, 44, 60, value.length - 1]) {
      const ch = value[i] === 'A' ? 'B' : 'A'
      const altered = `${name}=${value.slice(0, i)}${ch}${value.slice(i + 1)}`
      assert.equal(await works(app, altered), false, `altered at ${i} works`)
    }
  })
})
