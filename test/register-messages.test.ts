/**
 * What register says about a misconfiguration an operator makes on a first deploy: a missing
 * SESSION_SECRET, a __Host- cookie over plain HTTP, a capitalised sameSite, timeouts written in
 * seconds. No Redis: the memory store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions } from '../lib/index.ts'
import { normaliseOptions } from '../lib/config.ts'
import { captureLogs } from './helpers/app.ts'

const secret = 's'.repeat(32)

async function registerError (options: Partial<HardenedSessionOptions>): Promise<{ code?: string, message: string }> {
  const app = Fastify()
  try {
    await app.register(hardenedSession, { secrets: [secret], store: createMemoryStore(), ...options } as HardenedSessionOptions)
    await app.ready()
  } catch (err) {
    return err as { code?: string, message: string }
  } finally {
    await app.close()
  }
  throw new Error('register succeeded')
}

test('secrets: an unset SESSION_SECRET (undefined, null or "") says secrets[0] is missing and how to make one', async () => {
  for (const missing of [undefined, null, '']) {
    const err = await registerError({ secrets: [missing as unknown as string] })
    assert.equal(err.code, 'FST_SESSION_SECRET_INVALID')
    assert.match(err.message, /secrets\[0\] is missing: set SESSION_SECRET \(generate one with `npx fastify-hardened-session gen-secret`\)/)
  }
  const second = await registerError({ secrets: [secret, undefined as unknown as string] })
  assert.match(second.message, /secrets\[1\] is missing/)
})

test('secrets: a short secret names its position and gen-secret, never its value', async () => {
  const err = await registerError({ secrets: [secret, 'short-secret-value'] })
  assert.equal(err.code, 'FST_SESSION_SECRET_INVALID')
  assert.match(err.message, /secrets\[1\] must be a string or Buffer of at least 32 bytes \(generate one with `npx fastify-hardened-session gen-secret`\)/)
  assert.ok(!err.message.includes('short-secret-value'))
  const none = await registerError({ secrets: [] })
  assert.match(none.message, /non-empty array.*gen-secret/)
})

test('cookie: a __Host- (or __Secure-) name with secure: false says to rename the cookie', async () => {
  const host = await registerError({ cookie: { secure: false } })
  assert.equal(host.code, 'FST_SESSION_COOKIE_OPTION')
  assert.match(host.message, /__Host- cookie is always Secure: .*rename the cookie, e\.g\. cookie: \{ name: 'sid', secure: false \}/)
  const secure = await registerError({ cookie: { name: '__Secure-sid', secure: false } })
  assert.match(secure.message, /__Secure- cookie is always Secure: .*rename the cookie/)
  // Renamed, it registers (plain-HTTP development).
  const app = Fastify()
  await app.register(hardenedSession, { secrets: [secret], store: createMemoryStore(), cookie: { name: 'sid', secure: false } })
  await app.ready()
  await app.close()
})

test('cookie: sameSite accepts any case and is sent as SameSite=Strict / Lax / None', async () => {
  const cases: Array<[string, 'lax' | 'strict' | 'none', string]> = [['Lax', 'lax', 'Lax'], ['STRICT', 'strict', 'Strict'], ['None', 'none', 'None'], ['strict', 'strict', 'Strict']]
  for (const [given, normal, header] of cases) {
    const options = { secrets: [secret], store: createMemoryStore(), cookie: { sameSite: given as 'lax' } }
    assert.equal(normaliseOptions(options).cookie.sameSite, normal)
    const app = Fastify()
    await app.register(hardenedSession, options)
    app.get('/set', async (req) => { req.session.set('a', 1); return 'ok' })
    const res = await app.inject({ url: '/set' })
    assert.match(String(res.headers['set-cookie']), new RegExp(`; SameSite=${header}(;|$)`))
    await app.close()
  }
  assert.equal((await registerError({ cookie: { sameSite: 'loose' as 'lax' } })).code, 'FST_SESSION_COOKIE_OPTION')
})

test('timeouts: a storeTimeout or connectTimeout below one second logs a warning that timeouts are milliseconds', async () => {
  const { lines, logger } = captureLogs('warn')
  const app = Fastify({ logger })
  await app.register(hardenedSession, { secrets: [secret], store: createMemoryStore(), storeTimeout: 5, connectTimeout: 30 })
  await app.ready()
  await app.close()
  const warnings = lines.filter((l) => l.level === 40).map((l) => String(l.msg))
  assert.ok(warnings.some((m) => /^storeTimeout is 5 ms: timeouts are in milliseconds \(5 s would be 5000\)$/.test(m)), warnings.join('\n'))
  assert.ok(warnings.some((m) => /^connectTimeout is 30 ms: timeouts are in milliseconds/.test(m)))

  const quiet = captureLogs('warn')
  const other = Fastify({ logger: quiet.logger })
  await other.register(hardenedSession, { secrets: [secret], store: createMemoryStore(), storeTimeout: 1000, connectTimeout: 5000 })
  await other.ready()
  await other.close()
  assert.deepEqual(quiet.lines.filter((l) => String(l.msg).includes('milliseconds')), [])
})

test('timeouts: idleTimeout, absoluteTimeout or a loginThrottle window under one minute fails register: durations are milliseconds', async () => {
  const idle = await registerError({ idleTimeout: 1800 })
  assert.equal(idle.code, 'FST_SESSION_INVALID_OPTION')
  assert.match(idle.message, /idleTimeout is 1800 ms, under one minute: durations are in milliseconds \(1800 s would be 1800000, 30 min\); for tests, set allowShortDurations: true/)
  assert.match((await registerError({ absoluteTimeout: 43_200 })).message, /absoluteTimeout is 43200 ms, under one minute: .*\(43200 s would be 43200000, 12 h\)/)
  assert.match((await registerError({ idleTimeout: 30 })).message, /idleTimeout is 30 ms, under one minute: .*\(30 s would be 30000, 30 s\)/)
  assert.match((await registerError({ loginThrottle: { perAccount: { windowMs: 900 } } })).message, /loginThrottle\.perAccount\.windowMs is 900 ms, under one minute: .*15 min/)
  assert.match((await registerError({ loginThrottle: { perIp: { windowMs: 59_999 } } })).message, /loginThrottle\.perIp\.windowMs is 59999 ms/)
})

test('timeouts: allowShortDurations: true lets tests use sub-minute durations (down to one second); one minute and more needs nothing', async () => {
  const config = normaliseOptions({ secrets: [secret], store: createMemoryStore(), idleTimeout: 1000, absoluteTimeout: 1500, touchInterval: 100, loginThrottle: { perAccount: { max: 3, windowMs: 2000 } }, allowShortDurations: true })
  assert.deepEqual([config.idleTimeout, config.absoluteTimeout, config.loginThrottle?.perAccount.windowMs], [1000, 1500, 2000])
  assert.equal(normaliseOptions({ secrets: [secret], store: createMemoryStore(), idleTimeout: 60_000, absoluteTimeout: 60_000 }).idleTimeout, 60_000)
  assert.match((await registerError({ idleTimeout: 999, allowShortDurations: true })).message, /idleTimeout must be an integer number of milliseconds ≥ 1000/)
  assert.match((await registerError({ allowShortDurations: 'yes' as unknown as boolean })).message, /allowShortDurations must be a boolean/)
})
