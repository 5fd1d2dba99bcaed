import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createCipheriv, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { createFieldCipher, encryptWithNonce, generateEncryptionKey } from '../lib/crypto/field-cipher.ts'
import type { FieldCipher } from '../lib/crypto/field-cipher.ts'
import { SessionError, errorTable } from '../lib/errors.ts'
import type { EncryptionOptions } from '../lib/public-types.ts'

const K1 = randomBytes(32)
const K2 = randomBytes(32)
const BINDING = 'c0ffee'.repeat(10) + 'abcd' // shaped like a hex SHA-256
const OTHER_BINDING = 'deadbe'.repeat(10) + 'abcd'
const JSON_TEXT = JSON.stringify({ email: 'ada@example.com', roles: ['admin'], n: 1 })

function cipherOf (keys: EncryptionOptions['keys'], fields: EncryptionOptions['fields'] = '*'): FieldCipher {
  return createFieldCipher({ keys, fields })
}

const cipher = cipherOf([{ id: 'k1', key: K1 }, { id: 'k2', key: K2 }])

function isDecryptError (err: unknown): boolean {
  return err instanceof SessionError &&
    err.code === 'FST_SESSION_DECRYPT' &&
    err.message === errorTable.FST_SESSION_DECRYPT.message &&
    err.cause === undefined
}

function assertRejected (c: FieldCipher, encoded: string, binding = BINDING, field = 'email'): void {
  assert.throws(() => c.decrypt(encoded, binding, field), isDecryptError)
}

function splitEncoded (encoded: string): { header: string, raw: Buffer } {
  const cut = encoded.lastIndexOf('.') + 1
  return { header: encoded.slice(0, cut), raw: Buffer.from(encoded.slice(cut), 'base64url') }
}

function withByteFlipped (encoded: string, index: number, mask = 0x01): string {
  const { header, raw } = splitEncoded(encoded)
  raw[index] = (raw[index] as number) ^ mask
  return header + raw.toString('base64url')
}

// --- round trip ---------------------------------------------------------------------------------

test('fieldCipher: decrypt returns the JSON text that encrypt was given', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  assert.notEqual(encoded, JSON_TEXT)
  assert.ok(!encoded.includes('ada@example.com'))
  assert.equal(cipher.decrypt(encoded, BINDING, 'email'), JSON_TEXT)
  assert.equal(cipher.decrypt(cipher.encrypt('', BINDING, 'x'), BINDING, 'x'), '')
})

test('fieldCipher: round-trips the JSON text of any JSON value (property)', () => {
  fc.assert(fc.property(fc.jsonValue(), fc.string(), fc.string({ minLength: 1 }), (value, binding, field) => {
    const json = JSON.stringify(value)
    assert.equal(cipher.decrypt(cipher.encrypt(json, binding, field), binding, field), json)
  }), { numRuns: 300 })
})

test('fieldCipher: round-trips long bindings and field names beyond the AAD scratch buffer', () => {
  const binding = 'b'.repeat(5000)
  const field = 'é'.repeat(600)
  const encoded = cipher.encrypt(JSON_TEXT, binding, field)
  assert.equal(cipher.decrypt(encoded, binding, field), JSON_TEXT)
  assertRejected(cipher, encoded, binding, field.slice(1))
  // The scratch buffer is reused afterwards without leftovers.
  assert.equal(cipher.decrypt(cipher.encrypt('1', 'b', 'f'), 'b', 'f'), '1')
})

test('fieldCipher: output is ~1.<keyId>.<base64url(nonce|ciphertext|tag)> without padding', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  assert.match(encoded, /^~1\.k1\.[A-Za-z0-9_-]+$/)
  const { raw } = splitEncoded(encoded)
  assert.equal(raw.length, 12 + Buffer.byteLength(JSON_TEXT) + 16)
})

test('fieldCipher: two encryptions of the same value differ (fresh nonce)', () => {
  const a = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  const b = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  assert.notEqual(a, b)
  assert.notDeepEqual(splitEncoded(a).raw.subarray(0, 12), splitEncoded(b).raw.subarray(0, 12))
  assert.equal(cipher.decrypt(a, BINDING, 'email'), cipher.decrypt(b, BINDING, 'email'))
  // Across several nonce batches: no nonce repeats.
  const nonces = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    nonces.add(splitEncoded(cipher.encrypt('1', BINDING, 'f')).raw.subarray(0, 12).toString('hex'))
  }
  assert.equal(nonces.size, 1000)
})

// --- binding -------------------------------------------------------------------------------------

test('fieldCipher: rejects a ciphertext moved to another session binding', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  assertRejected(cipher, encoded, OTHER_BINDING, 'email')
  assertRejected(cipher, encoded, '', 'email')
})

test('fieldCipher: rejects a ciphertext moved to another field', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  assertRejected(cipher, encoded, BINDING, 'profile')
  assertRejected(cipher, encoded, BINDING, 'Email')
})

test('fieldCipher: AAD length prefixes keep (binding, field) splits apart', () => {
  const encoded = cipher.encrypt(JSON_TEXT, 'ab', 'c')
  assertRejected(cipher, encoded, 'a', 'bc')
  assertRejected(cipher, encoded, 'abc', '')
  assert.equal(cipher.decrypt(encoded, 'ab', 'c'), JSON_TEXT)
})

// --- tampering -----------------------------------------------------------------------------------

test('fieldCipher: rejects a changed nonce byte', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  for (const index of [0, 5, 11]) assertRejected(cipher, withByteFlipped(encoded, index))
})

test('fieldCipher: rejects a changed ciphertext byte', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  const last = 12 + Buffer.byteLength(JSON_TEXT) - 1
  for (const index of [12, 20, last]) assertRejected(cipher, withByteFlipped(encoded, index, 0x80))
})

test('fieldCipher: rejects a changed tag byte', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  const start = 12 + Buffer.byteLength(JSON_TEXT)
  for (const index of [start, start + 7, start + 15]) assertRejected(cipher, withByteFlipped(encoded, index))
})

// Every character position, including the header, to every other character: the payload is
// canonical base64url (no padding, zero trailing bits), so no change can decode to the same bytes.
const REPLACEMENTS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~=+/ é\u0000{"'

test('fieldCipher: rejects any single-character change of the encoded string (property)', () => {
  fc.assert(fc.property(
    fc.jsonValue(), fc.nat(), fc.constantFrom(...REPLACEMENTS),
    (value, position, replacement) => {
      const encoded = cipher.encrypt(JSON.stringify(value), BINDING, 'email')
      const at = position % encoded.length
      fc.pre(encoded[at] !== replacement)
      assertRejected(cipher, encoded.slice(0, at) + replacement + encoded.slice(at + 1))
    }), { numRuns: 1000 })
})

test('fieldCipher: rejects every single-character change, exhaustively, for each payload length mod 4', () => {
  // Random positions rarely hit the last character's unused bits; cover every position here.
  const residues = new Set<number>()
  for (const json of ['1', '12', '123', JSON_TEXT]) {
    const encoded = cipher.encrypt(json, BINDING, 'email')
    residues.add(splitEncoded(encoded).raw.toString('base64url').length % 4)
    for (let at = 0; at < encoded.length; at++) {
      for (const replacement of REPLACEMENTS) {
        if (encoded[at] === replacement) continue
        assertRejected(cipher, encoded.slice(0, at) + replacement + encoded.slice(at + 1))
      }
    }
  }
  assert.deepEqual([...residues].sort(), [0, 2, 3])
})

test('fieldCipher: rejects any single-byte change of nonce, ciphertext or tag (property)', () => {
  fc.assert(fc.property(
    fc.jsonValue(), fc.nat(), fc.integer({ min: 1, max: 255 }),
    (value, position, mask) => {
      const encoded = cipher.encrypt(JSON.stringify(value), BINDING, 'email')
      const { raw } = splitEncoded(encoded)
      assertRejected(cipher, withByteFlipped(encoded, position % raw.length, mask))
    }), { numRuns: 500 })
})

test('fieldCipher: rejects a deleted or inserted character (property)', () => {
  fc.assert(fc.property(
    fc.jsonValue(), fc.nat(), fc.constantFrom(...REPLACEMENTS), fc.boolean(),
    (value, position, extra, insert) => {
      const encoded = cipher.encrypt(JSON.stringify(value), BINDING, 'email')
      const at = position % (encoded.length + 1)
      const changed = insert
        ? encoded.slice(0, at) + extra + encoded.slice(at)
        : encoded.slice(0, Math.min(at, encoded.length - 1)) + encoded.slice(Math.min(at, encoded.length - 1) + 1)
      assertRejected(cipher, changed)
    }), { numRuns: 500 })
})

test('fieldCipher: rejects non-canonical base64url that decodes to the same bytes', () => {
  // 12 + 2 + 16 = 30 bytes -> 40 characters, 30 % 3 = 0: pick lengths with unused trailing bits.
  for (const json of ['1', '12', '123']) {
    const encoded = cipher.encrypt(json, BINDING, 'email')
    const { header, raw } = splitEncoded(encoded)
    const payload = raw.toString('base64url')
    const rest = payload.length % 4
    if (rest === 0) continue
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const lastValue = alphabet.indexOf(payload.at(-1) as string)
    const sloppy = payload.slice(0, -1) + (alphabet[lastValue | 1] as string)
    assert.deepEqual(Buffer.from(sloppy, 'base64url'), raw) // Node itself would accept it
    assertRejected(cipher, header + sloppy)
    assertRejected(cipher, header + payload + '=')
    assertRejected(cipher, header + payload + 'A') // a dangling character Node would ignore
  }
})

test('fieldCipher: rejects malformed input with FST_SESSION_DECRYPT only', () => {
  const encoded = cipher.encrypt(JSON_TEXT, BINDING, 'email')
  const { raw } = splitEncoded(encoded)
  const payload = raw.toString('base64url')
  const bad = [
    '', '~', '~1', '~1.', '~1.k1', '~1.k1.', '~1..' + payload, '~1.k1.' + payload + '.x',
    '~2.k1.' + payload, '~0.k1.' + payload, '~1.k3.' + payload, '!1.k1.' + payload,
    '~1.k1.' + payload.replace(/[A-Za-z]/, '+'), '~1.k1.' + raw.toString('base64'),
    '~1.k1.' + raw.subarray(0, 27).toString('base64url'), // shorter than nonce + tag
    '~1.k1.' + raw.subarray(0, 28).toString('base64url'), // right length, wrong tag
    '~1.k1. ' + payload, '~1.k1.' + payload + '\n', JSON_TEXT, 'null', '"~1.k1.x"',
  ]
  for (const value of bad) assertRejected(cipher, value)
  for (const value of [undefined, null, 42, {}, Buffer.from(encoded)]) {
    assert.throws(() => cipher.decrypt(value as unknown as string, BINDING, 'email'), isDecryptError)
  }
  assert.throws(() => cipher.decrypt(encoded, undefined as unknown as string, 'email'), isDecryptError)
})

test('fieldCipher: decrypt of arbitrary strings only ever throws FST_SESSION_DECRYPT (property)', () => {
  const prefixed = fc.tuple(fc.constantFrom('~', '~1.', '~1.k1.', '~1.k2.'), fc.string({ unit: 'binary' }))
    .map(([head, tail]) => head + tail)
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), prefixed), (value) => {
    assertRejected(cipher, value)
  }), { numRuns: 500 })
})

test('fieldCipher: rejects a ciphertext whose key id is not in the ring', () => {
  const other = cipherOf([{ id: 'k9', key: K1 }])
  assertRejected(cipher, other.encrypt(JSON_TEXT, BINDING, 'email'))
  // Same key bytes, relabelled id: the key id is bound in the AAD.
  const relabelled = other.encrypt(JSON_TEXT, BINDING, 'email').replace('~1.k9.', '~1.k1.')
  assertRejected(cipher, relabelled)
})

// --- rotation ------------------------------------------------------------------------------------

test('fieldCipher: rotation decrypts old keys, flags them stale, and drops them when removed', () => {
  const before = cipherOf([{ id: 'k1', key: K1 }])
  const old = before.encrypt(JSON_TEXT, BINDING, 'email')
  assert.equal(before.isStale(old), false)

  const during = cipherOf([{ id: 'k2', key: K2 }, { id: 'k1', key: K1 }])
  assert.equal(during.decrypt(old, BINDING, 'email'), JSON_TEXT)
  assert.equal(during.isStale(old), true)
  const fresh = during.encrypt(during.decrypt(old, BINDING, 'email'), BINDING, 'email')
  assert.match(fresh, /^~1\.k2\./)
  assert.equal(during.isStale(fresh), false)

  const after = cipherOf([{ id: 'k2', key: K2 }])
  assert.equal(after.decrypt(fresh, BINDING, 'email'), JSON_TEXT)
  assertRejected(after, old)
})

test('fieldCipher: isStale is false for plain JSON and for key ids that share a prefix', () => {
  const c = cipherOf([{ id: 'k', key: K1 }, { id: 'k1', key: K2 }])
  const legacy = cipherOf([{ id: 'k1', key: K2 }]).encrypt('1', BINDING, 'f')
  assert.equal(c.isStale(legacy), true)
  assert.equal(c.isStale(c.encrypt('1', BINDING, 'f')), false)
  assert.equal(c.isStale('{"a":1}'), false)
})

// --- isCiphertext / covers -----------------------------------------------------------------------

test('fieldCipher: isCiphertext is false for every JSON text (property)', () => {
  const whitespace = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r'), maxLength: 3 })
  fc.assert(fc.property(fc.jsonValue(), whitespace, fc.constantFrom(undefined, 2, '\t'), (value, lead, indent) => {
    assert.equal(cipher.isCiphertext(lead + JSON.stringify(value, null, indent)), false)
  }), { numRuns: 500 })
  assert.equal(cipher.isCiphertext(''), false)
})

test('fieldCipher: isCiphertext is true for every output (property)', () => {
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    assert.equal(cipher.isCiphertext(cipher.encrypt(JSON.stringify(value), BINDING, 'f')), true)
  }))
})

test('fieldCipher: covers the listed fields (deduplicated) or every field with *', () => {
  const listed = cipherOf([{ id: 'k1', key: K1 }], ['email', 'profile', 'email'])
  assert.equal(listed.covers('email'), true)
  assert.equal(listed.covers('profile'), true)
  assert.equal(listed.covers('theme'), false)
  assert.equal(listed.covers('*'), false)
  const all = cipherOf([{ id: 'k1', key: K1 }], '*')
  assert.equal(all.covers('anything'), true)
  assert.equal(all.covers(''), true)
})

// --- known answer --------------------------------------------------------------------------------

// Computed once with Python's `cryptography` (AESGCM) over the documented AAD layout.
const KAT = {
  key: Buffer.from(Array.from({ length: 32 }, (_, i) => i)),
  nonce: Buffer.from(Array.from({ length: 12 }, (_, i) => 0xa0 + i)),
  id: '2026-11',
  binding: '3f2a9c0e5b7d41e6a8c2f0b1d3e5a7c9e1f2a3b4c5d6e7f8091a2b3c4d5e6f70',
  vectors: [
    {
      field: 'email',
      json: '{"email":"ada@example.com","verified":true}',
      expected: '~1.2026-11.oKGio6SlpqeoqaqrnToZQCSibp1YR-a3ZjqlphHBKXz3mSED8SwKpAnOB2i0HyKbjRgnTyr5eTYoiiWhir2f5m2I-f6bzZo',
    },
    { field: 'prénom', json: '"Zoë"', expected: '~1.2026-11.oKGio6SlpqeoqaqrxEIT7u7pAcn5lFYI6sAg1YSUB4BuoA' },
  ],
}

function u32 (n: number): Buffer {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(n)
  return out
}

test('fieldCipher: known-answer vectors pin the format and the AAD layout', () => {
  const options = { keys: [{ id: KAT.id, key: KAT.key }], fields: '*' as const }
  const c = createFieldCipher(options)
  for (const { field, json, expected } of KAT.vectors) {
    // Independent route: AES-256-GCM straight from node:crypto over the documented layout.
    const binding = Buffer.from(KAT.binding, 'utf8')
    const fieldBytes = Buffer.from(field, 'utf8')
    const aad = Buffer.concat([
      Buffer.from([1, KAT.id.length]), Buffer.from(KAT.id, 'ascii'),
      u32(binding.length), binding, u32(fieldBytes.length), fieldBytes,
    ])
    const gcm = createCipheriv('aes-256-gcm', KAT.key, KAT.nonce, { authTagLength: 16 })
    gcm.setAAD(aad)
    const body = Buffer.concat([gcm.update(json, 'utf8'), gcm.final()])
    const oracle = `~1.${KAT.id}.` + Buffer.concat([KAT.nonce, body, gcm.getAuthTag()]).toString('base64url')
    assert.equal(oracle, expected)

    assert.equal(encryptWithNonce(options, KAT.nonce, json, KAT.binding, field), expected)
    assert.equal(c.decrypt(expected, KAT.binding, field), json)
    assert.equal(createFieldCipher({ keys: [{ id: KAT.id, key: KAT.key.toString('base64') }], fields: '*' })
      .decrypt(expected, KAT.binding, field), json)
  }
})

test('fieldCipher: encryptWithNonce refuses nonces that are not 96 bits', () => {
  const options = { keys: [{ id: KAT.id, key: KAT.key }], fields: '*' as const }
  for (const length of [0, 8, 11, 13, 16]) {
    assert.throws(() => encryptWithNonce(options, Buffer.alloc(length), '1', 'b', 'f'), RangeError)
  }
})

// --- key validation ------------------------------------------------------------------------------

function keyMaterialForms (key: unknown): string[] {
  if (typeof key === 'string') return key.length >= 8 ? [key, key.replace(/=+$/, '')] : []
  if (Buffer.isBuffer(key)) {
    return [key.toString('base64'), key.toString('base64url'), key.toString('hex'), key.toString('latin1')]
      .filter((form) => form.length >= 8)
  }
  return []
}

function assertOptionError (options: unknown, detailPart: string): void {
  const keys = (options as { keys?: unknown[] } | null)?.keys
  const material = Array.isArray(keys) ? keys.flatMap((entry) => keyMaterialForms((entry as { key?: unknown })?.key)) : []
  assert.throws(() => createFieldCipher(options as EncryptionOptions), (err: unknown) => {
    assert.ok(err instanceof SessionError)
    assert.equal(err.code, 'FST_SESSION_ENCRYPTION_OPTION')
    assert.ok(err.message.includes(detailPart), `${err.message} should name ${detailPart}`)
    assert.equal(err.cause, undefined)
    const text = `${err.message}\n${err.stack ?? ''}\n${inspect(err)}`
    for (const form of material) assert.ok(!text.includes(form), 'error text contains key material')
    return true
  })
}

test('fieldCipher: rejects keys that are not exactly 32 bytes, without echoing them', () => {
  assertOptionError({ keys: [{ id: 'a', key: randomBytes(31) }], fields: '*' }, 'encryption.keys[0].key')
  assertOptionError({ keys: [{ id: 'a', key: randomBytes(33) }], fields: '*' }, 'encryption.keys[0].key')
  assertOptionError({ keys: [{ id: 'a', key: K1 }, { id: 'b', key: randomBytes(31).toString('base64') }], fields: '*' },
    'encryption.keys[1].key')
  assertOptionError({ keys: [{ id: 'a', key: randomBytes(33).toString('base64url') }], fields: '*' }, 'encryption.keys[0].key')
  assertOptionError({ keys: [{ id: 'a', key: Buffer.alloc(0) }], fields: '*' }, 'encryption.keys[0].key')
  assertOptionError({ keys: [{ id: 'a' }], fields: '*' }, 'encryption.keys[0].key')
  assertOptionError({ keys: [{ id: 'a', key: 42 }], fields: '*' }, 'encryption.keys[0].key')
})

test('fieldCipher: rejects key strings that are not clean base64 or base64url', () => {
  const good = randomBytes(32)
  const b64 = good.toString('base64') // 44 characters with one '='
  const url = good.toString('base64url') // 43 characters
  const sloppy = [
    ` ${b64}`, `${b64}\n`, `${url.slice(0, 20)} ${url.slice(20)}`, // whitespace
    `${url}==`, `${b64}=`, `${url.slice(0, -1)}!`, // padding, foreign characters
    `${'+'.repeat(10)}${'_'.repeat(33)}`, // mixed alphabets
    `${url}A`, // dangling character
    good.toString('hex'), good.toString('latin1'), // other encodings of 32 bytes
  ]
  // Non-zero unused trailing bits: the same 32 bytes, spelled differently.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(url.at(-1) as string)
  sloppy.push(url.slice(0, -1) + (alphabet[last ^ 1] as string))
  for (const key of sloppy) {
    assertOptionError({ keys: [{ id: 'a', key }], fields: '*' }, 'encryption.keys[0].key')
  }
})

test('fieldCipher: accepts a key as Buffer, padded base64 or unpadded base64url, all equal', () => {
  const bytes = randomBytes(32)
  const forms = [bytes, bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url')]
  const ciphers = forms.map((key) => cipherOf([{ id: 'k', key }]))
  const encoded = ciphers[0]?.encrypt(JSON_TEXT, BINDING, 'f') as string
  for (const c of ciphers) assert.equal(c.decrypt(encoded, BINDING, 'f'), JSON_TEXT)
})

test('fieldCipher: keeps its own copy of a Buffer key', () => {
  const bytes = Buffer.from(K1)
  const c = cipherOf([{ id: 'k', key: bytes }])
  const encoded = c.encrypt(JSON_TEXT, BINDING, 'f')
  bytes.fill(0)
  assert.equal(c.decrypt(encoded, BINDING, 'f'), JSON_TEXT)
  assert.equal(cipherOf([{ id: 'k', key: K1 }]).decrypt(encoded, BINDING, 'f'), JSON_TEXT)
})

test('fieldCipher: rejects empty, duplicate and malformed key ids', () => {
  assertOptionError({ keys: [], fields: '*' }, 'encryption.keys')
  assertOptionError({ fields: '*' }, 'encryption.keys')
  assertOptionError({ keys: [{ id: 'a', key: K1 }, { id: 'a', key: K2 }], fields: '*' }, 'encryption.keys[1].id')
  for (const id of ['', 'a.b', 'ä', 'a b', 'a/b', '~', 'x'.repeat(33), 7, undefined]) {
    assertOptionError({ keys: [{ id, key: K1 }], fields: '*' }, 'encryption.keys[0].id')
  }
  assertOptionError({ keys: [null], fields: '*' }, 'encryption.keys[0]')
  assert.doesNotThrow(() => cipherOf([{ id: 'x'.repeat(32), key: K1 }, { id: 'A-z_0', key: K2 }]))
})

test('fieldCipher: rejects fields that are not * or a non-empty list of names', () => {
  assertOptionError({ keys: [{ id: 'a', key: K1 }], fields: [] }, 'encryption.fields')
  assertOptionError({ keys: [{ id: 'a', key: K1 }], fields: 'email' }, 'encryption.fields')
  assertOptionError({ keys: [{ id: 'a', key: K1 }] }, 'encryption.fields')
  assertOptionError({ keys: [{ id: 'a', key: K1 }], fields: ['email', ''] }, 'encryption.fields[1]')
  assertOptionError({ keys: [{ id: 'a', key: K1 }], fields: ['email', 3] }, 'encryption.fields[1]')
  assertOptionError(null, 'encryption')
  assertOptionError('*', 'encryption')
})

test('fieldCipher: the cipher object shows no key material and cannot be changed', () => {
  const c = cipherOf([{ id: 'k1', key: K1 }])
  const shown = `${inspect(c, { depth: 10, showHidden: true })}${JSON.stringify(c)}`
  for (const form of keyMaterialForms(K1)) assert.ok(!shown.includes(form))
  assert.ok(Object.isFrozen(c))
})

// --- key generation and CLI ----------------------------------------------------------------------

test('generateEncryptionKey: returns 32 fresh random bytes as base64url that the cipher accepts', () => {
  const a = generateEncryptionKey()
  const b = generateEncryptionKey()
  assert.match(a, /^[A-Za-z0-9_-]{43}$/)
  assert.equal(Buffer.from(a, 'base64url').length, 32)
  assert.notEqual(a, b)
  assert.doesNotThrow(() => cipherOf([{ id: 'k', key: a }]))
})

const CLI = fileURLToPath(new URL('../lib/cli/main.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))

function runCli (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, encoding: 'utf8' })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

test('cli: gen-key prints one key that createFieldCipher accepts', () => {
  const { status, stdout, stderr } = runCli('gen-key')
  assert.equal(status, 0, stderr)
  assert.match(stdout, /^[A-Za-z0-9_-]{43}\n$/)
  const c = cipherOf([{ id: 'cli', key: stdout.trim() }])
  assert.equal(c.decrypt(c.encrypt('1', 'b', 'f'), 'b', 'f'), '1')
})

test('cli: gen-secret prints a 32-byte base64url secret', () => {
  const { status, stdout } = runCli('gen-secret')
  assert.equal(status, 0)
  assert.match(stdout, /^[A-Za-z0-9_-]{43}\n$/)
  assert.equal(Buffer.from(stdout.trim(), 'base64url').length, 32)
})

test('cli: --help prints usage on stdout and exits 0', () => {
  const { status, stdout, stderr } = runCli('--help')
  assert.equal(status, 0)
  assert.match(stdout, /Usage: fastify-hardened-session/)
  assert.equal(stderr, '')
})

test('cli: an unknown or missing command prints usage on stderr and exits 2', () => {
  for (const args of [['nope'], [], ['gen-key', 'extra']]) {
    const { status, stdout, stderr } = runCli(...args)
    assert.equal(status, 2)
    assert.equal(stdout, '')
    assert.match(stderr, /Usage: fastify-hardened-session/)
  }
})
