/**
 * The store contract (lib/store/contract.ts) every store must meet, called directly (no plugin):
 * records with TTLs and guarded updates, the user index's atomic admit/dismiss rules, the
 * global epoch, and the login-throttle counters. Run against the memory store and a real Redis.
 */
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import type { IndexEntry, SessionRecord, SessionStore } from '../../lib/store/contract.ts'
import { eventually } from './app.ts'

export function record (fields: Record<string, string> = {}, now = Date.now()): SessionRecord {
  return {
    createdAt: now,
    absoluteExpiry: now + 60_000,
    idleExpiry: now + 60_000,
    ref: 'rrrrrrrrrrrr',
    epoch: '0',
    user: undefined,
    userKey: undefined,
    authenticatedAt: undefined,
    userAgent: undefined,
    ip: undefined,
    sealed: [],
    seal: 'seal',
    fields: new Map(Object.entries(fields)),
  }
}

function entry (ref: string, hash: string, loginAt: number, expiresAt = Date.now() + 60_000): IndexEntry {
  return { ref, hash, expiresAt, loginAt }
}

const ADMIT = { expect: undefined, max: Number.MAX_SAFE_INTEGER, ttlMs: 60_000 }

/** Well-formed epoch values with counters 1, 2 and 3 (the store never checks their MAC). */
const [e1, e2, e3] = ['a', 'b', 'c'].map((c, i) => `${i + 1}.${c.repeat(22)}.${'m'.repeat(22)}`) as [string, string, string]

export function storeContract (name: string, make: () => Promise<SessionStore>): void {
  describe(`${name}: store contract`, () => {
    const stores: SessionStore[] = []
    const open = async (): Promise<SessionStore> => {
      const store = await make()
      stores.push(store)
      return store
    }
    after(async () => { await Promise.all(stores.map((s) => s.close())) })
    let n = 0
    const key = (): string => `contract:${name}:${++n}`

    test('records: create then get returns every meta field and the data', async () => {
      const store = await open()
      const k = key()
      const r = { ...record({ a: '1', 'with space': '"x y"' }), user: 'u', userKey: 'k', authenticatedAt: 5, userAgent: 'ua', ip: 'ip' }
      await store.create(k, r, 60_000)
      const got = await store.read(k)
      assert.deepEqual({ ...got, fields: [...(got?.fields ?? [])] }, { ...r, fields: [...r.fields] })
    })

    test('records: a device binding (m:b) round-trips with the record, and a touch rewrites it beside the seal', async () => {
      const store = await open()
      const k = key()
      const r = { ...record({ a: '1' }), bound: 'p:{"v":1}' }
      await store.create(k, r, 60_000)
      assert.equal((await store.read(k))?.bound, 'p:{"v":1}')
      const touch = { idleExpiry: 7, seal: 'resealed', sealed: [], user: undefined, userAgent: undefined, ip: undefined, bound: '~reencrypted' }
      assert.equal(await store.update(k, { maxBytes: 1 << 20, set: new Map(), del: [], touch }, 60_000), true)
      const got = await store.read(k)
      assert.deepEqual([got?.bound, got?.seal], ['~reencrypted', 'resealed'])
      const plain = key()
      await store.create(plain, record({}), 60_000)
      assert.equal('bound' in ((await store.read(plain)) ?? {}), false, 'a record without a binding has none')
    })

    test('records: update applies only the given fields, refuses a missing key, and never mutates the old record', async () => {
      const store = await open()
      const k = key()
      const original = record({ a: '1', b: '2' })
      await store.create(k, original, 60_000)
      assert.equal(await store.update(k, { maxBytes: 1 << 20, set: new Map([['c', '3']]), del: ['a'], touch: { idleExpiry: 5, seal: 'new-seal', sealed: ['c'], user: undefined, userAgent: undefined, ip: undefined } }, 60_000), true)
      const updated = await store.read(k)
      assert.deepEqual([...(updated?.fields ?? [])].sort(), [['b', '2'], ['c', '3']])
      assert.equal(updated?.idleExpiry, 5)
      assert.equal(updated?.seal, 'new-seal')
      assert.deepEqual(updated?.sealed, ['c'], 'a reseal writes the sealed field list with the seal')
      assert.deepEqual([...original.fields], [['a', '1'], ['b', '2']], 'the previous record object is untouched')
      const missing = key()
      assert.equal(await store.update(missing, { maxBytes: 1 << 20, set: new Map([['x', '1']]), del: [] }, 60_000), false)
      assert.equal(await store.read(missing), undefined, 'a refused update creates nothing')
    })

    test('records: what an update leaves held locally is what the store then holds (deletes of several fields, a set, a replace, a field both set and deleted, in one update)', async () => {
      const store = await open()
      const k = key()
      await store.create(k, record({ a: '1', b: '2', c: '3', d: '4', e: '5' }), 60_000)
      assert.equal(await store.update(k, {
        maxBytes: 1 << 20,
        set: new Map([['f', '6'], ['b', '20'], ['g', '7']]),
        del: ['a', 'e', 'c', 'g', 'nope'],
        replace: new Map([['d', { from: '4', to: '40' }]]),
      }, 60_000), true)
      const held = await store.read(k)
      assert.deepEqual([...(held?.fields ?? [])].sort(), [['b', '20'], ['d', '40'], ['f', '6']])
      const local = store.peek(k)
      // A store without a local cache holds nothing here; one with a cache holds exactly the store's record.
      if (local !== undefined) assert.deepEqual(local, held)
    })

    test('records: replace is a compare-and-set (a field changed meanwhile is left alone)', async () => {
      const store = await open()
      const k = key()
      await store.create(k, record({ x: 'A', y: 'A' }), 60_000)
      await store.update(k, { maxBytes: 1 << 20, set: new Map(), del: [], replace: new Map([['x', { from: 'B', to: 'C' }], ['y', { from: 'A', to: 'C' }]]) }, 0)
      const r = await store.read(k)
      assert.equal(r?.fields.get('x'), 'A')
      assert.equal(r?.fields.get('y'), 'C')
    })

    test('records: destroy reports whether the record existed', async () => {
      const store = await open()
      const k = key()
      await store.create(k, record(), 60_000)
      assert.equal(await store.destroy(k), true)
      assert.equal(await store.destroy(k), false)
      assert.equal(await store.read(k), undefined)
    })

    test('index: admit with expect writes only when the lineage still points at the expected hash', async () => {
      const store = await open()
      const k = key()
      const now = Date.now()
      assert.equal((await store.admit(k, entry('r1', 'h1', now), { ...ADMIT, now })).admitted, true)
      assert.equal((await store.admit(k, entry('r1', 'h2', now), { ...ADMIT, now, expect: 'h1' })).admitted, true)
      assert.equal((await store.admit(k, entry('r1', 'h3', now), { ...ADMIT, now, expect: 'h1' })).admitted, false, 'h1 is no longer current')
      assert.equal((await store.getMember(k, 'r1'))?.hash, 'h2')
      assert.equal((await store.admit(k, entry('r9', 'h9', now), { ...ADMIT, now, expect: 'h9' })).admitted, false, 'an absent lineage is not re-admitted')
      assert.equal(await store.getMember(k, 'r9'), null)
    })

    test('index: the cap evicts the oldest other lineages, never the one admitted, and prunes expired ones', async () => {
      const store = await open()
      const k = key()
      const now = Date.now()
      await store.admit(k, entry('dead', 'hd', now - 10, now - 1), { ...ADMIT, now: now - 20 })
      await store.admit(k, entry('a', 'ha', now + 1), { ...ADMIT, now })
      await store.admit(k, entry('b', 'hb', now + 2), { ...ADMIT, now })
      const result = await store.admit(k, entry('c', 'hc', now), { ...ADMIT, now, max: 2 })
      assert.deepEqual(result.evicted.map((e) => e.ref), ['a'])
      assert.deepEqual((await store.members(k)).map((e) => e.ref).sort(), ['b', 'c'])
      const again = await store.admit(k, entry('c', 'hc2', now), { ...ADMIT, now, max: 2, expect: 'hc' })
      assert.deepEqual(again.evicted, [], 're-admitting a counted lineage evicts nobody')
    })

    test('index: dismiss removes only entries that still point at the given hash (any hash when undefined)', async () => {
      const store = await open()
      const k = key()
      const now = Date.now()
      await store.admit(k, entry('a', 'ha', now), { ...ADMIT, now })
      await store.admit(k, entry('b', 'hb', now), { ...ADMIT, now })
      assert.deepEqual(await store.dismiss(k, [{ ref: 'a', hash: 'old' }]), [])
      assert.deepEqual((await store.dismiss(k, [{ ref: 'a', hash: 'ha' }])).map((e) => e.ref), ['a'])
      assert.deepEqual((await store.dismiss(k, [{ ref: 'b', hash: undefined }])).map((e) => e.hash), ['hb'])
      assert.deepEqual(await store.members(k), [])
    })

    test('index: dismissAll removes every lineage but the one kept, and returns them', async () => {
      const store = await open()
      const k = key()
      const now = Date.now()
      for (const ref of ['a', 'b', 'c']) await store.admit(k, entry(ref, 'h' + ref, now), { ...ADMIT, now })
      assert.deepEqual((await store.dismissAll(k, 'b', 'g1', 60_000)).map((e) => e.ref).sort(), ['a', 'c'])
      assert.deepEqual((await store.members(k)).map((e) => e.ref), ['b'])
      assert.deepEqual((await store.dismissAll(k, undefined, 'g2', 60_000)).map((e) => e.ref), ['b'])
      assert.equal(await store.getMember(k, 'b'), null)
    })

    test('index: a login that read the revocation generation before a dismissAll is not admitted after it', async () => {
      const store = await open()
      const k = key()
      const now = Date.now()
      const before = await store.generation(k)
      assert.equal(before, '', 'no revocation yet')
      await store.dismissAll(k, undefined, 'g1', 60_000)
      assert.equal(await store.generation(k), 'g1', 'an index without lineages still keeps its generation')
      assert.equal((await store.admit(k, entry('a', 'ha', now), { ...ADMIT, now, generation: before })).admitted, false)
      assert.equal((await store.admit(k, entry('a', 'ha', now), { ...ADMIT, now, generation: 'g1' })).admitted, true)
      assert.equal((await store.admit(k, entry('b', 'hb', now), { ...ADMIT, now })).admitted, true, 'no generation given: not checked')
      assert.deepEqual((await store.members(k)).map((e) => e.ref).sort(), ['a', 'b'], 'the generation is no lineage')
    })

    test('epoch: a missing copy takes the known epoch, an older or malformed one is raised, a newer one is kept', async () => {
      const store = await open()
      const k = key()
      assert.equal(await store.getEpoch(k, e2), e2, 'missing: set to the known epoch')
      assert.equal(await store.getEpoch(k, e1), e2, 'a newer epoch is never replaced by an older one')
      await store.bumpEpoch([k], e3)
      assert.equal(await store.getEpoch(k, e1), e3)
      await store.bumpEpoch([k], e2)
      assert.equal(await store.getEpoch(k, e1), e3, 'a bump never moves an epoch back')
      const other = key()
      await store.bumpEpoch([other], 'not an epoch')
      assert.equal(await store.getEpoch(other, e1), e1, 'a malformed value is replaced')
      const { record: absent, epoch } = await store.getWithEpoch(key(), k, e1)
      assert.equal(absent, undefined)
      assert.equal(epoch, e3, 'a miss returns the epoch copy with the record')
    })

    test('epoch: create with an epoch check raises the copy to the newest known epoch and writes only if it then holds the epoch the tag was made under; otherwise it writes nothing and returns the copy', async () => {
      const store = await open()
      const k = key()
      const first = key()
      assert.equal(await store.create(first, record({ a: '"1"' }), 60_000, { key: k, value: e1, known: e1 }), undefined, 'missing copy: raised, written')
      assert.equal((await store.read(first))?.fields.get('a'), '"1"')
      assert.equal(await store.getEpoch(k, e1), e1)
      await store.bumpEpoch([k], e2) // a revokeAll elsewhere
      const second = key()
      assert.equal(await store.create(second, record({ a: '"2"' }), 60_000, { key: k, value: e1, known: e1 }), e2, 'the copy moved on: its value')
      assert.equal(await store.read(second), undefined, 'nothing written')
      assert.equal(await store.create(second, record({ a: '"2"' }), 60_000, { key: k, value: e2, known: e2 }), undefined)
      assert.equal((await store.read(second))?.fields.get('a'), '"2"')
      assert.equal(await store.getEpoch(k, e1), e2, 'the check never moves the copy back')
      // The caller knows a newer epoch than the copy it holds (a copy left behind): raised first.
      const third = key()
      assert.equal(await store.create(third, record({ a: '"3"' }), 60_000, { key: k, value: e2, known: e3 }), e3, 'raised to the newest known: the tag is stale')
      assert.equal(await store.read(third), undefined, 'nothing written')
      assert.equal(await store.getEpoch(k, e1), e3)
    })

    test('throttle: hit counts within a window and reports the ms left; after the window a counter starts afresh', async () => {
      const store = await open()
      const k = key()
      assert.deepEqual(await store.readHits(k, 'a:x'), { count: 0, ttlMs: 0 })
      const first = await store.hit(k, 'a:x', 300)
      assert.equal(first.count, 1)
      assert.ok(first.ttlMs > 0 && first.ttlMs <= 300, `ttl ${first.ttlMs}`)
      assert.equal((await store.hit(k, 'a:x', 300)).count, 2)
      assert.equal((await store.hit(k, 'a:y', 300)).count, 1, 'another field of the same bucket counts apart')
      assert.equal((await store.readHits(k, 'a:x')).count, 2, 'reading does not count')
      await eventually(async () => (await store.readHits(k, 'a:x')).count === 0, 2000, 'the window ended')
      assert.equal((await store.hit(k, 'a:x', 60_000)).count, 1, 'a new window')
    })

    test('throttle: release takes back exactly the hits counted for one share, never another share\'s', async () => {
      const store = await open()
      const k = key()
      for (let i = 0; i < 4; i++) await store.hit(k, 'a:f', 60_000, 's:victim')
      for (let i = 0; i < 2; i++) await store.hit(k, 'a:f', 60_000, 's:other')
      await store.hit(k, 'a:f', 60_000)
      assert.equal((await store.readHits(k, 'a:f')).count, 7)
      await store.release(k, 'a:f', 's:other')
      assert.equal((await store.readHits(k, 'a:f')).count, 5, "only the other share's 2 hits are taken out")
      await store.release(k, 'a:f', 's:other')
      assert.equal((await store.readHits(k, 'a:f')).count, 5, 'a share is released once')
      assert.equal((await store.readHits(k, 's:victim')).count, 4, "the victim's share is untouched")
    })

    test('throttle: unhit never goes below zero; clearHits removes one counter only', async () => {
      const store = await open()
      const k = key()
      await store.hit(k, 'i:x', 60_000)
      await store.hit(k, 'u:y', 60_000)
      await store.unhit(k, 'i:x')
      await store.unhit(k, 'i:x')
      assert.equal((await store.readHits(k, 'i:x')).count, 0)
      assert.equal((await store.hit(k, 'i:x', 60_000)).count, 1)
      await store.clearHits(k, 'i:x')
      assert.equal((await store.readHits(k, 'i:x')).count, 0)
      assert.equal((await store.readHits(k, 'u:y')).count, 1)
    })

    test('throttle: parallel hits are all counted (each hit reads the count after itself)', async () => {
      const store = await open()
      const k = key()
      const counts = await Promise.all(Array.from({ length: 40 }, () => store.hit(k, 'a:p', 60_000)))
      assert.deepEqual(counts.map((c) => c.count).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1))
    })
  })
}
