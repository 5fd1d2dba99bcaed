import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { Signer, COOKIE_VALUE_LENGTH } from '../lib/crypto/signer.ts'
import { generateId, storageHash, isWellFormedId } from '../lib/crypto/ids.ts'
import { randomToken } from '../lib/crypto/random.ts'

const A = 'a'.repeat(32)
const B = 'b'.repeat(32)

test('ids: 256 random bits in base64url, distinct', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const id = generateId()
    assert.ok(isWellFormedId(id))
    assert.equal(Buffer.from(id, 'base64url').length, 32)
    seen.add(id)
  }
  assert.equal(seen.size, 1000)
})

test('signer: signature is HMAC-SHA256 of the id under secrets[0] (known answer)', () => {
  const id = 'A'.repeat(43)
  const expected = createHmac('sha256', A).update(id).digest('base64url')
  assert.equal(new Signer([A, B], 100).sign(id), `${id}.${expected}`)
  assert.equal(new Signer([A], 100).sign(id).length, COOKIE_VALUE_LENGTH)
})

test('signer: verify returns the id and its storage hash for a cookie it signed', () => {
  const signer = new Signer([A], 100)
  const id = generateId()
  const v = signer.verify(signer.sign(id))
  assert.ok(v)
  assert.equal(v.id, id)
  assert.equal(v.hash, storageHash(id))
  assert.equal(v.stale, false)
})

test('signer: every single-character change of a cookie is rejected', () => {
  const signer = new Signer([A], 100)
  const cookie = signer.sign(generateId())
  for (let i = 0; i < cookie.length; i++) {
    const c = cookie[i] === 'A' ? 'B' : 'A'
    const tampered = cookie.slice(0, i) + c + cookie.slice(i + 1)
    assert.equal(signer.verify(tampered), undefined, `position ${i}`)
  }
})

test('signer: malformed and oversized values are rejected', () => {
  const signer = new Signer([A], 100)
  const good = signer.sign(generateId())
  for (const bad of ['', '.', good + 'x', good.slice(0, -1), good.replace('.', '!'), 'x'.repeat(10_000), good.replace(/^./, '=')]) {
    assert.equal(signer.verify(bad), undefined)
  }
})

test('signer: an older secret still verifies (flagged stale) and dies once removed', () => {
  const id = generateId()
  const old = new Signer([A], 100).sign(id)
  const rotated = new Signer([B, A], 100)
  const v = rotated.verify(old)
  assert.ok(v)
  assert.equal(v.stale, true)
  assert.notEqual(rotated.sign(id), old)
  assert.equal(new Signer([B], 100).verify(old), undefined)
})

test('signer: failures are not memoised and forget() drops a memoised success', () => {
  const signer = new Signer([A], 100)
  const cookie = signer.sign(generateId())
  const first = signer.verify(cookie)
  assert.equal(signer.verify(cookie), first, 'memoised: same object')
  signer.forget(cookie)
  const again = signer.verify(cookie)
  assert.notEqual(again, first, 'recomputed after forget')
  assert.deepEqual(again, first)
})

test('ids: ids and refs drawn in turn across many 1 KiB draws are all distinct and of their length; a token longer than a draw is whole', () => {
  const seen = new Set<string>()
  // 32 + 9 bytes a turn: 2,000 turns cross about 80 draws of the pool, at every offset.
  for (let i = 0; i < 2000; i++) {
    const id = generateId()
    const ref = randomToken(9)
    assert.equal(Buffer.from(id, 'base64url').length, 32)
    assert.equal(Buffer.from(ref, 'base64url').length, 9)
    seen.add(id).add(ref)
  }
  assert.equal(seen.size, 4000)
  assert.equal(Buffer.from(randomToken(3000), 'base64url').length, 3000)
})

test('signer: a cookie signed to be remembered verifies to its id and storage hash, and once forgotten is verified afresh (with the same result)', () => {
  const signer = new Signer(['s'.repeat(32)], 16)
  const id = generateId()
  const value = signer.sign(id, true)
  const first = signer.verify(value)
  assert.deepEqual(first, { id, hash: storageHash(id), stale: false })
  signer.forget(value)
  assert.deepEqual(signer.verify(value), first)
  assert.equal(signer.verify(value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A')), undefined, 'another signature does not verify')
})
