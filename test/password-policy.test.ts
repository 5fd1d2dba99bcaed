/**
 * The new-password policy (minLength, isCompromised) and the contract names of an instance.
 * Real argon2 at cheap parameters, as in password.test.ts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { hash as argon2Hash } from '@node-rs/argon2'
import Fastify from 'fastify'
import { SessionError } from '../lib/errors.ts'
import hardenedSession, { createMemoryStore } from '../lib/index.ts'
import { createPasswords, hashPassword, sharedPasswords, verifyAndUpgrade, verifyPassword } from '../lib/password/index.ts'
import type { PasswordLogger } from '../lib/password/index.ts'
import type { PasswordOptions } from '../lib/public-types.ts'

const FAST = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const satisfies PasswordOptions
const PHC = /^\$argon2id\$v=19\$/

function isCode (code: string, statusCode: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof SessionError, `expected a SessionError, got ${inspect(error)}`)
    assert.equal(error.code, code)
    assert.equal(error.statusCode, statusCode)
    return true
  }
}

function recordingLogger (): PasswordLogger & { calls: Array<[object, string]> } {
  const calls: Array<[object, string]> = []
  return { calls, warn (obj, msg) { calls.push([obj, msg]) } }
}

/** A hook that answers `verdict` and records what it was asked. */
function recordingHook (verdict: (password: string) => boolean | Promise<boolean>) {
  const seen: string[] = []
  const hook = (password: string): boolean | Promise<boolean> => {
    seen.push(password)
    return verdict(password)
  }
  return { hook, seen }
}

/** Rejects unless `run` fails with `code`; then checks the password is nowhere in the error. */
async function rejectsWithout (run: Promise<unknown>, code: string, statusCode: number, password: string): Promise<void> {
  let caught: unknown
  await assert.rejects(run, (error: unknown) => { caught = error; return isCode(code, statusCode)(error) })
  const error = caught as SessionError
  assert.equal(error.cause, undefined, 'the hook\'s own error is not attached')
  for (const text of [error.message, String(error.stack), inspect(error, { depth: 10 }), JSON.stringify(error)]) {
    assert.ok(!text.includes(password), 'the password does not appear in the error')
  }
}

describe('contract names', () => {
  test('Passwords: hashPassword, verifyPassword and needsRehash exist; hash and verify are the same functions', async () => {
    const passwords = createPasswords(FAST)
    assert.equal(passwords.hash, passwords.hashPassword)
    assert.equal(passwords.verify, passwords.verifyPassword)
    const stored = await passwords.hashPassword('correct horse')
    assert.match(stored, PHC)
    assert.equal(await passwords.verifyPassword(stored, 'correct horse'), true)
    assert.equal(await passwords.verifyPassword(stored, 'wrong horse'), false)
    assert.equal(await passwords.verifyPassword(null, 'correct horse'), false)
    assert.equal(passwords.needsRehash(stored), false)
    assert.deepEqual(await passwords.verifyAndUpgrade(stored, 'correct horse'), { ok: true })
  })

  test('fastify.passwords: has the contract names and applies the registered password options', async (t) => {
    const app = Fastify()
    t.after(() => app.close())
    await app.register(hardenedSession, {
      secrets: ['a-secret-of-at-least-thirty-two-bytes!'],
      store: createMemoryStore(),
      password: { ...FAST, minLength: 10 },
    })
    app.post('/register', { config: { session: false } }, async (request) => {
      const { password } = request.body as { password: string }
      return { hash: await app.passwords.hashPassword(password) }
    })
    await app.ready()
    for (const name of ['hashPassword', 'verifyPassword', 'needsRehash', 'hash', 'verify', 'verifyAndUpgrade'] as const) {
      assert.equal(typeof app.passwords[name], 'function', name)
    }
    assert.equal(app.passwords.options.minLength, 10)
    const short = await app.inject({ method: 'POST', url: '/register', payload: { password: 'nine char' } })
    assert.equal(short.statusCode, 400)
    assert.equal(short.json().code, 'FST_PASSWORD_TOO_SHORT')
    assert.ok(!short.body.includes('nine char'))
    const ok = await app.inject({ method: 'POST', url: '/register', payload: { password: 'ten chars!' } })
    assert.equal(ok.statusCode, 200)
    assert.equal(await app.passwords.verifyPassword(ok.json().hash, 'ten chars!'), true)
  })

  test('register: a bad password.minLength or password.isCompromised fails with FST_SESSION_INVALID_OPTION', async () => {
    for (const [password, detail] of [[{ minLength: 0 }, 'password.minLength'], [{ isCompromised: 'no' }, 'password.isCompromised']] as const) {
      const app = Fastify()
      app.register(hardenedSession, { secrets: ['a-secret-of-at-least-thirty-two-bytes!'], store: createMemoryStore(), password: password as PasswordOptions })
      await assert.rejects(
        async () => { await app.ready() },
        (error: unknown) => {
          assert.ok(error instanceof SessionError)
          assert.equal(error.code, 'FST_SESSION_INVALID_OPTION')
          assert.ok(error.message.includes(`: ${detail} `), error.message)
          return true
        })
      await app.close()
    }
  })
})

describe('minLength', () => {
  test('hashPassword: 7 code points fail with FST_PASSWORD_TOO_SHORT (400) before any argon2 work, 8 are hashed', async () => {
    const passwords = createPasswords(FAST)
    assert.equal(passwords.options.minLength, 8, 'default')
    await assert.rejects(passwords.hashPassword('1234567'), isCode('FST_PASSWORD_TOO_SHORT', 400))
    assert.equal(passwords.operations, 0)
    assert.match(await passwords.hashPassword('12345678'), PHC)
    await assert.rejects(hashPassword('1234567', FAST), isCode('FST_PASSWORD_TOO_SHORT', 400))
    assert.match(await hashPassword('12345678', FAST), PHC)
  })

  test('hashPassword: counts code points, not UTF-16 units (an emoji is one character)', async () => {
    const passwords = createPasswords(FAST)
    const emoji = '\u{1F600}' // two UTF-16 units, one code point
    await assert.rejects(passwords.hashPassword(emoji.repeat(7)), isCode('FST_PASSWORD_TOO_SHORT', 400)) // 14 units
    await assert.rejects(passwords.hashPassword('abcd' + emoji.repeat(3)), isCode('FST_PASSWORD_TOO_SHORT', 400)) // 10 units
    assert.match(await passwords.hashPassword(emoji.repeat(8)), PHC)
    assert.match(await passwords.hashPassword('abcd' + emoji.repeat(4)), PHC)
  })

  test('hashPassword: counts after NFKC (a combining accent merges; a ligature expands)', async () => {
    const passwords = createPasswords(FAST)
    // 8 code points as typed, 'cafés!!' (7) after NFKC: too short.
    const combining = 'cafe\u0301s!!'
    assert.equal([...combining].length, 8)
    assert.equal([...combining.normalize('NFKC')].length, 7)
    await assert.rejects(passwords.hashPassword(combining), isCode('FST_PASSWORD_TOO_SHORT', 400))
    // 7 code points as typed, 'file box' (8) after NFKC: long enough.
    const ligature = '\ufb01le box'
    assert.equal([...ligature].length, 7)
    const stored = await passwords.hashPassword(ligature)
    assert.equal(await passwords.verifyPassword(stored, 'file box'), true)
  })

  test('hashPassword: minLength is configurable; the empty password stays FST_PASSWORD_EMPTY', async () => {
    const strict = createPasswords({ ...FAST, minLength: 15 }) // NIST SP 800-63B-4 for single-factor use
    await assert.rejects(strict.hashPassword('fourteen chars'), isCode('FST_PASSWORD_TOO_SHORT', 400))
    assert.match(await strict.hashPassword('fifteen chars!!'), PHC)
    const lax = createPasswords({ ...FAST, minLength: 1 })
    assert.match(await lax.hashPassword('x'), PHC)
    await assert.rejects(lax.hashPassword(''), isCode('FST_PASSWORD_EMPTY', 400))
    await assert.rejects(createPasswords(FAST).hashPassword(''), isCode('FST_PASSWORD_EMPTY', 400))
  })

  test('verifyPassword: an existing hash of a 6-character password still verifies under the default minLength', async () => {
    // Made outside this library's policy, like a hash from before minLength existed.
    const old = await argon2Hash('secret', { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 })
    const passwords = createPasswords(FAST)
    assert.equal(await passwords.verifyPassword(old, 'secret'), true)
    assert.equal(await passwords.verify(old, 'secret'), true)
    assert.equal(await passwords.verifyPassword(old, 'secreT'), false)
    assert.equal(await verifyPassword(old, 'secret', FAST), true)
    assert.equal(await passwords.verifyPassword(old, 'abc'), false, 'a short wrong password is just wrong')
  })

  test('verifyAndUpgrade: the rehash of a short password succeeds, without minLength or the breach hook', async () => {
    const old = await createPasswords({ ...FAST, minLength: 1 }).hashPassword('secret')
    const { hook, seen } = recordingHook(() => true) // would refuse every new password
    const passwords = createPasswords({ ...FAST, memoryCost: 2048, minLength: 12, isCompromised: hook })
    const upgraded = await passwords.verifyAndUpgrade(old, 'secret')
    assert.equal(upgraded.ok, true)
    assert.ok(upgraded.newHash !== undefined, 'a new hash at the new cost')
    assert.match(upgraded.newHash, /\$m=2048,/)
    assert.equal(await passwords.verifyPassword(upgraded.newHash, 'secret'), true)
    assert.deepEqual(seen, [], 'the hook is for new passwords only')
    const standalone = await verifyAndUpgrade(old, 'secret', { ...FAST, timeCost: 2 })
    assert.equal(standalone.ok, true)
    assert.ok(standalone.newHash !== undefined)
  })

  test('createPasswords: minLength below 8 is allowed, with one warning naming the setting', () => {
    const log = recordingLogger()
    createPasswords({ memoryCost: 19456, timeCost: 2, minLength: 6 }, { log })
    assert.equal(log.calls.length, 1)
    assert.deepEqual(log.calls[0]![0], { minLength: 6 })
    createPasswords({ memoryCost: 19456, timeCost: 2, minLength: 8 }, { log })
    assert.equal(log.calls.length, 1)
  })
})

describe('isCompromised', () => {
  const breached = 'password123'

  test('hashPassword: a sync hook answering true refuses with FST_PASSWORD_COMPROMISED (400), false lets it through', async () => {
    const { hook, seen } = recordingHook((pw) => pw === breached)
    const passwords = createPasswords({ ...FAST, isCompromised: hook })
    assert.equal(passwords.options.checksCompromised, true)
    await rejectsWithout(passwords.hashPassword(breached), 'FST_PASSWORD_COMPROMISED', 400, breached)
    assert.equal(passwords.operations, 0, 'no argon2 work for a refused password')
    assert.match(await passwords.hashPassword('correct horse'), PHC)
    assert.deepEqual(seen, [breached, 'correct horse'])
  })

  test('hashPassword: an async hook is awaited, true and false alike', async () => {
    const hook = async (pw: string): Promise<boolean> => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      return pw === breached
    }
    const passwords = createPasswords({ ...FAST, isCompromised: hook })
    await assert.rejects(passwords.hashPassword(breached), isCode('FST_PASSWORD_COMPROMISED', 400))
    assert.match(await passwords.hashPassword('correct horse'), PHC)
    await assert.rejects(hashPassword(breached, { ...FAST, isCompromised: hook }), isCode('FST_PASSWORD_COMPROMISED', 400))
  })

  test('hashPassword: a hook that throws, rejects or answers a non-boolean fails closed with FST_PASSWORD_CHECK_FAILED (503), without the password', async () => {
    const secret = 'hunter2-hunter2'
    const failures: Array<[string, (pw: string) => boolean | Promise<boolean>]> = [
      ['throws', (pw) => { throw new Error(`lookup failed for ${pw}`) }],
      ['rejects', async (pw) => { throw Object.assign(new Error(`lookup failed for ${pw}`), { code: 'ECONNREFUSED', password: pw }) }],
      ['rejects with the password itself', (pw) => Promise.reject(pw)],
      ['throws an error named after it', (pw) => { throw Object.assign(new Error('x'), { name: pw, code: pw }) }],
      ['answers undefined', (() => undefined) as unknown as () => boolean],
      ['answers a string', (() => 'yes') as unknown as () => boolean],
      ['answers a promise of 1', (async () => 1) as unknown as () => Promise<boolean>],
    ]
    for (const [label, hook] of failures) {
      const log = recordingLogger()
      const passwords = createPasswords({ ...FAST, isCompromised: hook }, { log })
      log.calls.length = 0 // drop the below-OWASP creation warning
      await rejectsWithout(passwords.hashPassword(secret), 'FST_PASSWORD_CHECK_FAILED', 503, secret)
      await rejectsWithout(hashPassword(secret, { ...FAST, isCompromised: hook }), 'FST_PASSWORD_CHECK_FAILED', 503, secret)
      assert.equal(passwords.operations, 0, label)
      assert.equal(log.calls.length, 1, label)
      assert.ok(!inspect(log.calls, { depth: 10 }).includes(secret), `${label}: the password is not logged`)
    }
    const log = recordingLogger()
    const passwords = createPasswords({ ...FAST, isCompromised: failures[1]![1] }, { log })
    log.calls.length = 0
    await assert.rejects(passwords.hashPassword(secret))
    assert.deepEqual(log.calls[0]![0], { reason: 'threw', error: { name: 'Error', code: 'ECONNREFUSED' } }, 'name and code help operators')
  })

  test('isCompromised: asked about the password as hashed (NFKC) and, when it differs, as typed', async () => {
    const { hook, seen } = recordingHook((pw) => pw === '\ufb01le cabinet') // breached in its typed form
    const passwords = createPasswords({ ...FAST, isCompromised: hook })
    await assert.rejects(passwords.hashPassword('\ufb01le cabinet'), isCode('FST_PASSWORD_COMPROMISED', 400))
    assert.deepEqual(seen, ['file cabinet', '\ufb01le cabinet'])
    seen.length = 0
    await passwords.hashPassword('plain ascii')
    assert.deepEqual(seen, ['plain ascii'], 'asked once when NFKC changes nothing')
  })

  test('isCompromised: not asked for a password refused anyway, nor by verify, verifyAndUpgrade or needsRehash', async () => {
    const { hook, seen } = recordingHook(() => false)
    const passwords = createPasswords({ ...FAST, maxLength: 64, isCompromised: hook })
    await assert.rejects(passwords.hashPassword('short'), isCode('FST_PASSWORD_TOO_SHORT', 400))
    await assert.rejects(passwords.hashPassword(''), isCode('FST_PASSWORD_EMPTY', 400))
    await assert.rejects(passwords.hashPassword('x'.repeat(65)), isCode('FST_PASSWORD_TOO_LONG', 400))
    assert.deepEqual(seen, [])
    const stored = await createPasswords(FAST).hashPassword('correct horse')
    assert.equal(await passwords.verifyPassword(stored, 'correct horse'), true)
    assert.equal(await passwords.verifyPassword(null, 'correct horse'), false)
    await passwords.verifyAndUpgrade(stored, 'correct horse')
    passwords.needsRehash(stored)
    assert.deepEqual(seen, [])
  })

  test('isCompromised: a slow lookup holds no argon2 slot', async () => {
    let answer: (value: boolean) => void = () => {}
    const passwords = createPasswords({ ...FAST, maxConcurrency: 1, isCompromised: () => new Promise<boolean>((resolve) => { answer = resolve }) })
    const pending = passwords.hashPassword('correct horse')
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(passwords.inFlight, 0)
    const stored = await createPasswords(FAST).hashPassword('other password')
    assert.equal(await passwords.verifyPassword(stored, 'other password'), true, 'verify runs meanwhile')
    answer(false)
    assert.match(await pending, PHC)
  })
})

describe('policy options', () => {
  test('createPasswords: bad minLength or isCompromised fail with FST_SESSION_INVALID_OPTION naming the option', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ minLength: 0 }, 'password.minLength'],
      [{ minLength: -8 }, 'password.minLength'],
      [{ minLength: 8.5 }, 'password.minLength'],
      [{ minLength: '8' }, 'password.minLength'],
      [{ minLength: Number.NaN }, 'password.minLength'],
      [{ minLength: 1025 }, 'password.minLength'], // above the default maxLength
      [{ minLength: 65, maxLength: 64 }, 'password.minLength'],
      [{ isCompromised: true }, 'password.isCompromised'],
      [{ isCompromised: 'https://api.pwnedpasswords.com' }, 'password.isCompromised'],
      [{ isCompromised: {} }, 'password.isCompromised'],
      [{ isCompromised: null }, 'password.isCompromised'],
    ]
    for (const [options, detail] of cases) {
      assert.throws(() => createPasswords(options as PasswordOptions), (error: unknown) => {
        assert.ok(error instanceof SessionError, JSON.stringify(options))
        assert.equal(error.code, 'FST_SESSION_INVALID_OPTION')
        assert.ok(error.message.includes(`: ${detail} `), error.message)
        assert.ok(!error.message.includes('pwnedpasswords'), 'never the value')
        return true
      })
    }
    assert.equal(createPasswords({ minLength: 64, maxLength: 64 }).options.minLength, 64)
    assert.equal(createPasswords({ minLength: 1 }).options.minLength, 1)
    assert.equal(createPasswords({ isCompromised: async () => false }).options.checksCompromised, true)
    assert.equal(createPasswords().options.checksCompromised, false)
  })

  test('sharedPasswords: policies differ per instance, argon2 work shares one limiter per argon2 options', async () => {
    const base = { ...FAST, maxQueue: 5 }
    const lax = sharedPasswords({ ...base, minLength: 1 })
    const strict = sharedPasswords({ ...base, minLength: 12 })
    const hook = (): boolean => false
    const hooked = sharedPasswords({ ...base, isCompromised: hook })
    assert.notEqual(lax, strict)
    assert.equal(sharedPasswords({ ...base, isCompromised: hook }), hooked, 'same hook, same instance')
    assert.notEqual(sharedPasswords({ ...base, isCompromised: () => false }), hooked, 'another hook, another instance')
    const pending = lax.hashPassword('x')
    assert.equal(strict.inFlight + strict.queued, 1, 'the hash on one shows on the others')
    assert.equal(hooked.inFlight + hooked.queued, 1)
    await pending
    await assert.rejects(strict.hashPassword('x'), isCode('FST_PASSWORD_TOO_SHORT', 400))
  })
})
