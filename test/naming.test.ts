/**
 * The naming key (lib/crypto/naming.ts, lib/keyring.ts): made once at random, kept in the store
 * wrapped under every configured secret, the same across rotations of `secrets`, never stored
 * in plaintext, never replaced by a second key while sessions it named can exist, restored and
 * repaired by running processes, and refused loudly when it cannot be proved.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { fingerprint, openRing, unwrap, wrap } from '../lib/crypto/naming.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import { establishNamingKey, KeyringKeeper, type KeyringOptions } from '../lib/keyring.ts'
import { KeyNames } from '../lib/key-names.ts'
import { createMemoryStore } from '../lib/index.ts'
import type { SessionStore } from '../lib/store/contract.ts'

const S1 = randomBytes(32)
const S2 = randomBytes(32)
const S3 = randomBytes(32)
const PREFIX = 'sess:'
const quiet = { error () {}, warn () {}, info () {}, debug () {} } as never

function options (store: SessionStore, secrets: Buffer[], extra: Partial<KeyringOptions> = {}): KeyringOptions {
  return { store, guard: new Guard(1000, quiet, new Events(undefined, quiet)), prefix: PREFIX, secrets, mayCreate: true, waitMs: 0, ...extra }
}

const fields = (store: SessionStore): Promise<Record<string, string>> => store.keyring(PREFIX + 'keyring', [])

test('naming: the first instance makes the key; concurrent instances agree on it', async () => {
  const store = createMemoryStore()
  const keys = await Promise.all([establishNamingKey(options(store, [S1])), establishNamingKey(options(store, [S1])), establishNamingKey(options(store, [S1]))])
  assert.equal(keys[0]?.length, 32)
  assert.ok(keys.every((k) => k.equals(keys[0] as Buffer)))
})

test('naming: the key survives a rotation [S1] → [S2, S1] → [S2] of secrets', async () => {
  const store = createMemoryStore()
  const first = await establishNamingKey(options(store, [S1]))
  const during = await establishNamingKey(options(store, [S2, S1]))
  const after = await establishNamingKey(options(store, [S2]))
  assert.ok(first.equals(during) && first.equals(after))
  assert.deepEqual(Object.keys(await fields(store)).sort(), [fingerprint(S1), fingerprint(S2)].sort())
})

test('naming: the store holds only wrappings, each opened by its own secret only', async () => {
  const store = createMemoryStore()
  const key = await establishNamingKey(options(store, [S2, S1]))
  const ring = await fields(store)
  const text = JSON.stringify(ring)
  assert.ok(!text.includes(key.toString('base64url')) && !text.includes(key.toString('hex')) && !text.includes(key.toString('base64')))
  assert.ok(unwrap(ring[fingerprint(S1)] as string, S1)?.equals(key))
  assert.equal(unwrap(ring[fingerprint(S1)] as string, S2), undefined)
  assert.equal(unwrap(wrap(key, S1).slice(0, -2) + 'AA', S1), undefined, 'a changed wrapping does not open')
})

test('naming: secrets all replaced at once are refused with FST_SESSION_KEYRING_SECRETS, never given a second key', async () => {
  const store = createMemoryStore()
  await establishNamingKey(options(store, [S1]))
  const before = await fields(store)
  await assert.rejects(establishNamingKey(options(store, [S3])), { code: 'FST_SESSION_KEYRING_SECRETS' })
  assert.deepEqual(await fields(store), before, 'the ring is unchanged')
})

test('naming: a wrapping a store writer altered fails register with FST_SESSION_KEYRING_INVALID', async () => {
  const store = createMemoryStore()
  await store.keyring(PREFIX + 'keyring', [{ field: fingerprint(S1), value: 'garbage' }])
  await assert.rejects(establishNamingKey(options(store, [S1])), { code: 'FST_SESSION_KEYRING_INVALID' })
})

test('naming: a ring missing while the epoch exists (sessions may exist) is not remade: FST_SESSION_KEYRING_MISSING', async () => {
  const store = createMemoryStore()
  await store.getEpoch(PREFIX + 'epoch', '1.' + 'a'.repeat(22))
  const started = performance.now()
  await assert.rejects(establishNamingKey(options(store, [S1], { waitMs: 300 })), { code: 'FST_SESSION_KEYRING_MISSING' })
  assert.ok(performance.now() - started >= 300, 'it waited for a running instance to restore the ring')
  assert.deepEqual(await fields(store), {}, 'no key was made')
})

test('naming: a start waiting on a lost ring takes the key a running instance restores', async () => {
  const store = createMemoryStore()
  const key = await establishNamingKey(options(store, [S1]))
  await store.getEpoch(PREFIX + 'epoch', '1.' + 'a'.repeat(22))
  const running = new KeyringKeeper(options(store, [S1]), new KeyNames(PREFIX, key), key, quiet)
  // The ring is lost (a DEL, or a restart without persistence that kept the epoch's copy).
  const lost = createMemoryStore()
  await lost.getEpoch(PREFIX + 'epoch', '1.' + 'a'.repeat(22))
  const waiting = establishNamingKey(options(lost, [S1], { waitMs: 5000 }))
  const restorer = new KeyringKeeper(options(lost, [S1]), new KeyNames(PREFIX, key), key, quiet)
  await restorer.check()
  assert.ok((await waiting).equals(key), 'the new instance uses the running instance\'s key')
  await running.check()
})

test('naming: the operations CLI never makes a key: no ring gives FST_SESSION_KEYRING_MISSING', async () => {
  const store = createMemoryStore()
  await assert.rejects(establishNamingKey(options(store, [S1], { mayCreate: false })), { code: 'FST_SESSION_KEYRING_MISSING' })
  assert.deepEqual(await fields(store), {})
})

test('naming keeper: restores a deleted ring, repairs an altered entry, and adopts a key made by another process', async () => {
  const store = createMemoryStore()
  const key = await establishNamingKey(options(store, [S2, S1]))
  const names = new KeyNames(PREFIX, key)
  const keeper = new KeyringKeeper(options(store, [S2, S1]), names, key, quiet)
  // Deleted: restored under both secrets.
  const deleted = createMemoryStore()
  const onDeleted = new KeyringKeeper(options(deleted, [S2, S1]), new KeyNames(PREFIX, key), key, quiet)
  await onDeleted.check()
  const restored = openRing(await fields(deleted), [S1])
  assert.ok(restored.kind === 'open' && restored.naming.equals(key))
  // Altered: the entry is replaced by a good wrapping.
  await store.keyring(PREFIX + 'keyring', [{ field: fingerprint(S1), value: 'garbage', expect: (await fields(store))[fingerprint(S1)] }])
  await keeper.check()
  assert.ok(unwrap((await fields(store))[fingerprint(S1)] as string, S1)?.equals(key))
  // Another process made a ring first (it found none): this one adopts that key.
  const other = createMemoryStore()
  const theirs = await establishNamingKey(options(other, [S1]))
  const mine = new KeyNames(PREFIX, key)
  const before = mine.userKey('alice')
  const late = new KeyringKeeper(options(other, [S1]), mine, key, quiet)
  await late.check()
  assert.equal(mine.generation, 1)
  assert.notEqual(mine.userKey('alice'), before)
  assert.equal(mine.userKey('alice'), new KeyNames(PREFIX, theirs).userKey('alice'), 'both processes name the user\'s index alike')
})
