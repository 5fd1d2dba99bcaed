/**
 * An attacker with write access to Redis (exposed port, stolen credentials, a compromised
 * neighbour) against a real server: it can read everything and write anything, but has no
 * secrets. It must not become another user, extend or revive a session, or fake a fresh login;
 * a record it touched is "no session" with an `invalid_record` event. Run with and without
 * encryption.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { generateEncryptionKey, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { buildApp, eventually, idOf, login } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('wr')
const apps = fx.apps

function keyOf (prefix: string, cookie: string): string {
  return prefix + createHash('sha256').update(idOf(cookie)).digest('base64url')
}

/** Field/value pairs of a hash, read raw (bulk strings are ASCII here: base64url, digits, JSON of ASCII). */
async function hgetall (key: string): Promise<Array<[string, string]>> {
  const reply = await fx.redis.command('HGETALL', key)
  const bulk = [...reply.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < bulk.length; i += 2) out.push([bulk[i] as string, bulk[i + 1] as string])
  return out
}

const modes: Array<[string, Partial<HardenedSessionOptions>]> = [
  ['no encryption', {}],
  ["encryption fields '*'", { encryption: { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: '*' } }],
]

for (const [mode, extra] of modes) {
  describe(`redis writer (${mode})`, () => {
    const prefix = `w${modes.findIndex(([m]) => m === mode)}:`
    const events: SessionEvent[] = []
    let app: FastifyInstance
    before(async () => {
      app = await buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix, sessionInfo: { userAgent: true, ip: true }, onEvent: (e) => { events.push(e) }, ...extra })
      apps.push(app)
    })

    async function user (cookie: string): Promise<string | null> {
      return (await app.inject({ url: '/me', headers: { cookie } })).json().user
    }

    /** A write by another connection reaches this instance as an invalidation within the contract's 100 ms. */
    async function noSession (cookie: string): Promise<void> {
      await eventually(async () => (await user(cookie)) === null, 100, 'the edited record still counts as a session')
    }

    async function attack (edit: (attackerKey: string, victimKey: string) => Promise<void>): Promise<{ attacker: string, victim: string }> {
      const victim = await login(app, 'victim', { mfa: true, role: 'admin' })
      const attacker = await login(app, 'attacker', { role: 'user' })
      events.length = 0
      await edit(keyOf(prefix, attacker), keyOf(prefix, victim))
      return { attacker, victim }
    }

    test("writer: copying the victim's user field into the attacker's record makes it no session, with an event", async () => {
      const { attacker, victim } = await attack(async (a, v) => {
        const stolen = (await hgetall(v)).find(([f]) => f === 'm:u')?.[1] ?? ''
        await fx.redis.command('HSET', a, 'm:u', stolen)
      })
      await noSession(attacker)
      assert.equal(await user(victim), 'victim')
      assert.deepEqual(events.map((e) => [e.type, e.code]), [['invalid_record', 'FST_SESSION_RECORD_INVALID']])
    })

    test('writer: a plaintext user id written in the format of the store is refused too', async () => {
      const { attacker } = await attack(async (a) => { await fx.redis.command('HSET', a, 'm:u', 'p:victim') })
      await noSession(attacker)
    })

    test("writer: copying every field of the victim's record into the attacker's key gives no session and no victim data", async () => {
      const { attacker, victim } = await attack(async (a, v) => {
        for (const [field, value] of await hgetall(v)) await fx.redis.command('HSET', a, field, value)
      })
      await noSession(attacker)
      assert.deepEqual((await app.inject({ url: '/get/mfa', headers: { cookie: attacker } })).json(), { value: null })
      assert.equal(await user(victim), 'victim', 'the victim is unaffected')
    })

    test('writer: a login time moved into the future does not pass requireFreshLogin', async () => {
      const { attacker } = await attack(async (a) => { await fx.redis.command('HSET', a, 'm:t', String(Date.now() + 3_600_000)) })
      await eventually(async () => (await app.inject({ url: '/fresh', headers: { cookie: attacker } })).statusCode === 401, 100, 'a faked login time passes')
    })

    test('writer: PERSIST and far deadlines do not extend a session', async () => {
      const { attacker } = await attack(async (a) => {
        await fx.redis.command('PERSIST', a)
        await fx.redis.command('HSET', a, 'm:a', String(Date.now() + 10 * 365 * 86_400_000), 'm:i', String(Date.now() + 10 * 365 * 86_400_000))
      })
      await noSession(attacker)
    })

    test("writer: pointing the victim's index entry at the attacker's session gives the attacker nothing", async () => {
      const { attacker, victim } = await attack(async (a, v) => {
        const victimIndex = prefix + 'u:' + ((await hgetall(v)).find(([f]) => f === 'm:k')?.[1] ?? '')
        const victimRef = (await hgetall(v)).find(([f]) => f === 'm:r')?.[1] ?? ''
        const attackerHash = a.slice(prefix.length)
        await fx.redis.command('HSET', victimIndex, victimRef, `${attackerHash} ${Date.now() + 60_000} ${Date.now()}`)
      })
      assert.equal(await user(attacker), 'attacker', 'the attacker stays who they are')
      await noSession(victim) // a writer can end a session (delete, overwrite): that is all
    })

    test('writer: the store holds no raw session id, and with encryption no user id, user agent or IP in plaintext', async () => {
      const res = await app.inject({ method: 'POST', url: '/login', headers: { 'user-agent': 'SecretAgent/9' }, payload: { user: 'person@example.com', data: { note: 'hello' } } })
      const cookie = res.headers['set-cookie']?.toString().split(';')[0] ?? ''
      const keys = [...(await fx.redis.command('KEYS', `${prefix}*`)).matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
      let dump = keys.join('\n')
      for (const key of keys) {
        if (key.endsWith('epoch')) continue
        for (const [f, v] of await hgetall(key)) dump += `\n${f}=${v}`
      }
      assert.ok(!dump.includes(idOf(cookie)), 'no raw id')
      assert.ok(!dump.includes(cookie.split('=')[1] ?? ''), 'no cookie')
      assert.ok(!keys.some((k) => k.includes('person')), 'no user id in a key name')
      if (extra.encryption !== undefined) {
        assert.ok(!dump.includes('person@example.com'), 'no user id in plaintext')
        assert.ok(!dump.includes('hello'), 'no data in plaintext')
        assert.ok(!dump.includes('SecretAgent') && !dump.includes('127.0.0.1'), 'no user agent or IP in plaintext')
      } else {
        assert.ok(dump.includes('SecretAgent'), 'the check can see plaintext when it is there')
      }
    })
  })
}
