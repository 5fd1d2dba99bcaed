/**
 * The suite: bare Fastify (the ceiling), this plugin on each path the budgets name, and the two
 * usual alternatives, all on the same route shape (see servers/common.ts); with `--against DIR`,
 * this plugin's main paths again on another checkout's lib/ (same server script and routes).
 */
import { fileURLToPath } from 'node:url'
import { storageHash } from '../../lib/crypto/ids.ts'
import {
  bulkString, cookieValue, expect, expectAnonymousRead, expectLoginLogout, expectRead, expectWriteRoundTrip,
  login, LOGIN, LOGOUT, PROBE_N, READ, WRITE,
} from './checks.ts'
import { json, send } from './http.ts'
import type { LoadPlan } from './load/types.ts'
import type { BenchRedis } from './redis.ts'
import type { ServerSpec } from './server-process.ts'
import type { PrepareContext, Variant } from './variant.ts'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

function server (script: string, ...args: string[]): ServerSpec {
  const path = fileURLToPath(new URL(`../servers/${script}`, import.meta.url))
  return { command: [process.execPath, '--import', 'tsx', path, ...args], cwd: REPO_ROOT }
}

const BARE = server('bare.ts')
const HARDENED = server('hardened.ts', '--redis-url', '{redisUrl}')
const FASTIFY_SESSION = server('fastify-session.ts', '--redis-url', '{redisUrl}')
const SECURE_SESSION = server('secure-session.ts')

function fixed (method: string, path: string, cookie?: string): LoadPlan {
  return { kind: 'fixed', request: { method, path, headers: cookie === undefined ? {} : { cookie } } }
}

function needRedis (ctx: PrepareContext): BenchRedis {
  expect(ctx.redis !== undefined, 'this variant needs the harness Redis')
  return ctx.redis
}

/** Redis key of a hardened session: `sess:` + SHA-256 of the id (the cookie is `<id>.<mac>`). */
function hardenedKey (cookie: string): string {
  const value = cookieValue(cookie, '__Host-sid')
  expect(value !== undefined, 'no __Host-sid cookie')
  return 'sess:' + storageHash(value.slice(0, value.indexOf('.')))
}

/** The logged-in read, then the load: the same read with the same cookie. */
async function readPlan (ctx: PrepareContext): Promise<LoadPlan> {
  const cookie = await login(ctx.origin)
  await expectRead(ctx.origin, cookie)
  return fixed('GET', READ.path, cookie)
}

/**
 * Working set: more sessions than the local cache holds. Each session is one user's, so it needs
 * two cache entries (its record and its user's index); 8,000 sessions against `cacheSize` 2,000
 * means at most a quarter of the working set fits.
 */
const WORKING_SET_CACHE = 2000
const WORKING_SET_SESSIONS = 8000

function workingSetPlan (zipf: number) {
  return async (ctx: PrepareContext): Promise<LoadPlan> => {
    const body = JSON.stringify({ count: WORKING_SET_SESSIONS })
    // 8,000 logins take a while on a busy machine.
    const res = await send(ctx.origin, { method: 'POST', path: '/__bench/sessions', headers: { 'content-type': 'application/json' }, body }, undefined, 180_000)
    const cookies = json(res)['cookies']
    expect(Array.isArray(cookies) && cookies.length === WORKING_SET_SESSIONS, `bulk login made ${Array.isArray(cookies) ? cookies.length : 0} sessions`)
    await expectRead(ctx.origin, cookies[0] as string, 'ws-0')
    await expectRead(ctx.origin, cookies[WORKING_SET_SESSIONS - 1] as string, `ws-${WORKING_SET_SESSIONS - 1}`)
    return { kind: 'pool', request: READ, cookies: cookies as string[], zipf }
  }
}

/** POST /write without a body writes a fresh random `n` on every request: always a real change. */
function writePlan (persisted?: (ctx: PrepareContext, cookie: string) => Promise<void>) {
  return async (ctx: PrepareContext): Promise<LoadPlan> => {
    const cookie = await login(ctx.origin)
    await expectWriteRoundTrip(ctx.origin, cookie, persisted === undefined ? undefined : (after) => persisted(ctx, after))
    return fixed('POST', WRITE.path, cookie)
  }
}

const suite: Variant[] = [
  {
    name: 'bare-read',
    label: 'bare Fastify: GET /me (constant JSON)',
    group: 'baseline',
    server: BARE,
    usesRedis: false,
    async prepare (ctx) {
      await expectRead(ctx.origin, undefined)
      return fixed('GET', READ.path)
    },
  },
  {
    name: 'bare-write',
    label: 'bare Fastify: POST /write (constant JSON)',
    group: 'baseline',
    server: BARE,
    usesRedis: false,
    async prepare () {
      return fixed('POST', WRITE.path)
    },
  },
  {
    name: 'hardened-read',
    label: 'hardened-session: cached authenticated read (Redis)',
    group: 'plugin',
    baseline: 'bare-read',
    server: HARDENED,
    usesRedis: true,
    statsPath: '/__bench/stats',
    prepare: readPlan,
  },
  {
    name: 'hardened-write',
    label: 'hardened-session: write one object-valued field (Redis)',
    group: 'plugin',
    baseline: 'bare-write',
    server: HARDENED,
    usesRedis: true,
    statsPath: '/__bench/stats',
    prepare: writePlan(async (ctx, cookie) => {
      const stored = bulkString(await needRedis(ctx).command('HGET', hardenedKey(cookie), 'd:cart'))
      expect(stored?.includes(`"n":${PROBE_N}`) === true, `Redis holds d:cart = ${stored} after writing n = ${PROBE_N}`)
    }),
  },
  {
    name: 'hardened-login-logout',
    label: 'hardened-session: login + logout cycle (2 requests)',
    group: 'plugin',
    baseline: 'bare-write',
    server: HARDENED,
    usesRedis: true,
    requestsPerOperation: 2,
    async prepare (ctx) {
      await expectLoginLogout(ctx.origin)
      return { kind: 'cycle', first: LOGIN, second: LOGOUT }
    },
  },
  {
    name: 'hardened-no-cookie',
    label: 'hardened-session: request without a cookie',
    group: 'plugin',
    baseline: 'bare-read',
    server: HARDENED,
    usesRedis: true,
    async prepare (ctx) {
      await expectAnonymousRead(ctx.origin)
      return fixed('GET', READ.path)
    },
  },
  {
    name: 'hardened-encrypted-read',
    label: "hardened-session: cached read, encryption fields '*'",
    group: 'plugin',
    baseline: 'bare-read',
    server: server('hardened.ts', '--redis-url', '{redisUrl}', '--encryption'),
    usesRedis: true,
    statsPath: '/__bench/stats',
    async prepare (ctx) {
      const plan = await readPlan(ctx)
      const cookie = plan.kind === 'fixed' ? plan.request.headers?.['cookie'] ?? '' : ''
      const stored = bulkString(await needRedis(ctx).command('HGET', hardenedKey(cookie), 'd:theme'))
      expect(stored?.startsWith('~1.') === true, `theme is not stored encrypted: ${stored}`)
      return plan
    },
  },
  {
    name: 'hardened-encrypted-write',
    label: "hardened-session: write one object-valued field, encryption fields '*'",
    group: 'plugin',
    baseline: 'bare-write',
    server: server('hardened.ts', '--redis-url', '{redisUrl}', '--encryption'),
    usesRedis: true,
    statsPath: '/__bench/stats',
    prepare: writePlan(async (ctx, cookie) => {
      const stored = bulkString(await needRedis(ctx).command('HGET', hardenedKey(cookie), 'd:cart'))
      expect(stored?.startsWith('~1.') === true && !stored.includes(String(PROBE_N)), `d:cart is not stored encrypted: ${stored}`)
    }),
  },
  {
    name: 'hardened-cluster-read',
    label: 'hardened-session: cached authenticated read (Redis Cluster, 3 masters)',
    group: 'plugin',
    baseline: 'bare-read',
    server: server('hardened.ts', '--redis-urls', '{redisUrls}'),
    usesRedis: true,
    usesCluster: true,
    statsPath: '/__bench/stats',
    prepare: readPlan,
  },
  {
    name: 'hardened-workset-uniform',
    label: `hardened-session: read, ${WORKING_SET_SESSIONS} sessions drawn uniformly, cacheSize ${WORKING_SET_CACHE}`,
    group: 'plugin',
    baseline: 'bare-read',
    missBaseline: 'hardened-read',
    server: server('hardened.ts', '--redis-url', '{redisUrl}', '--cache-size', String(WORKING_SET_CACHE)),
    usesRedis: true,
    statsPath: '/__bench/stats',
    prepare: workingSetPlan(0),
  },
  {
    name: 'hardened-workset-zipf',
    label: `hardened-session: read, ${WORKING_SET_SESSIONS} sessions drawn Zipf (s = 1), cacheSize ${WORKING_SET_CACHE}`,
    group: 'plugin',
    baseline: 'bare-read',
    missBaseline: 'hardened-read',
    server: server('hardened.ts', '--redis-url', '{redisUrl}', '--cache-size', String(WORKING_SET_CACHE)),
    usesRedis: true,
    statsPath: '/__bench/stats',
    prepare: workingSetPlan(1),
  },
  {
    name: 'hardened-memory-read',
    label: 'hardened-session: cached read (memory store)',
    group: 'plugin',
    baseline: 'bare-read',
    server: server('hardened.ts', '--store', 'memory'),
    usesRedis: false,
    prepare: readPlan,
  },
  {
    name: 'fastify-session-read',
    label: '@fastify/session + connect-redis: read',
    group: 'alternative',
    baseline: 'bare-read',
    server: FASTIFY_SESSION,
    usesRedis: true,
    prepare: readPlan,
  },
  {
    name: 'fastify-session-write',
    label: '@fastify/session + connect-redis: write one object-valued field',
    group: 'alternative',
    baseline: 'bare-write',
    server: FASTIFY_SESSION,
    usesRedis: true,
    prepare: writePlan(async (ctx, cookie) => {
      // connect-redis keys sessions as sess:<id>; the cookie is the URL-encoded `<id>.<signature>`.
      const signed = decodeURIComponent(cookieValue(cookie, 'sessionId') ?? '')
      const stored = bulkString(await needRedis(ctx).command('GET', 'sess:' + signed.slice(0, signed.lastIndexOf('.'))))
      expect(stored?.includes(`"n":${PROBE_N}`) === true, `Redis holds ${stored} after writing a cart with n = ${PROBE_N}`)
    }),
  },
  {
    name: 'secure-session-read',
    label: '@fastify/secure-session (stateless cookie): read',
    group: 'alternative',
    baseline: 'bare-read',
    server: SECURE_SESSION,
    usesRedis: false,
    prepare: readPlan,
  },
  {
    name: 'secure-session-write',
    label: '@fastify/secure-session (stateless cookie): write one object-valued field',
    group: 'alternative',
    baseline: 'bare-write',
    server: SECURE_SESSION,
    usesRedis: false,
    // Stateless: the write lives in the re-issued cookie, which the round trip follows.
    prepare: writePlan(),
  },
]

/** Every built-in server's Redis traffic is counted (0 for those that have none). */
export const builtInVariants: readonly Variant[] = suite.map((v) => ({ ...v, measureRedis: true }))

/** The paths a before/after comparison covers (the budgets' paths). */
const COMPARED = ['hardened-read', 'hardened-write', 'hardened-login-logout', 'hardened-no-cookie', 'hardened-encrypted-write', 'hardened-workset-uniform']

/**
 * `--against DIR`: the compared variants again, their server started with `--lib DIR` (the
 * plugin of that checkout, which needs its own `npm install`), named `<label>:<variant>`.
 */
export function againstVariants (dir: string, label: string, among: readonly Variant[]): Variant[] {
  return among.filter((v) => COMPARED.includes(v.name)).map((v): Variant => ({
    ...v,
    name: `${label}:${v.name}`,
    label: `${label}: ${v.label.replace(/^hardened-session: /, '')}`,
    group: 'against',
    counterpart: v.name,
    ...(v.missBaseline === undefined ? {} : { missBaseline: `${label}:${v.missBaseline}` }),
    server: { ...v.server, command: [...v.server.command, '--lib', dir] },
  }))
}
