/**
 * Control state under ordinary Redis operations and a Redis writer, on real redis-servers: the
 * naming key ring lost (DEL, a restart without persistence) while instances run and new ones
 * start; revocations that must survive a master's death (`durability: 'replica'`, WAIT); a
 * password login still running when `revokeUser` resolves; seals that bind the key prefix and
 * the encrypted fields. The epoch attacks are in attack-lifecycle.test.ts, cluster failover in
 * cluster-failover.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { generateEncryptionKey, hashPassword, type HardenedSessionOptions, type SessionEvent } from '../lib/index.ts'
import { POLL_UNWATCHED_MS } from '../lib/keyring.ts'
import { buildApp, eventually, gone, recordKey, login, SECRET, works } from './helpers/app.ts'
import { rawCommand, startRedis, type RedisServer } from './helpers/redis-server.ts'
import { useRedis } from './helpers/redis-fixture.ts'
import { cli } from './helpers/cli.ts'

const fx = useRedis('ctl')
const apps = fx.apps
let prefixes = 0

const dirs: string[] = []
after(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }) })

/** A master or replica for the durability tests: its replication files in a temporary directory, never the working directory. */
function replicating (...args: string[]): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'fhs-repl-'))
  dirs.push(dir)
  return startRedis(['--dir', dir, '--repl-diskless-sync-delay', '0', ...args])
}

function freshPrefix (): string {
  return `ctl${++prefixes}${Math.random().toString(36).slice(2, 6)}:`
}

async function app (options: Partial<HardenedSessionOptions>, server?: RedisServer, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const a = await buildApp({ redis: { url: (server ?? fx.redis).url }, ...options }, {}, routes)
  apps.push(a)
  return a
}

/** The fields of a hash, from a raw RESP reply. */
async function hgetall (port: number, key: string): Promise<Map<string, string>> {
  const values = [...(await rawCommand(port, ['HGETALL', key])).matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((m) => m[1] as string)
  const out = new Map<string, string>()
  for (let i = 0; i + 1 < values.length; i += 2) out.set(values[i] as string, values[i + 1] as string)
  return out
}

/** Two instances agree on one naming key: each accepts the other's session, revokeUser on either ends both, the CLI sees both. */
async function oneKey (a: FastifyInstance, b: FastifyInstance, prefix: string, secrets = SECRET): Promise<void> {
  const victim = `victim-${prefix}`
  const onA = await login(a, victim)
  const onB = await login(b, victim)
  for (const [instance, cookie] of [[a, onB], [b, onA]] as const) {
    assert.equal(await works(instance, cookie), true, 'a session issued by one instance is accepted by the other')
  }
  const listed = await cli(['list-sessions', victim, '--json'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: prefix, SESSION_SECRETS: secrets })
  assert.equal(listed.code, 0, listed.stderr)
  assert.equal(JSON.parse(listed.stdout).length, 2, 'the CLI lists both sessions')
  assert.equal(await b.session.revokeUser(victim), 2)
  for (const instance of [a, b]) for (const cookie of [onA, onB]) await gone(instance, cookie, 'a session of the revoked user')
}

describe('naming key ring', () => {
  // Fixed defect: after DEL <prefix>keyring, a new instance minted a second naming key: each instance rejected the other's sessions and revokeUser on one missed the other's.
  test('ring: deleted while instance A runs, then B starts: A restores it, both use one key, revokeUser on B ends A\'s session too', async () => {
    const prefix = freshPrefix()
    const a = await app({ keyPrefix: prefix })
    await login(a, 'someone') // sessions exist: the ring must not be made afresh
    const before = await hgetall(fx.redis.port, prefix + 'keyring')
    await fx.redis.command('DEL', prefix + 'keyring')
    await eventually(async () => (await hgetall(fx.redis.port, prefix + 'keyring')).size > 0, 2000, 'A restores the ring')
    const after = await hgetall(fx.redis.port, prefix + 'keyring')
    assert.deepEqual([...after.keys()], [...before.keys()], 'restored under the same secret')
    const b = await app({ keyPrefix: prefix })
    await oneKey(a, b, prefix)
  })

  // Fixed defect: after a Redis restart without persistence, A kept its key while a new instance B made another one.
  test('ring: Redis restarted without persistence while A runs; B starts: one key, sessions accepted across instances, revokeUser on either ends both, maxSessionsPerUser counts both', async () => {
    const server = await startRedis()
    try {
      const prefix = freshPrefix()
      const a = await app({ keyPrefix: prefix, maxSessionsPerUser: 1 }, server)
      await login(a, 'before-restart')
      await server.kill()
      await server.restart() // empty: no persistence
      const b = await app({ keyPrefix: prefix, maxSessionsPerUser: 1 }, server)
      // A reconnects by itself, and checks the ring then: it restores its key or adopts B's.
      await eventually(async () => {
        const probe = await login(b, `probe-${Math.random()}`).catch(() => undefined)
        return probe !== undefined && await works(a, probe)
      }, 5000, 'A accepts sessions B issues')
      const victim = 'restart-victim'
      const onA = await login(a, victim)
      const onB = await login(b, victim)
      assert.equal(await works(a, onA), false, 'maxSessionsPerUser 1: the login on B evicted the session from A (one index for the user)')
      assert.equal(await works(b, onB), true)
      assert.equal(await works(a, onB), true)
      assert.equal(await a.session.revokeUser(victim), 1)
      await gone(a, onB)
      await gone(b, onB)
    } finally {
      await server.stop()
    }
  })

  test('ring: an entry a writer altered is repaired by a running instance; an instance started afterwards uses the same key', async () => {
    const prefix = freshPrefix()
    const a = await app({ keyPrefix: prefix })
    const [field, wrapped] = [...(await hgetall(fx.redis.port, prefix + 'keyring'))][0] as [string, string]
    await fx.redis.command('HSET', prefix + 'keyring', field, 'A'.repeat(80))
    await eventually(async () => (await hgetall(fx.redis.port, prefix + 'keyring')).get(field) !== 'A'.repeat(80), 2000, 'A repairs its entry')
    assert.notEqual((await hgetall(fx.redis.port, prefix + 'keyring')).get(field), wrapped, 'a fresh wrapping (new nonce) of the same key')
    const b = await app({ keyPrefix: prefix })
    await oneKey(a, b, prefix)
  })

  test('ring: lost while no instance runs and sessions exist: the next start and the CLI fail with FST_SESSION_KEYRING_MISSING, and no second key is made', async () => {
    const prefix = freshPrefix()
    const a = await app({ keyPrefix: prefix })
    await login(a, 'left-behind')
    await a.close()
    await fx.redis.command('DEL', prefix + 'keyring')
    await assert.rejects(buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix, connectTimeout: 1000 }), { code: 'FST_SESSION_KEYRING_MISSING' })
    assert.equal((await hgetall(fx.redis.port, prefix + 'keyring')).size, 0, 'no key was made')
    const result = await cli(['revoke-user', 'left-behind'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: prefix, SESSION_SECRETS: SECRET })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /FST_SESSION_KEYRING_MISSING/)
    assert.doesNotMatch(result.stderr, /delete/i, 'never advises deleting the ring')
  })

  test('ring: started with secrets that did not make it: FST_SESSION_KEYRING_SECRETS (never a second key); the CLI says the same, not "altered", and a mistyped prefix is "nothing there"', async () => {
    const prefix = freshPrefix()
    await app({ keyPrefix: prefix })
    const other = 'another-secret-0123456789-abcdefghijk'
    await assert.rejects(buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix, secrets: [other] }), { code: 'FST_SESSION_KEYRING_SECRETS' })
    assert.equal((await hgetall(fx.redis.port, prefix + 'keyring')).size, 1)
    const result = await cli(['revoke-user', 'x'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: prefix, SESSION_SECRETS: other })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /FST_SESSION_KEYRING_SECRETS/)
    // Nothing at all under a mistyped prefix: said as such (exit 3), not blamed on the ring.
    const wrongPrefix = await cli(['revoke-user', 'x'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: 'nothing-here:', SESSION_SECRETS: SECRET })
    assert.equal(wrongPrefix.code, 3)
    assert.match(wrongPrefix.stdout, /SESSION_KEY_PREFIX/)
    assert.doesNotMatch(wrongPrefix.stderr + wrongPrefix.stdout, /altered|delete/i)
  })
})

describe('naming key reset', () => {
  test('ring: reset-keyring (a leaked secret could unwrap the old key) ends every session; a running instance adopts the new key, and a new one started with only the new secret shares sessions with it', async () => {
    const prefix = freshPrefix()
    const leaked = 'leaked-secret-0123456789-abcdefghijk'
    const next = 'next-secret-0123456789-abcdefghijklm'
    // The runbook: the new secret wraps the key ([next, leaked]), every instance runs [next], then the reset.
    await (await app({ keyPrefix: prefix, secrets: [next, leaked] })).close()
    const a = await app({ keyPrefix: prefix, secrets: [next] })
    assert.equal((await hgetall(fx.redis.port, prefix + 'keyring')).size, 2, 'before: wrapped under both secrets')
    const user = await login(a, 'reset-user')
    const anonymous = (await a.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })).headers['set-cookie']?.toString().split(';')[0] as string
    const result = await cli(['reset-keyring', '--yes'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: prefix, SESSION_SECRETS: next })
    assert.equal(result.code, 0, result.stderr)
    await eventually(async () => !(await works(a, user)), 1000, 'the logged-in session ended on the running instance')
    assert.equal((await a.inject({ url: '/me', headers: { cookie: anonymous } })).json().theme, null, 'the anonymous session ended too')
    assert.equal((await hgetall(fx.redis.port, prefix + 'keyring')).size, 1, 'the new ring is wrapped under the new secret only: the leaked one opens nothing')
    const b = await app({ keyPrefix: prefix, secrets: [next] })
    await oneKey(a, b, prefix, next)
  })

  // Fixed defect: a running instance adopted any ring its secrets opened, so a ring saved before reset-keyring and put back made it give up the new key (the reset undone).
  test('ring: a ring saved before reset-keyring and put back is not adopted again by an instance that saw the reset; sessions from before the reset stay dead', async () => {
    const prefix = freshPrefix()
    const a = await app({ keyPrefix: prefix })
    const before = await login(a, 'pre-reset')
    const saved = [...(await hgetall(fx.redis.port, prefix + 'keyring'))].flat()
    const savedEpoch = /\$\d+\r\n([^\r]*)\r\n/.exec(await fx.redis.command('GET', prefix + 'epoch'))?.[1] as string
    const reset = await cli(['reset-keyring', '--yes'], { REDIS_URL: fx.redis.url, SESSION_KEY_PREFIX: prefix, SESSION_SECRETS: SECRET })
    assert.equal(reset.code, 0, reset.stderr)
    await eventually(async () => !(await works(a, before)), 1000, 'the pre-reset session ended')
    const after = await login(a, 'post-reset')
    const current = await hgetall(fx.redis.port, prefix + 'keyring')
    // The writer puts back its saved ring and epoch.
    await fx.redis.command('DEL', prefix + 'keyring')
    await fx.redis.command('HSET', prefix + 'keyring', ...saved)
    await fx.redis.command('SET', prefix + 'epoch', savedEpoch)
    await eventually(async () => JSON.stringify([...(await hgetall(fx.redis.port, prefix + 'keyring'))]) !== JSON.stringify([...new Map([saved.slice(0, 2) as [string, string]])]), 2000, 'A restores the current ring')
    assert.notDeepEqual(await hgetall(fx.redis.port, prefix + 'keyring'), new Map([saved.slice(0, 2) as [string, string]]))
    assert.equal((await hgetall(fx.redis.port, prefix + 'keyring')).size, current.size)
    assert.equal(await works(a, before), false, 'the pre-reset session is not revived')
    assert.equal(await works(a, after), true, 'the post-reset session lives on')
  })
})

describe('naming key ring without client-side caching', () => {
  test('ring: on a client without client-side caching (no invalidations) a deleted ring is still restored by the running instance within the poll interval', async () => {
    const prefix = freshPrefix()
    const client = createClient({ url: fx.redis.url })
    client.on('error', () => {})
    await client.connect()
    try {
      const a = await app({ keyPrefix: prefix, redis: client as never })
      await login(a, 'polled')
      await fx.redis.command('DEL', prefix + 'keyring')
      await eventually(async () => (await hgetall(fx.redis.port, prefix + 'keyring')).size > 0, POLL_UNWATCHED_MS + 2000, 'the ring is restored')
      const b = await app({ keyPrefix: prefix })
      await oneKey(a, b, prefix)
    } finally {
      await client.close()
    }
  })
})

describe('durability: a resolved revocation survives the death of its master', () => {
  let master: RedisServer
  let replica: RedisServer
  before(async () => {
    master = await replicating()
    replica = await replicating('--replicaof', '127.0.0.1', String(master.port))
    await eventually(async () => (await replica.command('INFO', 'replication')).includes('master_link_status:up'), 10_000, 'the replica is in sync')
    await eventually(async () => /slave0:.*state=online/.test(await master.command('INFO', 'replication')), 10_000, 'the master lists the replica online')
  })
  after(async () => {
    try { process.kill(replica.pid, 'SIGCONT') } catch {}
    await replica.stop()
    await master.stop()
  })

  // Fixed defect: revocations resolved once the master had them; a master that died before replicating could be replaced by a replica that never saw them.
  test('durability: with the replica stopped, revokeUser and logout reject with 503 (they may not hold); once it answers they resolve, and survive the master\'s death', async () => {
    const prefix = freshPrefix()
    const a = await app({ keyPrefix: prefix, storeTimeout: 1000 }, master)
    const stopped = await login(a, 'u-stopped')
    const loggedIn = await login(a, 'u-logout')
    process.kill(replica.pid, 'SIGSTOP')
    try {
      await assert.rejects(a.session.revokeUser('u-stopped'), { code: 'FST_SESSION_STORE_UNAVAILABLE' })
      const logout = await a.inject({ method: 'POST', url: '/logout', headers: { cookie: loggedIn } })
      assert.equal(logout.statusCode, 503)
      assert.equal(logout.json().code, 'FST_SESSION_STORE_UNAVAILABLE')
    } finally {
      process.kill(replica.pid, 'SIGCONT')
    }
    // The replica catches up with what the master wrote meanwhile.
    await eventually(async () => {
      const info = await master.command('INFO', 'replication')
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1]
      return offset !== undefined && new RegExp(`slave0:.*offset=${offset},`).test(info)
    }, 10_000, 'the replica caught up')
    const kept = await login(a, 'u-kept')
    const revoked = await login(a, 'u-revoked')
    const started = performance.now()
    assert.equal(await a.session.revokeUser('u-revoked'), 1)
    const ms = performance.now() - started
    assert.ok(ms < 1000, `revokeUser resolved in ${ms.toFixed(1)} ms with a live replica (within storeTimeout)`)
    // The master dies the moment the revocation resolved; the replica takes over.
    await master.kill()
    await replica.command('REPLICAOF', 'NO', 'ONE')
    const b = await app({ keyPrefix: prefix }, replica)
    assert.equal(await works(b, revoked), false, 'the revocation is on the promoted replica')
    assert.equal(await works(b, kept), true, 'sessions not revoked live on')
    assert.equal(await works(b, stopped), false, 'the revocation that rejected was still written, and replicated once the replica woke')
    await master.restart()
  })

  test('durability: \'primary\' resolves without waiting for a replica (the documented opt-out)', async () => {
    const server = await replicating()
    const follower = await replicating('--replicaof', '127.0.0.1', String(server.port))
    try {
      await eventually(async () => (await follower.command('INFO', 'replication')).includes('master_link_status:up'), 10_000, 'in sync')
      await eventually(async () => /slave0:.*state=online/.test(await server.command('INFO', 'replication')), 10_000, 'the master lists the replica online')
      const a = await app({ keyPrefix: freshPrefix(), storeTimeout: 500, durability: 'primary' }, server)
      await login(a, 'u-primary')
      process.kill(follower.pid, 'SIGSTOP')
      try {
        assert.equal(await a.session.revokeUser('u-primary'), 1)
      } finally {
        process.kill(follower.pid, 'SIGCONT')
      }
    } finally {
      await follower.stop()
      await server.stop()
    }
  })
})

describe('credential change', () => {
  // Fixed defect: a loginWithPassword already verifying when the app changed the password and called revokeUser created a session that outlived the revoke.
  test('credentials: a loginWithPassword still running when revokeUser resolves yields ok: false and no live session', async () => {
    const prefix = freshPrefix()
    // A hash costly enough that the verify is still running when revokeUser resolves.
    const slow = { memoryCost: 65536, timeCost: 6, parallelism: 1 }
    const hash = await hashPassword('correct horse battery', slow)
    const events: SessionEvent[] = []
    const a = await app({ keyPrefix: prefix, password: slow, onEvent: (e) => { events.push(e) } }, undefined, (server) => {
      server.post('/pw-login', async (req) => await req.session.loginWithPassword({ account: 'carol', hash, password: 'correct horse battery' }))
    })
    const generationReads = async (): Promise<number> => Number(/cmdstat_hget:calls=(\d+)/.exec(await fx.redis.command('INFO', 'commandstats'))?.[1] ?? 0)
    const before = await generationReads()
    const attempt = a.inject({ method: 'POST', url: '/pw-login', headers: { 'content-type': 'application/json' }, payload: '{}' })
    await eventually(async () => await generationReads() > before, 2000, 'the login read the user\'s revocation generation')
    await a.session.revokeUser('carol') // the password changed: every session of the user ends
    const res = await attempt
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { ok: false })
    assert.equal(res.headers['set-cookie'], undefined, 'no session cookie')
    assert.deepEqual(await a.session.listUserSessions('carol'), [], 'no live session')
    assert.equal(events.at(-1)?.type, 'login_failed')
    // Afterwards (the app would check the new hash) a login works again.
    const again = await a.inject({ method: 'POST', url: '/pw-login', headers: { 'content-type': 'application/json' }, payload: '{}' })
    assert.deepEqual(again.json(), { ok: true })
  })
})

describe('seal completeness', () => {
  // Fixed defect: the seal did not cover keyPrefix: a record (and the epoch) copied to another app with the same secrets and another prefix was served there.
  test('seal: a record copied under another key prefix, epoch and all, is no session there', async () => {
    const [p1, p2] = [freshPrefix(), freshPrefix()]
    const a = await app({ keyPrefix: p1 })
    const b = await app({ keyPrefix: p2 })
    const cookie = (await a.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })).headers['set-cookie']?.toString().split(';')[0] as string
    assert.equal((await a.inject({ url: '/me', headers: { cookie } })).json().theme, 'dark')
    const fields = [...(await hgetall(fx.redis.port, recordKey(p1, cookie)))].flat()
    await fx.redis.command('HSET', recordKey(p2, cookie), ...fields)
    const epoch = /\$\d+\r\n([^\r]*)\r\n/.exec(await fx.redis.command('GET', p1 + 'epoch'))?.[1] as string
    await fx.redis.command('SET', p2 + 'epoch', epoch)
    assert.equal((await b.inject({ url: '/me', headers: { cookie } })).json().theme, null, 'the copy is no session under the other prefix')
  })

  // Fixed defect: a writer could delete an encrypted data field undetected (a pending second factor removed: 401 → 200).
  test('seal: deleting an encrypted data field (at login or set later) makes the session no session, with an event; deletions by the app still work', async () => {
    const prefix = freshPrefix()
    const events: SessionEvent[] = []
    const a = await app({ keyPrefix: prefix, encryption: { keys: [{ id: 'k1', key: generateEncryptionKey() }], fields: ['mfaPending', 'step'] }, onEvent: (e) => { events.push(e) } }, undefined, (server) => {
      server.get('/account', async (req, reply) => {
        if (req.session.userId === undefined || req.session.get('mfaPending') === true) return await reply.code(401).send({ ok: false })
        return { ok: true }
      })
    })
    const cookie = await login(a, 'mfa-user', { mfaPending: true })
    assert.equal((await a.inject({ url: '/account', headers: { cookie } })).statusCode, 401)
    await fx.redis.command('HDEL', recordKey(prefix, cookie), 'd:mfaPending')
    assert.equal((await a.inject({ url: '/account', headers: { cookie } })).statusCode, 401, 'still refused')
    // Seen once the writer's change reaches the instance (its invalidation: within 100 ms).
    await eventually(async () => !(await works(a, cookie)), 100, 'the session is no session')
    assert.ok(events.some((e) => e.type === 'invalid_record'))

    const later = await login(a, 'mfa-user-2')
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: later }, payload: { step: 'verify' } })
    await fx.redis.command('HDEL', recordKey(prefix, later), 'd:step')
    await eventually(async () => !(await works(a, later)), 100, 'a field set after login is covered from the write that set it')

    const mine = await login(a, 'mfa-user-3', { mfaPending: true })
    await a.inject({ method: 'POST', url: '/delete/mfaPending', headers: { cookie: mine } })
    assert.equal((await a.inject({ url: '/account', headers: { cookie: mine } })).statusCode, 200, 'an app deletion leaves a tombstone, not a broken seal')
    assert.deepEqual((await a.inject({ url: '/get/mfaPending', headers: { cookie: mine } })).json(), { value: null })
  })
})
