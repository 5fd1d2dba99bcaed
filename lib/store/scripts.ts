/**
 * The Lua scripts of the Redis store. Each touches exactly one key (Cluster-safe) and is atomic,
 * which is what makes each store operation's invariant hold under concurrency:
 *
 *   CREATE       a session exists with every field and its TTL, or not at all.
 *   UPDATE       writes land only on a session that still exists: a logout or revoke that
 *                deleted it is never undone by a late write; re-encryption is compare-and-set.
 *   ADMIT        a lineage enters a user's index only if it still points where the caller saw
 *                it (`expect`): a regenerate racing a revocation cannot re-admit the revoked
 *                lineage. Pruning and the `maxSessionsPerUser` cap happen in the same step, so
 *                parallel logins cannot prune each other's entries or exceed the cap.
 *   DISMISS      removes a lineage only while it points at the given session, so ending an
 *                old id never removes the lineage a newer id holds.
 *   DISMISS_ALL  removes every lineage (but one) in one step: revokeUser / revokeOthers.
 *   BUMP         moves the global epoch on, whatever a writer left in the key.
 */
import { createHash } from 'node:crypto'

/** Sends a raw command addressed by `key` (a cluster routes it by the key's slot). */
export type Send = (key: string, args: string[]) => Promise<unknown>

export class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /** EVALSHA (raw, no per-command parsing layers), loading the script once if Redis lacks it. */
  async run (send: Send, key: string, args: string[]): Promise<unknown> {
    try {
      return await send(key, ['EVALSHA', this.sha, '1', key, ...args])
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return await send(key, ['EVAL', this.source, '1', key, ...args])
      throw err
    }
  }
}

// ARGV: ttl, field, value, … Returns the new hash.
export const CREATE = new Script(`
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])`)

// ARGV: ttl (0: keep the TTL), n, c, n field/value pairs, c field/expected/new triples, then
// fields to delete. Returns the updated hash, or 0 when the key is gone.
export const UPDATE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
local c = tonumber(ARGV[3])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + 2 * n)) end
local i = 4 + 2 * n
for _ = 1, c do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
  i = i + 3
end
if #ARGV >= i then redis.call('HDEL', KEYS[1], unpack(ARGV, i)) end
if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])`)

// Index entries are '<hash> <expiresAt> <loginAt>'.
// ARGV: ref, entry, expected hash ('' = none), now, max, ttl.
// Returns {0} when the expected hash does not match, else {1, evicted ref, evicted entry, …}.
export const ADMIT = new Script(`
if ARGV[3] ~= '' then
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if not cur or string.sub(cur, 1, #ARGV[3] + 1) ~= ARGV[3] .. ' ' then return {0} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(ARGV[4])
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local exp, at = string.match(all[i + 1], '^%S+ (%d+) (%d+)$')
  if exp == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    live[#live + 1] = { all[i], all[i + 1], tonumber(at) }
  end
end
local out = {1}
local excess = #live + 1 - tonumber(ARGV[5])
if excess > 0 then
  table.sort(live, function (a, b) return a[3] < b[3] end)
  for i = 1, excess do
    redis.call('HDEL', KEYS[1], live[i][1])
    out[#out + 1] = live[i][1]
    out[#out + 1] = live[i][2]
  end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
return out`)

// ARGV: ref, hash ('' = whatever it points at), ref, hash, … Returns {ref, entry, …} of the entries removed.
export const DISMISS = new Script(`
local out = {}
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur and (ARGV[i + 1] == '' or string.sub(cur, 1, #ARGV[i + 1] + 1) == ARGV[i + 1] .. ' ') then
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = cur
  end
end
return out`)

// ARGV: ref to keep ('' = none). Returns {ref, entry, …} of the entries removed.
export const DISMISS_ALL = new Script(`
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out`)

// ARGV: window (ms). Returns {count, ms left}. A counter a writer left without a TTL gets one.
export const HIT = new Script(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`)

// Takes one hit back, never below zero.
export const UNHIT = new Script(`
if (tonumber(redis.call('GET', KEYS[1])) or 0) > 0 then redis.call('DECR', KEYS[1]) end
return 1`)

// Returns the new epoch. A value a writer made non-numeric is replaced, never an error: the
// breach response must work on a tampered store.
export const BUMP = new Script(`
local v = (tonumber(redis.call('GET', KEYS[1])) or 0) + 1
redis.call('SET', KEYS[1], string.format('%d', v))
return string.format('%d', v)`)
