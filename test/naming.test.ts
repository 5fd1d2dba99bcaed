/**
 * The naming key (lib/crypto/naming.ts): made once at random, kept in the store wrapped under
 * every configured secret, the same across rotations of `secrets`, never stored in plaintext,
 * and refused loudly when a store writer altered it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { establishNamingKey, fingerprint, unwrap, wrap, type KeyringOp } from '../lib/crypto/naming.ts'
import { createMemoryStore } from '../lib/index.ts'

const S1 = randomBytes(32)
const S2 = randomBytes(32)
const S3 = randomBytes(32)

function ring (): { op: KeyringOp, fields: () => Promise<Record<string, string>> } {
  const store = createMemoryStore()
  return { op: (p) => store.keyring('k', p), fields: () => store.keyring('k', {}) }
}

test('naming: the first instance makes the key; concurrent instances agree on it', async () => {
  const r = ring()
  const keys = await Promise.all([establishNamingKey(r.op, [S1]), establishNamingKey(r.op, [S1]), establishNamingKey(r.op, [S1])])
  assert.equal(keys[0]?.length, 32)
  assert.ok(keys.every((k) => k.equals(keys[0] as Buffer)))
})

test('naming: the key survives a rotation [S1] → [S2, S1] → [S2] of secrets', async () => {
  const r = ring()
  const first = await establishNamingKey(r.op, [S1])
  const during = await establishNamingKey(r.op, [S2, S1])
  const after = await establishNamingKey(r.op, [S2])
  assert.ok(first.equals(during) && first.equals(after))
  assert.deepEqual(Object.keys(await r.fields()).sort(), [fingerprint(S1), fingerprint(S2)].sort())
})

test('naming: the store holds only wrappings, each opened by its own secret only', async () => {
  const r = ring()
  const key = await establishNamingKey(r.op, [S2, S1])
  const fields = await r.fields()
  const text = JSON.stringify(fields)
  assert.ok(!text.includes(key.toString('base64url')) && !text.includes(key.toString('hex')) && !text.includes(key.toString('base64')))
  assert.ok(unwrap(fields[fingerprint(S1)] as string, S1)?.equals(key))
  assert.equal(unwrap(fields[fingerprint(S1)] as string, S2), undefined)
  assert.equal(unwrap(wrap(key, S1).slice(0, -2) + 'AA', S1), undefined, 'a changed wrapping does not open')
})

test('naming: secrets all replaced at once (or the ring deleted) give a new key: closed, never open', async () => {
  const r = ring()
  const old = await establishNamingKey(r.op, [S1])
  const fresh = await establishNamingKey(r.op, [S3])
  assert.ok(!old.equals(fresh))
})

test('naming: a wrapping a store writer altered fails register with FST_SESSION_KEYRING_INVALID', async () => {
  const r = ring()
  await r.op({ [fingerprint(S1)]: 'garbage' })
  await assert.rejects(establishNamingKey(r.op, [S1]), { code: 'FST_SESSION_KEYRING_INVALID' })
})
