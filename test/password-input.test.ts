import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { SessionError } from '../lib/errors.ts'
import { preparePassword } from '../lib/password/input.ts'
import { inspectHash } from '../lib/password/phc.ts'
import { createPasswords } from '../lib/password/index.ts'

const FAST = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const

/** Any sequence of UTF-16 code units, lone surrogates included. */
const anyUtf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength: 80 })
/** Well-formed strings over all of Unicode. */
const anyUnicode = fc.string({ unit: 'binary', maxLength: 60 })

describe('preparePassword', () => {
  test('preparePassword: never returns more than maxLength UTF-8 bytes, and throws only FST_PASSWORD_TOO_LONG for strings', () => {
    fc.assert(fc.property(anyUtf16, fc.integer({ min: 64, max: 200 }), (input, maxLength) => {
      let prepared
      try {
        prepared = preparePassword(input, maxLength)
      } catch (error) {
        assert.ok(error instanceof SessionError)
        assert.equal(error.code, 'FST_PASSWORD_TOO_LONG')
        assert.ok(Buffer.byteLength(input) > maxLength || Buffer.byteLength(input.normalize('NFKC')) > maxLength)
        return
      }
      if (prepared.ok) {
        assert.ok(Buffer.byteLength(prepared.password) <= maxLength)
        assert.equal(prepared.password, input.normalize('NFKC'))
      } else {
        assert.ok(input === '' || /\p{Cs}/u.test(input))
      }
    }), { numRuns: 2000 })
  })

  test('preparePassword: canonically equivalent inputs prepare to the same password', () => {
    fc.assert(fc.property(anyUnicode.filter((s) => s.length > 0), (input) => {
      const a = preparePassword(input.normalize('NFC'), 4096)
      const b = preparePassword(input.normalize('NFD'), 4096)
      assert.deepEqual(a, b)
    }), { numRuns: 1000 })
  })
})

describe('inspectHash', () => {
  test('inspectHash: never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.oneof(fc.anything(), anyUtf16, fc.string({ maxLength: 300 })), (input) => {
      const result = inspectHash(input)
      assert.equal(typeof result.ok, 'boolean')
    }), { numRuns: 2000 })
  })

  test('inspectHash: mutations of a PHC string parse or fail cleanly, and verify answers a boolean', async () => {
    const passwords = createPasswords(FAST)
    const stored = await passwords.hash('correct horse')
    await fc.assert(fc.asyncProperty(
      fc.nat({ max: stored.length - 1 }), fc.constantFrom('$', ',', '=', 'A', '/', '+', '9', 'x', ''),
      async (index, replacement) => {
        const mutated = stored.slice(0, index) + replacement + stored.slice(index + 1)
        const inspected = inspectHash(mutated)
        assert.equal(typeof inspected.ok, 'boolean')
        const result = await passwords.verify(mutated, 'correct horse')
        assert.equal(typeof result, 'boolean')
        if (mutated !== stored && !inspected.ok) assert.equal(result, false)
      }), { numRuns: 150 })
  })
})
