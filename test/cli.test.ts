/**
 * The operations CLI as users run it: the built `dist/cli/main.js` (built here when lib/ is newer),
 * in a child process, against real redis-servers (plain with an ACL user, and mTLS), next to a
 * running app instance that must see the effect. Output is checked for what it must never
 * contain: session ids, secrets, passwords, the Redis URL.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import type { FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import { buildApp, eventually, gone, login, refOf, SECRET, works } from './helpers/app.ts'
import { ensureBuilt, root } from './helpers/build.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'
import { startTlsRedis, type TlsRedisServer } from './helpers/tls.ts'

const CLI = `${root}dist/cli/main.js`
const PASSWORD = 'cli-redis-password-91c2e7'
const OLD_SECRET = 'an-older-secret-0123456789-abcdefghijklmnop'

interface Result { code: number, stdout: string, stderr: string, ms: number }

function cli (args: string[], env: Record<string, string>): Promise<Result> {
  const start = Date.now()
  return new Promise((resolve) => {
    // Only what the test gives: no SESSION_SECRET or REDIS_URL leaking in from the environment.
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr, ms: Date.now() - start })
    })
  })
}

let redis: RedisServer
let url: string
const apps: FastifyInstance[] = []
before(async () => {
  ensureBuilt()
  redis = await startRedis()
  await redis.command('ACL', 'SETUSER', 'ops', 'on', `>${PASSWORD}`, '~*', '&*', '+@all')
  url = `redis://ops:${PASSWORD}@127.0.0.1:${redis.port}`
})
after(async () => {
  await Promise.all(apps.map((a) => a.close()))
  await redis?.stop()
})

async function app (keyPrefix: string, secrets = [SECRET]): Promise<FastifyInstance> {
  const made = await buildApp({ redis: { url: redis.url }, keyPrefix, secrets })
  apps.push(made)
  return made
}

/** Everything a CLI run must never print. */
function assertClean (result: Result, secrets: string[], cookies: string[]): void {
  const all = result.stdout + result.stderr
  for (const s of [PASSWORD, url, ...secrets]) assert.ok(!all.includes(s), 'no password, URL or secret in the output')
  for (const c of cookies) {
    const id = c.split('=')[1]?.split('.')[0] ?? ''
    assert.ok(id.length > 20 && !all.includes(id), 'no session id in the output')
  }
}

describe('cli: store commands', () => {
  test('cli: list-sessions shows each live session of the user by ref and dates, nothing else', async () => {
    const a = await app('cli1:')
    const cookies = [await login(a, 'alice@example.com'), await login(a, 'alice@example.com'), await login(a, 'bob')]
    const refs = await Promise.all(cookies.slice(0, 2).map(async (cookie) => (await a.inject({ url: '/ref', headers: { cookie } })).json().ref as string))
    const env = { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli1:', SESSION_SECRET: SECRET }
    const text = await cli(['list-sessions', 'alice@example.com'], env)
    assert.equal(text.code, 0, text.stderr)
    const lines = text.stdout.trim().split('\n')
    assert.equal(lines[0], 'ref\tcreated\tlast seen\texpires\tauthenticated\tip\tuser agent')
    assert.deepEqual(lines.slice(1).map((l) => l.split('\t')[0]).sort(), [...refs].sort())
    assert.ok(!text.stdout.includes('alice'), 'the user id is not echoed')
    assertClean(text, [SECRET], cookies)
    const json = await cli(['list-sessions', 'alice@example.com', '--json'], env)
    assert.deepEqual((JSON.parse(json.stdout) as Array<{ ref: string }>).map((s) => s.ref).sort(), [...refs].sort())
    assert.deepEqual(Object.keys((JSON.parse(json.stdout) as object[])[0] as object).sort(), ['authenticatedAt', 'createdAt', 'expiresAt', 'lastSeenAt', 'ref'])
  })

  test('cli: revoke-user ends every session of the user on a running instance; others keep working', async () => {
    const a = await app('cli2:')
    const alice = [await login(a, 'alice'), await login(a, 'alice')]
    const bob = await login(a, 'bob')
    for (const cookie of [...alice, bob]) assert.equal((await a.inject({ url: '/private', headers: { cookie } })).statusCode, 200) // cached
    const result = await cli(['revoke-user', 'alice'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli2:', SESSION_SECRET: SECRET })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'revoked 2 live sessions of that user\n')
    for (const cookie of alice) await eventually(async () => (await a.inject({ url: '/private', headers: { cookie } })).statusCode === 401, 100, 'revoked on the instance')
    assert.equal((await a.inject({ url: '/private', headers: { cookie: bob } })).statusCode, 200)
    assertClean(result, [SECRET], [...alice, bob])
  })

  test('cli: SESSION_SECRETS (comma-separated, newest first) reaches sessions filed under an older secret', async () => {
    const a = await app('cli3:', [OLD_SECRET])
    await login(a, 'carol')
    const env = { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli3:', SESSION_SECRETS: `${SECRET}, ${OLD_SECRET}` }
    assert.equal((await cli(['list-sessions', 'carol'], env)).stdout.trim().split('\n').length, 2, 'header + one session')
    const newestOnly = await cli(['list-sessions', 'carol'], { ...env, SESSION_SECRETS: SECRET })
    assert.equal(newestOnly.code, 1, 'the newest secret alone cannot verify a session sealed under the older one')
    assert.equal(newestOnly.stdout, '')
    assert.match(newestOnly.stderr, /^warning: 1 session\(s\) indexed under that user id could not be verified with these secrets: give every secret of the application/)
    const never = await cli(['list-sessions', 'carol'], { ...env, SESSION_SECRETS: 'a-secret-this-deployment-never-had-0123456789' })
    assert.notEqual(never.code, 0)
    assert.match(never.stderr, /FST_SESSION_KEYRING_INVALID|naming key ring/, 'secrets that never opened the ring cannot name any index')
    const revoked = await cli(['revoke-user', 'carol'], env)
    assert.equal(revoked.stdout, 'revoked 1 live session of that user\n')
    assertClean(revoked, [SECRET, OLD_SECRET], [])
  })

  test('cli: revoke-all ends every session (anonymous ones too) on a running instance; new logins work', async () => {
    const a = await app('cli4:')
    const user = await login(a, 'dave')
    const anon = String((await a.inject({ method: 'POST', url: '/set', payload: { theme: 'dark' } })).headers['set-cookie']).split(';')[0] as string
    const result = await cli(['revoke-all'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli4:', SESSION_SECRETS: SECRET })
    assert.equal(result.code, 0, result.stderr)
    await eventually(async () => (await a.inject({ url: '/private', headers: { cookie: user } })).statusCode === 401, 100, 'user session revoked')
    assert.equal((await a.inject({ url: '/me', headers: { cookie: anon } })).json().theme, null)
    const fresh = await login(a, 'dave')
    assert.equal((await a.inject({ url: '/private', headers: { cookie: fresh } })).statusCode, 200)
  })

  test('cli: stats counts session records and user indexes, tracked keys against the table limit, memory per session', async () => {
    const a = await app('cli5:')
    await login(a, 'erin')
    await login(a, 'erin')
    await login(a, 'frank')
    const result = await cli(['stats', '--json'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli5:' })
    assert.equal(result.code, 0, result.stderr)
    const stats = JSON.parse(result.stdout) as Record<string, unknown>
    assert.equal(stats.keyPrefix, 'cli5:')
    assert.equal(stats.sessionRecords, 3)
    assert.equal(stats.userIndexes, 2)
    assert.equal(stats.trackingTableMaxKeys, Number(/\d+\r\n$/.exec(await redis.command('CONFIG', 'GET', 'tracking-table-max-keys'))?.[0]))
    assert.ok(typeof stats.trackedKeys === 'number' && stats.trackedKeys >= 0)
    assert.ok(typeof stats.trackingPrefixes === 'number' && stats.trackingPrefixes >= 1, 'the running app tracks its prefix in broadcast mode')
    assert.ok(typeof stats.bytesPerSession === 'number' && stats.bytesPerSession > 100 && stats.bytesPerSession < 10_000, String(stats.bytesPerSession))
    const text = await cli(['stats'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli5:' })
    assert.match(text.stdout, /^session records: +3 /m)
    assert.match(text.stdout, /^tracked keys: +\d+ \/ limit \d+/m)
    assert.match(text.stdout, /^memory per session: +\d+ bytes \(mean of 3\)/m)
    assertClean(text, [], [])
  })
})

describe('cli: answers that cannot mislead', () => {
  test('cli: revoke-user, revoke-session and list-sessions exit 3 and say so when nothing exists for that user id or ref; stats and revoke-all exit 3 for a prefix nothing uses', async () => {
    const a = await app('cli6:')
    const cookie = await login(a, 'u-2')
    const env = { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli6:', SESSION_SECRET: SECRET }
    const revoke = await cli(['revoke-user', 'erin'], env)
    assert.equal(revoke.code, 3, revoke.stderr)
    assert.equal(revoke.stdout, "no live session of that user id under key prefix 'cli6:' (check the user id, and SESSION_KEY_PREFIX: the application's keyPrefix): nothing revoked\n")
    const list = await cli(['list-sessions', 'erin'], env)
    assert.equal(list.code, 3)
    assert.match(list.stdout, /^no live session of that user id under key prefix 'cli6:'/)
    const json = await cli(['list-sessions', 'erin', '--json'], env)
    assert.deepEqual([json.code, json.stdout], [3, '[]\n'])
    const ref = await refOf(a, cookie)
    const wrongRef = await cli(['revoke-session', 'u-2', 'AAAAAAAAAAAA'], env)
    assert.equal(wrongRef.code, 3)
    assert.match(wrongRef.stdout, /^no live session with that ref for that user id under key prefix 'cli6:'/)
    assert.equal((await cli(['revoke-session', 'erin', ref], env)).code, 3, 'a real ref under another user id')
    assert.ok(await works(a, cookie), 'nothing was revoked')
    // SESSION_SECRET set, as in a shell that also runs user commands: stats opens no key ring.
    const stats = await cli(['stats'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli6-typo:', SESSION_SECRET: SECRET })
    assert.equal(stats.code, 3)
    assert.match(stats.stdout, /^session records: +0 /m)
    assert.match(stats.stdout, /^nothing is stored under key prefix 'cli6-typo:': no key ring, no epoch, no session\. Is SESSION_KEY_PREFIX the application's keyPrefix\?$/m)
    const revokeAll = await cli(['revoke-all'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli6-typo:', SESSION_SECRET: SECRET })
    assert.equal(revokeAll.code, 3)
    assert.match(revokeAll.stdout, /^nothing is stored under key prefix 'cli6-typo:' \(no key ring, no epoch\): nothing revoked/)
    assert.equal(await redis.command('EXISTS', 'cli6-typo:epoch'), ':0\r\n', 'no epoch written under the mistyped prefix')
    const used = await cli(['stats', '--json'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli6:' })
    assert.equal(used.code, 0)
    assert.equal((JSON.parse(used.stdout) as { prefixInUse: boolean }).prefixInUse, true)
    assert.equal((await cli(['revoke-user', 'u-2'], env)).code, 0, 'the right user id is still success')
    assertClean(revoke, [SECRET], [cookie])
  })

  test('cli: revoke-session <userId> <ref> ends that one session on a running instance; the user\'s other sessions stay', async () => {
    const a = await app('cli7:')
    const [one, two] = [await login(a, 'u-7'), await login(a, 'u-7')] as [string, string]
    const result = await cli(['revoke-session', 'u-7', await refOf(a, one)], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli7:', SESSION_SECRET: SECRET })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'revoked that session, on every instance\n')
    await gone(a, one)
    assert.ok(await works(a, two))
    assertClean(result, [SECRET], [one, two])
  })

  test('cli: list-sessions shows the user agent and IP the app recorded, control characters replaced; under encryption only with SESSION_ENCRYPTION_KEYS, never printed', async () => {
    const key = randomBytes(32).toString('base64url')
    const make = async (keyPrefix: string, encrypted: boolean): Promise<FastifyInstance> => {
      const made = await buildApp({ redis: { url: redis.url }, keyPrefix, sessionInfo: { userAgent: true, ip: true }, ...(encrypted ? { encryption: { keys: [{ id: 'k1', key }], fields: ['x'] } } : {}) })
      apps.push(made)
      await made.inject({ method: 'POST', url: '/login', payload: { user: 'u-8' }, headers: { 'user-agent': 'Mozilla/5.0 \u001b[31mred\u0007 Firefox/140.0' } })
      return made
    }
    await make('cli8:', false)
    const plain = await cli(['list-sessions', 'u-8'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli8:', SESSION_SECRET: SECRET })
    assert.equal(plain.code, 0, plain.stderr)
    const row = plain.stdout.trim().split('\n')[1]?.split('\t') ?? []
    // The plugin records the user agent without control characters already (sessionInfo); the CLI
    // replaces any it still finds (a record written by an older version, or by a writer).
    assert.deepEqual(row.slice(5), ['127.0.0.1', 'Mozilla/5.0 [31mred Firefox/140.0'])
    assert.ok(!plain.stdout.includes('\u001b'), 'no escape sequence reaches the terminal')
    const json = JSON.parse((await cli(['list-sessions', 'u-8', '--json'], { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli8:', SESSION_SECRET: SECRET })).stdout) as Array<{ userAgent?: string, ip?: string }>
    assert.deepEqual([json[0]?.userAgent, json[0]?.ip], ['Mozilla/5.0 [31mred Firefox/140.0', '127.0.0.1'])

    await make('cli9:', true)
    const env = { REDIS_URL: url, SESSION_KEY_PREFIX: 'cli9:', SESSION_SECRET: SECRET }
    const locked = await cli(['list-sessions', 'u-8'], env)
    assert.equal(locked.code, 1)
    assert.equal(locked.stdout, '')
    assert.match(locked.stderr, /^warning: 1 session\(s\) of that user keep the user id encrypted: set SESSION_ENCRYPTION_KEYS/)
    const opened = await cli(['list-sessions', 'u-8'], { ...env, SESSION_ENCRYPTION_KEYS: `k1:${key}` })
    assert.equal(opened.code, 0, opened.stderr)
    assert.deepEqual(opened.stdout.trim().split('\n')[1]?.split('\t').slice(5), ['127.0.0.1', 'Mozilla/5.0 [31mred Firefox/140.0'])
    const wrong = await cli(['list-sessions', 'u-8'], { ...env, SESSION_ENCRYPTION_KEYS: `k1${key}` })
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /FST_SESSION_ENCRYPTION_OPTION: .*SESSION_ENCRYPTION_KEYS: pair 1 must be id:key/)
    assertClean(opened, [SECRET, key], [])
    assertClean(wrong, [SECRET, key], [])
  })
})

describe('cli: failures say what went wrong', () => {
  test('cli: revoke-user and list-sessions without SESSION_SECRET(S) exit 1 with a clear message, before touching Redis', async () => {
    const before = await redis.totalCalls()
    for (const command of ['revoke-user', 'list-sessions']) {
      const result = await cli([command, 'alice'], { REDIS_URL: url })
      assert.equal(result.code, 1)
      assert.match(result.stderr, /FST_SESSION_SECRET_INVALID: .*missing: set SESSION_SECRETS \(comma-separated, newest first\) or SESSION_SECRET/)
    }
    assert.equal(await redis.totalCalls(), before)
  })

  test('cli: a missing REDIS_URL, a wrong password and a refused port exit 1 quickly; no password or URL is printed', async () => {
    const noUrl = await cli(['stats'], {})
    assert.equal(noUrl.code, 1)
    assert.match(noUrl.stderr, /set REDIS_URL/)
    const wrong = await cli(['revoke-all'], { REDIS_URL: `redis://ops:wrong-${PASSWORD}@127.0.0.1:${redis.port}`, SESSION_SECRETS: SECRET })
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /FST_SESSION_STORE_UNAVAILABLE: .*refused the credentials/)
    assert.ok(wrong.ms < 5000, `${wrong.ms} ms`)
    assert.ok(!wrong.stderr.includes(PASSWORD))
    const server = await startRedis()
    await server.stop()
    const refused = await cli(['stats'], { REDIS_URL: `redis://ops:${PASSWORD}@127.0.0.1:${server.port}` })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ECONNREFUSED/)
    assert.ok(!refused.stderr.includes(PASSWORD))
  })

  test('cli: unknown commands and missing arguments print the usage and exit 2', async () => {
    for (const args of [[], ['nope'], ['revoke-user'], ['revoke-session', 'u'], ['revoke-all', 'extra'], ['gen-key', 'x']]) {
      const result = await cli(args, {})
      assert.equal(result.code, 2, args.join(' '))
      assert.match(result.stderr, /^Usage: fastify-hardened-session <command>/)
    }
    assert.match((await cli(['--help'], {})).stdout, /revoke-user <userId>/)
  })
})

describe('cli: TLS', () => {
  let tls: TlsRedisServer
  before(async () => { tls = await startTlsRedis({ requireClientCert: true }) })
  after(async () => { await tls?.stop() })

  test('cli: rediss:// with REDIS_CA, REDIS_CERT and REDIS_KEY (mTLS) works; without the client certificate it fails at once with the TLS alert', async () => {
    const { ca, client } = tls.certificates
    const env = { REDIS_URL: `rediss://localhost:${tls.tlsPort}`, REDIS_CA: ca.certFile, REDIS_CERT: client.certFile, REDIS_KEY: client.keyFile }
    const ok = await cli(['stats', '--json'], env)
    assert.equal(ok.code, 3, ok.stderr) // connected and read: this Redis is empty (nothing under the prefix)
    assert.equal((JSON.parse(ok.stdout) as { sessionRecords: number }).sessionRecords, 0)
    const noCert = await cli(['stats'], { REDIS_URL: env.REDIS_URL, REDIS_CA: ca.certFile })
    assert.equal(noCert.code, 1)
    assert.match(noCert.stderr, /ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED/)
    assert.ok(noCert.ms < 5000, `${noCert.ms} ms`)
    const plain = await cli(['stats'], { REDIS_URL: `redis://localhost:${tls.tlsPort}`, REDIS_CA: ca.certFile })
    assert.equal(plain.code, 1)
    assert.match(plain.stderr, /REDIS_CA needs a rediss:\/\/ REDIS_URL/)
  })
})
