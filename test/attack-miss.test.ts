/**
 * Attacks on the one-round-trip cache miss (the READ script also reads the record's user-index
 * entry), against a real redis-server: a revocation racing a miss, a miss joined while its reply
 * is held on a stalled link, a Redis writer pointing a record at another user's index entry.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp, login, sleep, works } from './helpers/app.ts'
import { putToSleep } from './helpers/redis-server.ts'
import { startProxy } from './helpers/tcp-proxy.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('rvmiss', ['--enable-debug-command', 'yes'])

const TRIES = 20

// Fixed defect: a request that started after revokeUser resolved joined a cache miss of the same cookie still in flight (sent before the revocation, its reply held on the link) and was served the revoked session from the index entry that miss had read with the record.
test('revocation: a request that starts after revokeUser resolved never serves the revoked session, even when it joins a miss of the same cookie still in flight', async () => {
  const proxy = await startProxy(fx.redis.port)
  fx.closers.push(() => proxy.close())
  const prefix = fx.freshPrefix()
  const a = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix })
  const b = await buildApp({ redis: { url: proxy.url }, keyPrefix: prefix })
  fx.apps.push(a, b)
  let served = 0
  let ran = 0
  for (let i = 0; i < TRIES; i++) {
    const user = fx.user()
    const cookie = await login(a, user)
    // b has never read this session: its first request is a miss (READ through the proxy).
    const sleeping = await putToSleep(fx.redis.port, 0.3)
    const first = b.inject({ url: '/private', headers: { cookie } })
    await sleep(30) // the READ reaches Redis (queued while it sleeps)
    proxy.stall() // its reply is held between Redis and b
    const revoked = a.session.revokeUser(user)
    await sleeping.awake
    await revoked // resolved: READ ran before it, its reply is still held
    const late = b.inject({ url: '/private', headers: { cookie } })
    await sleep(30) // the late request reaches the store (joins the read in flight)
    proxy.resume()
    const [, r2] = await Promise.all([first, late])
    ran++
    if (r2.statusCode === 200) served++
    assert.equal(await works(b, cookie), false, 'dead afterwards on b')
    assert.equal(await works(a, cookie), false, 'dead afterwards on a')
  }
  assert.equal(served, 0, `a request begun after revokeUser resolved was served the revoked session in ${served} of ${ran} tries`)
})

test('writer: a record whose m:k/m:r are edited to name another user\'s index entry, or a key that is not a hash, is no session (no 500), and the other user\'s session stays revocable everywhere', async () => {
  const { createClient } = await import('redis')
  const { recordKey, gone } = await import('./helpers/app.ts')
  const raw = createClient({ url: fx.redis.url })
  await raw.connect()
  fx.closers.push(() => raw.close())
  const prefix = fx.freshPrefix()
  const a = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix })
  const b = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix })
  fx.apps.push(a, b)
  const victim = fx.user()
  const v = await login(a, victim)
  const mine = await login(a, fx.user())
  const vKey = recordKey(prefix, v)
  const mKey = recordKey(prefix, mine)
  const [vk, vr] = await raw.hmGet(vKey, ['m:k', 'm:r'])
  await raw.hSet(mKey, { 'm:k': vk as string, 'm:r': vr as string })
  const me = await b.inject({ url: '/me', headers: { cookie: mine } })
  assert.equal(me.statusCode, 200)
  assert.equal(me.json().user, null, 'the edited record is no session')
  assert.equal(await works(b, v), true, 'the victim is unaffected')
  await a.session.revokeUser(victim)
  await gone(b, v, 'victim after revokeUser')
  // m:k naming a string key: the piggybacked HGET fails inside the script, no 500
  const other = await login(a, fx.user())
  const oKey = recordKey(prefix, other)
  await raw.set(`${prefix}u:notahash`, 'x')
  await raw.hSet(oKey, 'm:k', 'notahash')
  const res = await b.inject({ url: '/me', headers: { cookie: other } })
  assert.equal(res.statusCode, 200)
  assert.equal(res.json().user, null)
})

test('revocation: 40× a miss on b racing revokeUser / revokeSession / logout on a: once the revocation resolved, b serves the session no more (100 ms) and holds no stale index entry', async () => {
  const { gone, refOf } = await import('./helpers/app.ts')
  const prefix = fx.freshPrefix()
  const a = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix })
  const b = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix })
  fx.apps.push(a, b)
  for (let i = 0; i < 40; i++) {
    const user = fx.user()
    const cookie = await login(a, user)
    const keep = await login(a, user) // another session of the user, read on b (its index cached there)
    assert.equal(await works(b, keep), true)
    const kind = i % 3
    const ref = kind === 1 ? await refOf(a, cookie) : ''
    const race = b.inject({ url: '/private', headers: { cookie } })
    if (i % 2 === 0) await new Promise((resolve) => setImmediate(resolve))
    if (kind === 0) await a.session.revokeUser(user)
    else if (kind === 1) await a.session.revokeSession(user, ref)
    else await a.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    await race
    await gone(b, cookie, `try ${i} kind ${kind}`)
    await sleep(120)
    assert.equal(await works(b, cookie), false, `try ${i}: still dead later`)
  }
})
