/**
 * Least privilege: the plugin works under the Redis ACL user that docs/redis-hardening.md gives
 * (limited to the key prefix and the commands the plugin sends), every command outside that list
 * is refused, and the table of Redis commands per operation in the same document is what the
 * plugin really sends (watched with MONITOR). The ACL line is read from the document, so the
 * document cannot drift from what is tested.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createClient, ErrorReply } from 'redis'
import { hashPassword } from '../lib/index.ts'
import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { buildApp, eventually, login, manualClock } from './helpers/app.ts'
import { startRedis, type RedisServer } from './helpers/redis-server.ts'

const DOC = readFileSync(new URL('../docs/redis-hardening.md', import.meta.url), 'utf8')
const PASSWORD = 'acl-test-password-4d8e1b'

/** The ACL line of the document: `ACL SETUSER sessions …`, with its password placeholder. */
function aclLine (): string[] {
  const line = /^ACL SETUSER sessions .*$/m.exec(DOC)?.[0]
  assert.ok(line, 'docs/redis-hardening.md has an `ACL SETUSER sessions …` line')
  return line.split(/\s+/).slice(2).map((t) => t === '>CHANGE-ME' ? `>${PASSWORD}` : t)
}

let redis: RedisServer
let url: string
before(async () => {
  redis = await startRedis()
  const reply = await redis.command('ACL', 'SETUSER', ...aclLine())
  assert.equal(reply, '+OK\r\n', `the documented ACL line is accepted by Redis: ${reply}`)
  url = `redis://sessions:${PASSWORD}@127.0.0.1:${redis.port}`
})
after(async () => { await redis?.stop() })

// Every behaviour, as the least-privileged user. A NOPERM anywhere fails a request, and the test.
behaviourSuite('redis store as the ACL user', {
  options: () => ({ redis: { url } }),
  operations: () => redis.totalCalls(),
})

lifecycleSuite('redis store as the ACL user', {
  pair: () => [{ redis: { url } }, { redis: { url } }],
})

describe('acl: the user is limited', () => {
  test('acl: commands outside the list, keys outside the prefix, and scripts that try either are refused (NOPERM)', async () => {
    const client = createClient({ url, RESP: 3 })
    await client.connect()
    try {
      const refused = async (args: string[]): Promise<void> => {
        await assert.rejects(client.sendCommand(args), (err: unknown) => {
          assert.ok(err instanceof ErrorReply, String(err))
          assert.match(err.message, /NOPERM|can't (access|run)/, `${args[0]}: ${err.message}`)
          return true
        }, args.join(' '))
      }
      await refused(['KEYS', '*'])
      await refused(['FLUSHALL'])
      await refused(['FLUSHDB'])
      await refused(['CONFIG', 'SET', 'appendonly', 'no'])
      await refused(['CONFIG', 'GET', '*'])
      await refused(['SLOWLOG', 'GET'])
      await refused(['CLIENT', 'LIST'])
      await refused(['SCAN', '0'])
      await refused(['MONITOR'])
      await refused(['CLIENT', 'KILL', 'TYPE', 'normal'])
      await refused(['ACL', 'LIST'])
      await refused(['SUBSCRIBE', 'x'])
      await refused(['GET', 'other:key'])
      await refused(['DEL', 'other:key'])
      await refused(['EVAL', "return redis.call('GET', 'other:key')", '1', 'sess:x'])
      await refused(['EVAL', "return redis.call('FLUSHALL')", '0'])
      await refused(['SCRIPT', 'FLUSH'])
      // What the plugin does is allowed.
      assert.equal(await client.sendCommand(['PING']), 'PONG')
      await client.sendCommand(['GET', 'sess:epoch'])
    } finally {
      client.destroy()
    }
  })

  test('acl: CLIENT TRACKING in broadcast mode with the key prefix (BCAST PREFIX sess: NOLOOP) is allowed too', async () => {
    const client = createClient({ url, RESP: 3 })
    await client.connect()
    try {
      assert.equal(await client.sendCommand(['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'sess:', 'NOLOOP']), 'OK')
    } finally {
      client.destroy()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Commands per operation, watched with MONITOR (admin connection, the default user).

interface Seen { sent: string[], scripted: string[] }

/** A MONITOR connection; `take()` returns the commands logged since the last call, up to a marker. */
async function monitor (port: number): Promise<{ take: () => Promise<Seen>, quiet: () => Promise<void>, close: () => void }> {
  const socket: Socket = createConnection({ host: '127.0.0.1', port })
  socket.setEncoding('utf8')
  let buffer = ''
  socket.on('data', (d: string) => { buffer += d })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write('MONITOR\r\n')
  await eventually(async () => buffer.includes('+OK\r\n'), 2000, 'MONITOR started')
  buffer = buffer.slice(buffer.indexOf('+OK\r\n') + 5)
  let n = 0
  return {
    async take () {
      const marker = `marker-${++n}`
      await redis.command('ECHO', marker)
      await eventually(async () => buffer.includes(`"${marker}"`), 2000, 'MONITOR caught up')
      const upTo = buffer.indexOf(`"${marker}"`)
      const lines = buffer.slice(0, upTo).split('\r\n')
      buffer = buffer.slice(buffer.indexOf('\r\n', upTo) + 2)
      const seen: Seen = { sent: [], scripted: [] }
      for (const line of lines) {
        // +1700000000.000000 [0 127.0.0.1:5555] "evalsha" "…"   or   [0 lua] "hset" …
        const m = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]+)")?/.exec(line)
        if (m === null) continue
        const source = m[1] as string
        let name = (m[2] as string).toUpperCase()
        if (name === 'ECHO' || name === 'INFO' || name === 'PING' || name === 'ROLE') continue // the test's own, and idle probes
        if (name === 'CLIENT') name += ` ${(m[3] ?? '').toUpperCase()}`
        if (source === 'lua') seen.scripted.push(name)
        else seen.sent.push(name)
      }
      return seen
    },
    /**
     * Resolves once MONITOR has logged nothing new for 50 ms (at most 2 s): what an operation
     * sets off after it resolved (every instance reading a changed epoch) belongs to it.
     */
    async quiet () {
      let length = -1
      await eventually(async () => {
        const settled = buffer.length === length
        length = buffer.length
        if (!settled) await new Promise((resolve) => setTimeout(resolve, 50))
        return settled
      }, 2000, 'MONITOR quiet')
    },
    close: () => socket.destroy(),
  }
}

/** `EVALSHA ×2, GET` — a command list as the document writes it (sorted, counted). */
function summary (names: string[]): string {
  if (names.length === 0) return '—'
  const counts = new Map<string, number>()
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => `\`${name}\`${c > 1 ? ` ×${c}` : ''}`).join(', ')
}

/** The rows of the "commands per operation" table of the document: operation → [sent, scripted]. */
function documentedTable (): Map<string, [string, string]> {
  const start = DOC.indexOf('<!-- commands-per-operation -->')
  assert.ok(start >= 0, 'the document marks its commands-per-operation table')
  const rows = new Map<string, [string, string]>()
  for (const line of DOC.slice(start).split('\n').slice(1)) {
    if (!line.startsWith('|')) { if (rows.size > 0) break; continue }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim())
    if (cells[0] === 'operation' || /^-+$/.test(cells[0] ?? '')) continue
    rows.set(cells[0] as string, [cells[1] as string, cells[2] as string])
  }
  return rows
}

describe('acl: commands per operation', () => {
  const apps: FastifyInstance[] = []
  after(async () => { await Promise.all(apps.map((a) => a.close())) })

  test('commands: the table in docs/redis-hardening.md is what the plugin sends for each operation (MONITOR, as the ACL user)', async () => {
    const clock = manualClock()
    // A prefix of its own (inside the user's ~sess:*), away from the suites' users and epoch.
    const options = { redis: { url }, clock: clock.now, keyPrefix: 'sess:ops:', password: { memoryCost: 1024, timeCost: 1 } }
    const hash = await hashPassword('correct horse battery', { memoryCost: 1024, timeCost: 1 })
    const routes = (app: FastifyInstance): void => {
      app.post('/pw', async (req) => await req.session.loginWithPassword({ account: 'u-pw', hash, password: (req.body as { p: string }).p }))
    }
    const a = await buildApp(options, {}, routes)
    const b = await buildApp(options, {}, routes)
    apps.push(a, b)
    // Scripts loaded and the epoch read once, so that the rows show the steady state.
    const first = await login(a, 'warm-up')
    const warm = String((await a.inject({ method: 'POST', url: '/regenerate', headers: { cookie: first } })).headers['set-cookie']).split(';')[0] as string
    await a.inject({ method: 'POST', url: '/set', headers: { cookie: warm }, payload: { x: 1 } })
    await a.inject({ method: 'POST', url: '/logout', headers: { cookie: warm } })
    await a.session.revokeUser('warm-up')
    await a.session.revokeAll()
    // Read on the other instance too: the record a login writes stays cached on its own instance,
    // so only another instance's read loads the read script.
    const second = await login(a, 'warm-up-2')
    await a.inject({ url: '/me', headers: { cookie: second } })
    await b.inject({ url: '/me', headers: { cookie: second } })
    await a.inject({ method: 'POST', url: '/pw', payload: { p: 'wrong' } })
    await a.inject({ method: 'POST', url: '/pw', payload: { p: 'correct horse battery' } })

    const mon = await monitor(redis.port)
    const measured = new Map<string, Seen>()
    const step = async (name: string, run: () => Promise<unknown>): Promise<void> => {
      await mon.take()
      await run()
      await mon.quiet()
      measured.set(name, await mon.take())
    }
    try {
      let cookie = ''
      await step('request without a cookie', () => a.inject({ url: '/me' }))
      await step('login (no session before)', async () => { cookie = await login(a, 'u-ops', { theme: 'dark' }) })
      await step('first read after login', () => a.inject({ url: '/me', headers: { cookie } }))
      await step('authenticated read, cached', () => a.inject({ url: '/me', headers: { cookie } }))
      await step('authenticated read, not cached (another instance)', () => b.inject({ url: '/me', headers: { cookie } }))
      await step('write (one field)', () => a.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { theme: 'light' } }))
      clock.advance(61_000)
      await step('touch (read after touchInterval)', () => a.inject({ url: '/me', headers: { cookie } }))
      await step('regenerate', async () => {
        const res = await a.inject({ method: 'POST', url: '/regenerate', headers: { cookie } })
        cookie = String(res.headers['set-cookie']).split(';')[0] as string
      })
      await step('logout', () => a.inject({ method: 'POST', url: '/logout', headers: { cookie } }))
      await login(a, 'u-revoke')
      await login(a, 'u-revoke')
      await step('revokeUser (2 sessions)', () => a.session.revokeUser('u-revoke'))
      await login(a, 'u-list')
      await step('listUserSessions (1 session)', () => a.session.listUserSessions('u-list'))
      await step('revokeAll', () => a.session.revokeAll())
      await step('loginWithPassword, wrong password', () => a.inject({ method: 'POST', url: '/pw', payload: { p: 'wrong' } }))
      await step('loginWithPassword, right password', () => a.inject({ method: 'POST', url: '/pw', payload: { p: 'correct horse battery' } }))
    } finally {
      mon.close()
    }
    const table = documentedTable()
    const got = new Map([...measured].map(([op, seen]) => [op, [summary(seen.sent), summary(seen.scripted)] as [string, string]]))
    const printed = [...got].map(([op, [sent, scripted]]) => `| ${op} | ${sent} | ${scripted} |`).join('\n')
    assert.deepEqual(got, table, `measured rows:\n${printed}`)
    // The ACL list is minimal: every command in it is sent by an operation above, or is the
    // connection handshake's CLIENT TRACKING, the idle probes' PING and ROLE (ROLE also counts the
    // replicas a revocation waits for), WAIT (a revocation on a master with replicas; this Redis
    // has none), EVAL (the fallback when Redis lost its script cache: NOSCRIPT, e.g. after a
    // restart), HRANDFIELD (ADMIT's sample of a user index above 16 entries, for pruning; the
    // throttle scripts' sample of a bucket), EXISTS (whether the epoch exists when a start finds no
    // key ring; whether a sampled index entry's record still exists, for pruning) or INFO (sent
    // once at register, to read maxmemory-policy: store/eviction.ts).
    const used = new Set(['CLIENT|TRACKING', 'PING', 'ROLE', 'WAIT', 'EVAL', 'HRANDFIELD', 'EXISTS', 'INFO'])
    for (const seen of measured.values()) for (const name of [...seen.sent, ...seen.scripted]) used.add(name)
    const allowed = aclLine().filter((t) => t.startsWith('+')).map((t) => t.slice(1).toUpperCase())
    assert.deepEqual(allowed.toSorted(), [...used].toSorted())
  })
})
