/**
 * Attacks on the naming key ring: rotation of secrets, a ring altered or replaced in Redis,
 * against real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { type HardenedSessionOptions } from '../lib/index.ts'
import { establishNamingKey } from '../lib/keyring.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import type { KeyringChange, KeyringMode, SessionStore } from '../lib/store/contract.ts'
import { RedisStore } from '../lib/store/redis.ts'
import { TrackingOnlyCache } from '../lib/store/tracking.ts'
import { buildApp, login, SECRET, sessionCookie, works } from './helpers/app.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('keyrin', ['--enable-debug-command', 'yes'])

const TRIES = 40

const S1 = SECRET

const S2 = 'rotated-secret-0123456789-abcdefghijklmnop'

describe('naming key ring', () => {
  /**
   * Ring options on a real RedisStore whose first ring read is answered only once `peers` first
   * reads have been answered (two instances starting at the same moment).
   */
  function gatedRing (store: RedisStore, prefix: string, secrets: string[], gate: { arrived: number, peers: number, open: Promise<void>, release: () => void }) {
    let first = true
    const gated = {
      exists: (key: string) => store.exists(key),
      keyring: async (key: string, changes: readonly KeyringChange[], mode?: KeyringMode): Promise<Record<string, string>> => {
        const reply = await store.keyring(key, changes, mode)
        if (first) {
          first = false
          if (++gate.arrived === gate.peers) gate.release()
          await gate.open
        }
        return reply
      },
    } as unknown as SessionStore
    const quiet = { error () {}, warn () {}, info () {}, debug () {} } as never
    const guard = new Guard(1000, quiet, new Events(undefined, quiet))
    return { store: gated, guard, prefix, secrets: secrets.map((s) => Buffer.from(s)), mayCreate: true, waitMs: 0 }
  }

  async function trackingStore (): Promise<RedisStore> {
    const client = createClient({ url: fx.redis.url, RESP: 3, clientSideCache: new TrackingOnlyCache('') })
    await client.connect()
    const store = new RedisStore(client as never, { cacheSize: 100, cacheBytes: 1 << 20, storeTimeout: 1000, probeInterval: 1000 })
    fx.closers.push(async () => { await store.close(); await client.close() })
    return store
  }

  // Fixed defect: two instances starting together on an empty ring during a rotation rollout ([S1] and [S2, S1]) each create their own naming key, so user indexes split for good: revokeUser on one instance misses sessions issued by the other.
  test('naming key ring: instances with [S1] and [S2, S1] that start together agree on one naming key', async () => {
    const [one, two] = [await trackingStore(), await trackingStore()]
    // Which creation lands first is up to scheduling; either order must end in one key.
    for (let i = 0; i < 20; i++) {
      const prefix = fx.freshPrefix()
      let release!: () => void
      const gate = { arrived: 0, peers: 2, open: new Promise<void>((resolve) => { release = resolve }), release: () => release() }
      const [a, b] = await Promise.all([
        establishNamingKey(gatedRing(one, prefix, [S1], gate)),
        establishNamingKey(gatedRing(two, prefix, [S2, S1], gate)),
      ])
      assert.equal(a.toString('hex'), b.toString('hex'), `try ${i + 1}: the two instances name user indexes with different keys`)
    }
  })

  // Fixed defect: (consequence of the split ring) a revokeUser on the [S2, S1] instance leaves the user's session issued by the [S1] instance working.
  test('naming key ring: after a concurrent first start with [S1] and [S2, S1], revokeUser on either instance ends the user\'s sessions on both', async () => {
    const keyPrefix = fx.freshPrefix()
    // Two real instances starting on the same empty store (a fresh prefix per try), until their first keyring reads overlap.
    let split: [FastifyInstance, FastifyInstance] | undefined
    for (let i = 0; i < TRIES && split === undefined; i++) {
      const prefix = `${keyPrefix}${i}:`
      const [a, b] = await Promise.all([
        buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix, secrets: [S1] }),
        buildApp({ redis: { url: fx.redis.url }, keyPrefix: prefix, secrets: [S2, S1] }),
      ])
      fx.apps.push(a, b)
      const who = fx.user()
      const cookie = await login(a, who)
      if (!(await works(b, cookie))) { split = [a, b]; break }
      await b.session.revokeUser(who)
      assert.equal(await works(a, cookie), false, `try ${i}: revokeUser on [S2, S1] left a session of [S1] working`)
    }
    if (split !== undefined) {
      const [a, b] = split
      const who = fx.user()
      const cookie = await login(a, who)
      assert.equal(await b.session.revokeUser(who), 0)
      assert.equal(await works(a, cookie), false, 'revokeUser on the [S2, S1] instance missed the session issued by the [S1] instance')
    }
  })

  test('naming key ring: rotation [S1] → [S2, S1] → [S2] keeps one index per user (sessions, cap, revokeUser, list)', async () => {
    const keyPrefix = fx.freshPrefix()
    const who = fx.user()
    const old = await fx.app({ keyPrefix, secrets: [S1], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    const c1 = await login(old, who)
    const mid = await fx.app({ keyPrefix, secrets: [S2, S1], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    assert.equal(await works(mid, c1), true)
    // A touch through the rotated instance re-signs the cookie and reseals the record.
    const resigned = sessionCookie(await mid.inject({ url: '/private', headers: { cookie: c1 } })) ?? c1
    const c2 = await login(mid, who)
    const c3 = await login(mid, who)
    const last = await fx.app({ keyPrefix, secrets: [S2], maxSessionsPerUser: 3 } as Partial<HardenedSessionOptions>)
    assert.equal((await last.session.listUserSessions(who)).length, 3)
    const c4 = await login(last, who) // the cap counts every session of the user, whoever issued it
    assert.equal((await last.session.listUserSessions(who)).length, 3)
    assert.deepEqual([await works(last, resigned), await works(last, c2), await works(last, c3), await works(last, c4)], [false, true, true, true], 'the cap evicted the oldest, issued under [S1]')
    assert.equal(await last.session.revokeUser(who), 3)
    for (const c of [resigned, c2, c3, c4]) assert.equal(await works(last, c), false)
  })
})
