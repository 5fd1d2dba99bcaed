/**
 * Per-field encryption at rest through the plugin, against a real Redis: what a copy of Redis
 * reveals, what moving ciphertexts around does, and key rotation across restarts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { generateEncryptionKey, type EncryptionOptions, type SessionEvent } from '../lib/index.ts'
import { buildApp, eventually, login, sessionCookie } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const K1 = { id: 'k1', key: generateEncryptionKey() }
const K2 = { id: 'k2', key: generateEncryptionKey() }
const MARKER = 'MARKER-PLAINTEXT-4f1c'

const fx = useRedis('enc')
const apps = fx.apps

async function make (encryption: EncryptionOptions, keyPrefix: string, onEvent?: (e: SessionEvent) => void): Promise<FastifyInstance> {
  const app = await buildApp({ redis: { url: fx.redis.url }, encryption, keyPrefix, onEvent })
  apps.push(app)
  return app
}

function keyOf (prefix: string, cookie: string): string {
  const id = cookie.split('=')[1]?.split('.')[0] ?? ''
  return prefix + createHash('sha256').update(id).digest('base64url')
}

/** Bulk strings of a raw RESP reply. */
function strings (reply: string): string[] {
  return [...reply.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
}

async function hget (key: string, field: string): Promise<string> {
  return strings(await fx.redis.command('HGET', key, field))[0] ?? ''
}

/** Every key and every value of every type the plugin wrote under `prefix`. */
async function dump (prefix: string): Promise<string> {
  let out = ''
  for (const key of strings(await fx.redis.command('KEYS', `${prefix}*`))) {
    const type = (await fx.redis.command('TYPE', key)).trim().slice(1)
    const value = type === 'hash'
      ? await fx.redis.command('HGETALL', key)
      : type === 'zset'
        ? await fx.redis.command('ZRANGE', key, '0', '-1', 'WITHSCORES')
        : type === 'string' ? await fx.redis.command('GET', key) : `unexpected type ${type}`
    out += `${key}\n${value}\n`
  }
  return out
}

describe('encryption: at rest in Redis', () => {
  test('at rest: a marker in an encrypted field never appears in any Redis key or value, nor does the raw id', async () => {
    const app = await make({ keys: [K1], fields: ['secret', 'profile'] }, 'enc1:')
    const cookie = await login(app, 'u-enc', { secret: MARKER, profile: { note: MARKER }, plain: 'visible' })
    await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { secret: `${MARKER}-2` } })
    const text = await dump('enc1:')
    assert.ok(text.includes('visible'), 'the dump does see plain fields')
    assert.ok(!text.includes(MARKER), 'no encrypted plaintext in Redis')
    const id = cookie.split('=')[1]?.split('.')[0] ?? ''
    assert.ok(!text.includes(id), 'no raw session id in Redis')
    assert.deepEqual((await app.inject({ url: '/get/secret', headers: { cookie } })).json(), { value: `${MARKER}-2` })
    assert.deepEqual((await app.inject({ url: '/get/profile', headers: { cookie } })).json(), { value: { note: MARKER } })
  })

  test('at rest: fields "*" encrypts every field, and data survives login (re-encrypted for the new id)', async () => {
    const app = await make({ keys: [K1], fields: '*' }, 'enc2:')
    const pre = sessionCookie(await app.inject({ method: 'POST', url: '/set', payload: { cart: [MARKER] } }))
    assert.ok(pre)
    const res = await app.inject({ method: 'POST', url: '/login', headers: { cookie: pre } })
    const cookie = sessionCookie(res) ?? ''
    assert.ok(!(await dump('enc2:')).includes(MARKER))
    assert.deepEqual((await app.inject({ url: '/get/cart', headers: { cookie } })).json(), { value: [MARKER] })
  })

  test('tamper: a ciphertext swapped between two sessions, or two fields, reads as absent with an event, not a 500', async () => {
    const events: SessionEvent[] = []
    const app = await make({ keys: [K1], fields: '*' }, 'enc3:', (e) => { events.push(e) })
    const a = await login(app, 'u-a', { x: 'from-a', y: 'a-y' })
    const b = await login(app, 'u-b', { x: 'from-b' })
    const keyA = keyOf('enc3:', a)
    const keyB = keyOf('enc3:', b)
    // Redis pushes the invalidation of A's key asynchronously: poll (deadline) for its effect.
    const readUntilRejected = async (field: string, count: number): Promise<void> => {
      await eventually(async () => {
        const res = await app.inject({ url: `/get/${field}`, headers: { cookie: a } })
        assert.equal(res.statusCode, 200, 'never a 500')
        return res.json().value === null && events.filter((e) => e.type === 'decrypt_error').length === count
      }, 1000, `${field} rejected`)
    }
    // Session swap: B's x into A.
    await fx.redis.command('HSET', keyA, 'd:x', await hget(keyB, 'd:x'))
    await readUntilRejected('x', 1)
    // Field swap within A: y's ciphertext into z.
    await fx.redis.command('HSET', keyA, 'd:z', await hget(keyA, 'd:y'))
    await readUntilRejected('z', 2)
    assert.deepEqual((await app.inject({ url: '/get/y', headers: { cookie: a } })).json(), { value: 'a-y' }, 'the session goes on')
    // Planted plaintext where a ciphertext is required is rejected too.
    await fx.redis.command('HSET', keyA, 'd:w', '"planted"')
    await readUntilRejected('w', 3)
  })

  test('tamper: one changed character of a stored ciphertext makes that field unreadable', async () => {
    const app = await make({ keys: [K1], fields: '*' }, 'enc4:')
    const cookie = await login(app, 'u-t', { x: 'value' })
    const key = keyOf('enc4:', cookie)
    const stored = await hget(key, 'd:x')
    const i = stored.length - 5
    await fx.redis.command('HSET', key, 'd:x', stored.slice(0, i) + (stored[i] === 'A' ? 'B' : 'A') + stored.slice(i + 1))
    await eventually(async () => (await app.inject({ url: '/get/x', headers: { cookie } })).json().value === null, 1000, 'tampered field rejected')
  })
})

describe('encryption: key rotation', () => {
  test('rotation: written under K1; [K2, K1] reads it and a write re-encrypts under K2; [K2] alone still reads', async () => {
    const v1 = await make({ keys: [K1], fields: ['secret'] }, 'rot:')
    const cookie = await login(v1, 'u-rot', { secret: 'kept', other: 1 })
    const key = keyOf('rot:', cookie)
    assert.match(await hget(key, 'd:secret'), /^~1\.k1\./)

    const v2 = await make({ keys: [K2, K1], fields: ['secret'] }, 'rot:')
    assert.deepEqual((await v2.inject({ url: '/get/secret', headers: { cookie } })).json(), { value: 'kept' })
    // Any write of the session (here: another field) re-encrypts the stale field under K2.
    await v2.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { other: 2 } })
    assert.match(await hget(key, 'd:secret'), /^~1\.k2\./)

    assert.match(await hget(key, 'm:u'), /^~1\.k2\./, 'the user id was re-encrypted under K2 with the first request')

    const v3 = await make({ keys: [K2], fields: ['secret'] }, 'rot:')
    assert.deepEqual((await v3.inject({ url: '/get/secret', headers: { cookie } })).json(), { value: 'kept' })
    assert.equal((await v3.inject({ url: '/private', headers: { cookie } })).statusCode, 200)
  })

  test('rotation: a field under a key no longer listed is unreadable, the rest of the session works', async () => {
    const v1 = await make({ keys: [K1], fields: ['secret'] }, 'rot2:')
    const cookie = sessionCookie(await v1.inject({ method: 'POST', url: '/set', payload: { secret: 'lost', plain: 'ok' } }))
    assert.ok(cookie)
    const v2 = await make({ keys: [K2], fields: ['secret'] }, 'rot2:')
    assert.deepEqual((await v2.inject({ url: '/get/secret', headers: { cookie } })).json(), { value: null })
    assert.deepEqual((await v2.inject({ url: '/get/plain', headers: { cookie } })).json(), { value: 'ok' })
  })

  test('rotation: a login whose user id is encrypted under a key no longer listed is no session (fails closed)', async () => {
    const events: SessionEvent[] = []
    const v1 = await make({ keys: [K1], fields: ['secret'] }, 'rot3:')
    const cookie = await login(v1, 'u-rot3', { plain: 'ok' })
    assert.doesNotMatch(await hget(keyOf('rot3:', cookie), 'm:u'), /u-rot3/, 'the user id is stored encrypted')
    const v2 = await make({ keys: [K2], fields: ['secret'] }, 'rot3:', (e) => { events.push(e) })
    assert.equal((await v2.inject({ url: '/private', headers: { cookie } })).statusCode, 401)
    assert.deepEqual(events.map((e) => [e.type, e.code]), [['invalid_record', 'FST_SESSION_RECORD_INVALID']])
  })

  test('register: encryption keys of the wrong size fail register without echoing the key', async () => {
    const bad = Buffer.alloc(31, 7).toString('base64')
    await assert.rejects(make({ keys: [{ id: 'k', key: bad }], fields: '*' }, 'bad:'), (err: { code?: string, message: string, stack?: string }) => {
      assert.equal(err.code, 'FST_SESSION_ENCRYPTION_OPTION')
      assert.ok(!err.message.includes(bad) && !(err.stack ?? '').includes(bad))
      return true
    })
  })
})
