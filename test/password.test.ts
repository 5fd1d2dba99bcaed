import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { hash as argon2Hash } from '@node-rs/argon2'
import { SessionError } from '../lib/errors.ts'
import {
  createPasswords, hashPassword, needsRehash, sharedPasswords, verifyAndUpgrade, verifyPassword,
  DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST,
} from '../lib/password/index.ts'
import type { PasswordLogger } from '../lib/password/index.ts'
import type { PasswordOptions } from '../lib/public-types.ts'

/** Small argon2 costs: fast tests. The shipped defaults are exercised where they matter. */
const FAST = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const satisfies PasswordOptions
/** A password the default policy accepts (at least 8 code points). */
const PW = 'correct horse'

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

function phcParams (hash: string): { m: number, t: number, p: number, salt: string, tag: string } {
  const match = PHC.exec(hash)
  assert.ok(match, 'not an argon2id v19 PHC string')
  return { m: Number(match[1]), t: Number(match[2]), p: Number(match[3]), salt: match[4]!, tag: match[5]! }
}

function recordingLogger (): PasswordLogger & { calls: Array<[object, string]> } {
  const calls: Array<[object, string]> = []
  return { calls, warn (obj, msg) { calls.push([obj, msg]) } }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

function isCode (code: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof SessionError, 'expected a SessionError')
    assert.equal(error.code, code)
    return true
  }
}

describe('hash', () => {
  test('hashPassword: returns an argon2id v19 PHC string at the shipped defaults', async () => {
    const hash = await hashPassword('correct horse battery staple')
    const { m, t, p, salt, tag } = phcParams(hash)
    assert.deepEqual({ m, t, p }, { m: DEFAULT_MEMORY_COST, t: DEFAULT_TIME_COST, p: DEFAULT_PARALLELISM })
    assert.ok(m >= 19456 && t >= 2, 'at least the OWASP minimum')
    assert.equal(Buffer.from(salt, 'base64').length, 16, '128-bit salt (RFC 9106 §4)')
    assert.equal(Buffer.from(tag, 'base64').length, 32, '256-bit tag (RFC 9106 §4)')
  })

  test('createPasswords: hashes with the configured m, t and p', async () => {
    const passwords = createPasswords({ memoryCost: 2048, timeCost: 2, parallelism: 2 })
    const { m, t, p } = phcParams(await passwords.hash(PW))
    assert.deepEqual({ m, t, p }, { m: 2048, t: 2, p: 2 })
  })

  test('hash: two hashes of one password differ (random salt)', async () => {
    const passwords = createPasswords(FAST)
    const [a, b] = await Promise.all([passwords.hash('same password'), passwords.hash('same password')])
    assert.notEqual(phcParams(a!).salt, phcParams(b!).salt)
  })
})

describe('verify', () => {
  test('verifyPassword: true for the right password, false for a wrong one', async () => {
    const hash = await hashPassword('right password', FAST)
    assert.equal(await verifyPassword(hash, 'right password', FAST), true)
    assert.equal(await verifyPassword(hash, 'wrong password', FAST), false)
    assert.equal(await verifyPassword(hash, 'right password ', FAST), false)
  })

  test('verify: composed and decomposed forms are the same password (NFKC)', async () => {
    const passwords = createPasswords(FAST)
    const composed = 'caf\u00e9 au lait' // é as one code point
    const decomposed = 'cafe\u0301 au lait' // e + combining acute accent
    assert.notEqual(composed, decomposed)
    assert.equal(await passwords.verify(await passwords.hash(composed), decomposed), true)
    assert.equal(await passwords.verify(await passwords.hash(decomposed), composed), true)
  })

  test('verify: compatibility forms are the same password (NFKC: U+FB01 "ﬁ" vs "fi")', async () => {
    const passwords = createPasswords(FAST)
    assert.equal(await passwords.verify(await passwords.hash('\ufb01le cabinet'), 'file cabinet'), true)
    assert.equal(await passwords.verify(await passwords.hash('file cabinet'), '\ufb01le cabinet'), true)
    assert.equal(await passwords.verify(await passwords.hash('file cabinet'), 'flle cabinet'), false)
  })

  test('verify: a missing user (null or undefined hash) answers false after a dummy verify', async () => {
    const passwords = createPasswords(FAST)
    assert.equal(await passwords.verify(null, PW), false)
    const before = passwords.operations
    assert.equal(await passwords.verify(undefined, PW), false)
    assert.equal(passwords.operations - before, 1, 'exactly one argon2 verify ran')
  })

  test('verify: the dummy verify for a missing user costs 0.5× to 2× a real failed verify (defaults)', async () => {
    const passwords = createPasswords()
    const stored = await passwords.hash('the real password')
    await passwords.verify(null, 'warm-up: makes the dummy hash')
    await passwords.verify(stored, 'warm-up')
    const real: number[] = []
    const dummy: number[] = []
    for (let i = 0; i < 7; i++) { // interleaved, so drift affects both alike
      real.push(await timed(async () => { assert.equal(await passwords.verify(stored, 'wrong password'), false) }))
      dummy.push(await timed(async () => { assert.equal(await passwords.verify(null, 'wrong password'), false) }))
    }
    const ratio = median(dummy) / median(real)
    assert.ok(ratio >= 0.5 && ratio <= 2, `dummy/real = ${ratio.toFixed(2)} (${median(dummy).toFixed(1)} / ${median(real).toFixed(1)} ms)`)
  })
})

describe('input limits', () => {
  test('hash: a 10 MB password is rejected with FST_PASSWORD_TOO_LONG in well under 50 ms, before any hashing', async () => {
    const passwords = createPasswords(FAST)
    // Decomposed text: normalising 10 MB of it would take hundreds of ms if done before the cap.
    const huge = 'e\u0301'.repeat(5 * 1024 * 1024)
    const start = performance.now()
    const pending = passwords.hash(huge)
    assert.equal(passwords.inFlight, 0)
    await assert.rejects(pending, isCode('FST_PASSWORD_TOO_LONG'))
    const elapsed = performance.now() - start
    assert.ok(elapsed < 50, `took ${elapsed.toFixed(1)} ms`)
    assert.equal(passwords.operations, 0)
  })

  test('verify: a too-long password is rejected with FST_PASSWORD_TOO_LONG, no argon2 work', async () => {
    const passwords = createPasswords(FAST)
    const stored = await passwords.hash(PW)
    const before = passwords.operations
    await assert.rejects(passwords.verify(stored, 'a'.repeat(10 * 1024 * 1024)), isCode('FST_PASSWORD_TOO_LONG'))
    await assert.rejects(passwords.verify(null, 'a'.repeat(1025)), isCode('FST_PASSWORD_TOO_LONG'))
    assert.equal(passwords.operations, before)
  })

  test('hash: maxLength counts UTF-8 bytes, before and after NFKC', async () => {
    const passwords = createPasswords(FAST)
    assert.match(await passwords.hash('a'.repeat(1024)), PHC, '1024 ASCII bytes is accepted')
    // 513 code units but 1026 UTF-8 bytes.
    await assert.rejects(passwords.hash('\u00e9'.repeat(513)), isCode('FST_PASSWORD_TOO_LONG'))
    // U+FDFA: 3 bytes in, 33 bytes after NFKC; 100 of them are 300 bytes in, 3300 after.
    await assert.rejects(passwords.hash('\ufdfa'.repeat(100)), isCode('FST_PASSWORD_TOO_LONG'))
    const small = createPasswords({ ...FAST, maxLength: 64 })
    await assert.rejects(small.hash('a'.repeat(65)), isCode('FST_PASSWORD_TOO_LONG'))
    assert.equal(passwords.operations, 1)
    assert.equal(small.operations, 0)
  })

  test('hash: an empty password is rejected with FST_PASSWORD_EMPTY before any hashing', async () => {
    const passwords = createPasswords(FAST)
    const pending = passwords.hash('')
    assert.equal(passwords.inFlight, 0)
    await assert.rejects(pending, isCode('FST_PASSWORD_EMPTY'))
    assert.equal(passwords.operations, 0)
  })

  test('hash: a non-string or ill-formed (lone surrogate) password is rejected with FST_PASSWORD_INVALID', async () => {
    const passwords = createPasswords(FAST)
    for (const bad of [undefined, null, 42, { toString: () => PW }, Buffer.from(PW)]) {
      await assert.rejects(passwords.hash(bad as unknown as string), isCode('FST_PASSWORD_INVALID'))
    }
    // '\uD800' and '\uDBFF' would both encode to U+FFFD and collide.
    await assert.rejects(passwords.hash('a\ud800'), isCode('FST_PASSWORD_INVALID'))
    assert.equal(passwords.operations, 0)
  })

  test('verify: an empty or ill-formed password answers false after a dummy verify', async () => {
    const passwords = createPasswords(FAST)
    const stored = await passwords.hash(PW)
    await passwords.verify(null, 'warm-up')
    const before = passwords.operations
    assert.equal(await passwords.verify(stored, ''), false)
    assert.equal(await passwords.verify(stored, '\udc00'), false)
    assert.equal(passwords.operations - before, 2)
    await assert.rejects(passwords.verify(stored, undefined as unknown as string), isCode('FST_PASSWORD_INVALID'))
  })
})

describe('stored hashes', () => {
  test('verify: a malformed or non-argon2id hash answers false, never throws, and warns without the hash', async () => {
    const log = recordingLogger()
    const passwords = createPasswords(FAST, { log })
    log.calls.length = 0 // drop the below-OWASP creation warning
    const valid = await passwords.hash(PW)
    const argon2i = await argon2Hash(PW, { algorithm: 1, memoryCost: 1024, timeCost: 1 })
    const cases: Array<[unknown, string]> = [
      ['not a hash', 'malformed'],
      ['', 'malformed'],
      ['$argon2id$v=19$m=1,t=1,p=1$xx$yy', 'malformed'],
      [valid.slice(0, 30), 'malformed'],
      ['$argon2id$' + 'A'.repeat(10_000), 'malformed'],
      [42, 'malformed'],
      [argon2i, 'algorithm'],
      // A tampered hash demanding ~4 GiB would take seconds: refused before argon2 sees it.
      [valid.replace('m=1024', 'm=4000000'), 'cost'],
    ]
    for (const [hash, reason] of cases) {
      log.calls.length = 0
      const start = performance.now()
      assert.equal(await passwords.verify(hash as string, PW), false)
      assert.ok(performance.now() - start < 1000, 'refused without running the hash\'s own cost')
      assert.equal(log.calls.length, 1)
      assert.deepEqual(log.calls[0]![0], { reason })
      const logged = JSON.stringify(log.calls)
      if (typeof hash === 'string' && hash !== '') assert.ok(!logged.includes(hash), 'the hash is not logged')
      assert.ok(!logged.includes(phcParams(valid).tag) && !logged.includes(argon2i.split('$')[5]!))
    }
  })

  test('createPasswords: warns once, with the costs only, when they are below the OWASP minimum', () => {
    const log = recordingLogger()
    createPasswords(FAST, { log })
    assert.equal(log.calls.length, 1)
    assert.deepEqual(log.calls[0]![0], { memoryCost: 1024, timeCost: 1 })
    createPasswords({ memoryCost: 19456, timeCost: 2 }, { log })
    createPasswords({ memoryCost: 47104, timeCost: 1 }, { log })
    createPasswords(undefined, { log })
    assert.equal(log.calls.length, 1)
  })

  test('needsRehash: false at the current parameters, true for weaker m, t or p, other algorithms and malformed hashes', async () => {
    const current = { memoryCost: 4096, timeCost: 2, parallelism: 2 }
    const passwords = createPasswords(current)
    const make = (o: PasswordOptions): Promise<string> => createPasswords(o).hash(PW)
    assert.equal(passwords.needsRehash(await passwords.hash(PW)), false)
    assert.equal(passwords.needsRehash(await make({ memoryCost: 8192, timeCost: 3, parallelism: 2 })), false, 'stronger is kept')
    assert.equal(passwords.needsRehash(await make({ ...current, memoryCost: 2048 })), true)
    assert.equal(passwords.needsRehash(await make({ ...current, timeCost: 1 })), true)
    assert.equal(passwords.needsRehash(await make({ ...current, parallelism: 1 })), true)
    const base = { memoryCost: 4096, timeCost: 2, parallelism: 2 }
    assert.equal(passwords.needsRehash(await argon2Hash(PW, { ...base, algorithm: 1 })), true, 'argon2i')
    assert.equal(passwords.needsRehash(await argon2Hash(PW, { ...base, algorithm: 0 })), true, 'argon2d')
    assert.equal(passwords.needsRehash(await argon2Hash(PW, { ...base, algorithm: 2, version: 0 })), true, 'v=16')
    assert.equal(passwords.needsRehash(await argon2Hash(PW, { ...base, algorithm: 2, salt: randomBytes(8) })), true, 'short salt')
    assert.equal(passwords.needsRehash(await argon2Hash(PW, { ...base, algorithm: 2, outputLen: 16 })), true, 'short tag')
    for (const bad of ['', 'garbage', '$argon2id$v=19$m=4096,t=2,p=2$', null, 7]) {
      assert.equal(passwords.needsRehash(bad as string), true)
    }
  })

  test('needsRehash: standalone function compares against the default policy', async () => {
    assert.equal(needsRehash(await hashPassword(PW)), false)
    assert.equal(needsRehash(await hashPassword(PW, { memoryCost: 19456, timeCost: 2 })), true)
    assert.equal(needsRehash(await hashPassword(PW, FAST), FAST), false)
  })

  test('verifyAndUpgrade: returns a new hash at the current parameters when the old one is weaker', async () => {
    const weak = await createPasswords(FAST).hash(PW)
    const passwords = createPasswords({ ...FAST, memoryCost: 2048 })
    const upgraded = await passwords.verifyAndUpgrade(weak, PW)
    assert.equal(upgraded.ok, true)
    assert.ok(upgraded.newHash !== undefined)
    assert.equal(phcParams(upgraded.newHash).m, 2048)
    assert.equal(await passwords.verify(upgraded.newHash, PW), true)
    assert.deepEqual(await passwords.verifyAndUpgrade(upgraded.newHash, PW), { ok: true })
    assert.deepEqual(await passwords.verifyAndUpgrade(weak, 'wrong password'), { ok: false })
    assert.deepEqual(await passwords.verifyAndUpgrade(null, PW), { ok: false })
    const standalone = await verifyAndUpgrade(weak, PW, { ...FAST, timeCost: 2 })
    assert.equal(standalone.ok, true)
    assert.equal(phcParams(standalone.newHash!).t, 2)
  })
})

describe('pepper', () => {
  test('pepper: a peppered hash verifies only with the same pepper', async () => {
    const pepper = randomBytes(32)
    const peppered = createPasswords({ ...FAST, pepper })
    const hash = await peppered.hash(PW)
    assert.equal(await peppered.verify(hash, PW), true)
    assert.equal(await createPasswords(FAST).verify(hash, PW), false, 'without the pepper')
    assert.equal(await createPasswords({ ...FAST, pepper: randomBytes(32) }).verify(hash, PW), false, 'another pepper')
    assert.equal(await verifyPassword(hash, PW, { ...FAST, pepper: Buffer.from(pepper) }), true, 'standalone, equal pepper')
    assert.ok(!hash.includes(pepper.toString('base64').slice(0, 20)))
  })

  test('pepper: kept as a private copy, never exposed on the instance options', async () => {
    const pepper = Buffer.alloc(32, 7)
    const stringPepper = 'x'.repeat(32)
    const peppered = createPasswords({ ...FAST, pepper })
    const hash = await peppered.hash(PW)
    pepper.fill(0) // the caller reuses its buffer
    assert.equal(await peppered.verify(hash, PW), true)
    assert.equal(peppered.options.peppered, true)
    assert.ok(!('pepper' in peppered.options))
    assert.ok(!JSON.stringify(createPasswords({ pepper: stringPepper })).includes(stringPepper))
  })

  test('pepper: shorter than 32 bytes or of another type fails with FST_SESSION_INVALID_OPTION', () => {
    const short = 'short-pepper-value'
    for (const pepper of [short, Buffer.alloc(31), 12345, ['x'.repeat(32)]]) {
      assert.throws(() => createPasswords({ pepper: pepper as string }), (error: unknown) => {
        assert.ok(error instanceof SessionError)
        assert.equal(error.code, 'FST_SESSION_INVALID_OPTION')
        assert.match(error.message, /password\.pepper/)
        assert.ok(!error.message.includes(short))
        return true
      })
    }
  })
})

describe('options', () => {
  test('createPasswords: invalid options fail with FST_SESSION_INVALID_OPTION naming the option, not its value', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ memoryCost: 0 }, 'password.memoryCost'],
      [{ memoryCost: 1.5 }, 'password.memoryCost'],
      [{ memoryCost: '19456' }, 'password.memoryCost'],
      [{ memoryCost: Number.NaN }, 'password.memoryCost'],
      [{ memoryCost: 2 ** 32 }, 'password.memoryCost'],
      [{ memoryCost: 15, parallelism: 2 }, 'password.memoryCost'], // m >= 8·p
      [{ timeCost: 0 }, 'password.timeCost'],
      [{ timeCost: Infinity }, 'password.timeCost'],
      [{ parallelism: 0 }, 'password.parallelism'],
      [{ parallelism: 256 }, 'password.parallelism'],
      [{ maxLength: 63 }, 'password.maxLength'], // NIST SP 800-63B: at least 64 characters
      [{ maxLength: -1 }, 'password.maxLength'],
      [{ maxConcurrency: 0 }, 'password.maxConcurrency'],
      [{ maxConcurrency: 2.5 }, 'password.maxConcurrency'],
      [{ maxQueue: -1 }, 'password.maxQueue'],
      [{ memorycost: 65536 }, "unknown option 'password.memorycost' (did you mean 'password.memoryCost'?)"],
    ]
    for (const [options, detail] of cases) {
      assert.throws(() => createPasswords(options as PasswordOptions), (error: unknown) => {
        assert.ok(error instanceof SessionError, JSON.stringify(options))
        assert.equal(error.code, 'FST_SESSION_INVALID_OPTION')
        assert.equal(error.statusCode, 500)
        assert.ok(error.message.includes(`: ${detail}`), error.message)
        assert.ok(!error.message.includes('65536') && !error.message.includes('19456'), 'the value is not echoed')
        return true
      })
    }
    for (const bad of [null, 'fast', [1], new Map()]) {
      assert.throws(() => createPasswords(bad as PasswordOptions), isCode('FST_SESSION_INVALID_OPTION'))
    }
  })

  test('hashPassword: invalid options reject with FST_SESSION_INVALID_OPTION', async () => {
    await assert.rejects(hashPassword(PW, { timeCost: 0 }), isCode('FST_SESSION_INVALID_OPTION'))
    await assert.rejects(verifyPassword(null, PW, { maxQueue: -1 }), isCode('FST_SESSION_INVALID_OPTION'))
    assert.throws(() => needsRehash('x', { parallelism: 0 }), isCode('FST_SESSION_INVALID_OPTION'))
  })

  test('createPasswords: options are validated, defaulted and frozen', () => {
    const passwords = createPasswords({ maxConcurrency: 3 })
    assert.deepEqual({ ...passwords.options }, {
      memoryCost: DEFAULT_MEMORY_COST,
      timeCost: DEFAULT_TIME_COST,
      parallelism: DEFAULT_PARALLELISM,
      maxLength: 1024,
      minLength: 8,
      checksCompromised: false,
      maxConcurrency: 3,
      maxQueue: 64 * 3,
      peppered: false,
    })
    assert.ok(Object.isFrozen(passwords.options))
    assert.ok(Object.isFrozen(passwords))
  })

  test('sharedPasswords: standalone functions share one instance per distinct normalised options', async () => {
    assert.equal(sharedPasswords(), sharedPasswords({}))
    assert.equal(sharedPasswords(), sharedPasswords({ memoryCost: DEFAULT_MEMORY_COST }))
    assert.equal(sharedPasswords({ ...FAST }), sharedPasswords({ timeCost: 1, memoryCost: 1024 }))
    assert.notEqual(sharedPasswords(FAST), sharedPasswords({ ...FAST, maxQueue: 3 }))
    const pepper = randomBytes(32)
    assert.equal(sharedPasswords({ ...FAST, pepper }), sharedPasswords({ ...FAST, pepper: Buffer.from(pepper) }))
    assert.notEqual(sharedPasswords({ ...FAST, pepper }), sharedPasswords({ ...FAST, pepper: randomBytes(32) }))
    const options = { ...FAST, maxQueue: 17 }
    const pending = hashPassword(PW, { ...options })
    assert.equal(sharedPasswords(options).inFlight, 1, 'the standalone call runs on the shared instance')
    await pending
  })
})
