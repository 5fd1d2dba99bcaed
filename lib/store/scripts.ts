/**
 * The Lua scripts of the Redis store. Each touches one key, or (READ) a session and its epoch
 * copy, which share a hash slot on a cluster (key-names.ts): Cluster-safe. Each is atomic,
 * which is what makes each store operation's invariant hold under concurrency:
 *
 *   CREATE       a session exists with every field and its TTL, or not at all; with an epoch
 *                check, only if its epoch copy holds the epoch its tag was made under (a login
 *                needs no separate read of the copy, and none can slip between read and write).
 *   UPDATE       writes land only on a session that still exists: a logout or revoke that
 *                deleted it is never undone by a late write; re-encryption is compare-and-set;
 *                the session's size after the write is checked in the same step, so parallel
 *                writes cannot add up past `maxSessionBytes`.
 *   TAKE         deletes a session and returns what it held at that moment: a move (login,
 *                regenerate) carries every write that landed before it, and every later write
 *                to the old id fails loudly.
 *   ADMIT        a lineage enters a user's index only if it still points where the caller saw
 *                it (`expect`): a regenerate racing a revocation cannot re-admit the revoked
 *                lineage. Pruning and the `maxSessionsPerUser` cap happen in the same step, so
 *                parallel logins cannot prune each other's entries or exceed the cap; the scan
 *                they need runs only when the index doubled since the last one (or passed the
 *                cap), so a login costs amortised O(1) however large the index.
 *   DISMISS      removes a lineage only while it points at the given session, so ending an
 *                old id never removes the lineage a newer id holds.
 *   DISMISS_ALL  removes every lineage (but one) in one step: revokeUser / revokeOthers.
 *   HIT          counts a login attempt before its password is checked, atomically with the
 *                compare, so parallel attempts (on any instance) cannot pass a limit together.
 *   RELEASE      a success takes back only the hits counted for the account that logged in.
 *   EPOCH        reads an epoch copy, raising it to the caller's newest known epoch when it is
 *                missing, malformed or older (`<n>.<token>.<mac>`, crypto/epoch.ts): an epoch only moves
 *                forward, and a deleted or rolled-back copy is restored by the first process that
 *                reads it. `revokeAll` raises every copy to a new value the same way.
 *   REPLACE_EPOCH  replaces an epoch copy that does not verify (a writer's), compare-and-set.
 *   READ         a session, its epoch copy and (on one Redis, not a cluster) its user-index entry
 *                in one step: one round trip for a cache miss; on a cluster the copy lives in the
 *                record's own slot, and the index entry is read apart.
 *   The user index's `#gen` field is replaced at random by `revokeUser`/`revokeOthers`: ADMIT
 *   refuses a login that read it before the latest one (a password login still running when the
 *   revocation resolved).
 */
import { createHash } from 'node:crypto'

/** An index is scanned when it holds more entries than twice its size after the last scan, and never below this. */
export const SCAN_FLOOR = 16
/** An index with more entries than this returns a sample of them at each login, for pruning. */
export const SAMPLE_FLOOR = 16
/** UPDATE scans its reply for a field up to this many field/value pairs, and indexes it beyond. */
const SCAN_PAIRS = 32

/** Sends a raw command addressed by `key` (a cluster routes it by the key's slot). */
export type Send = (key: string, args: string[]) => Promise<unknown>

export class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /**
   * EVALSHA (raw, no per-command parsing layers), loading the script once if Redis lacks it.
   * `more`: further keys, in the slot of `key` on a cluster. `behind`: sends what must be
   * pipelined right behind the script (again behind a retry with EVAL).
   */
  async run (
    send: Send, key: string, args: string[], more: readonly string[] = [], behind?: () => void
  ): Promise<unknown> {
    const keys = [String(1 + more.length), key, ...more]
    try {
      const sent = send(key, ['EVALSHA', this.sha, ...keys, ...args])
      behind?.()
      return await sent
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err
      const sent = send(key, ['EVAL', this.source, ...keys, ...args])
      behind?.()
      return await sent
    }
  }
}

// Raises the epoch copy in KEYS[i] to ARGV[1] ('<n>.<token>.<mac>') when it is missing, malformed
// or has a smaller n; returns the value it holds after. Shared by EPOCH, READ and CREATE. (Lua cannot
// check the MAC: a copy that does not verify is replaced by REPLACE_EPOCH, crypto/epoch.ts.)
const RAISE = `
local function count (v)
  if not v then return nil end
  local n, token, mac = string.match(v, '^([1-9]%d*)%.([%w_-]+)%.([%w_-]+)$')
  if n == nil or #n > 15 or #token ~= 22 or #mac ~= 22 then return nil end
  return tonumber(n)
end
local function raise (key, candidate)
  local cur = redis.pcall('GET', key)
  -- A key of another type (a writer's) is no epoch: replaced like a malformed value.
  if type(cur) == 'table' and cur.err then
    redis.call('DEL', key)
    cur = false
  end
  local have = count(cur)
  local want = count(candidate)
  if have == nil or (want ~= nil and have < want) then
    redis.call('SET', key, candidate)
    return candidate
  end
  return cur
end`

// KEYS: the session, and its epoch copy when checked. ARGV: ttl, the epoch value the record's
// tag was made under ('' = not checked), the caller's newest known epoch, field, value, … With a
// check, the copy is raised to the newest known epoch (as EPOCH) and nothing is written unless
// it then holds exactly the tag's value: returns {0, the copy's value}. Else returns 1 when every
// field was new (the hash is exactly what the caller wrote: it needs no copy of it back), or the
// whole hash.
export const CREATE = new Script(`${RAISE}
if ARGV[2] ~= '' then
  local held = raise(KEYS[2], ARGV[3])
  if held ~= ARGV[2] then return {0, held} end
end
local added = redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if added == (#ARGV - 3) / 2 then return 1 end
return redis.call('HGETALL', KEYS[1])`)

// ARGV: ttl (0: keep the TTL), max bytes, n, c, n field/value pairs, c field/expected/new
// triples, then fields to delete. Returns the updated hash, 0 when the key is gone, or -1 (and
// nothing written) when the session would exceed max bytes (the size storedBytes() computes).
// The hash is read once: the result is worked out here, sized, and only then written (one HSET,
// one HDEL), so a refused write writes nothing and a write runs two or three commands in all.
// A field is found by a scan of the reply while the record (with what this write adds) is small;
// past SCAN_PAIRS pairs, by a field -> position table built once, so that a write costs
// O(fields held + fields written), not their product (a 3000-field record written with 3000
// fields blocked Redis for about a second).
export const UPDATE = new Script(`
local all = redis.call('HGETALL', KEYS[1])
local m = #all
if m == 0 then return 0 end
local n = tonumber(ARGV[3])
local c = tonumber(ARGV[4])
local pos = nil
if m + 2 * n > ${2 * SCAN_PAIRS} then
  pos = {}
  for j = 1, m, 2 do pos[all[j]] = j end
end
local function find (f)
  if pos then return pos[f] end
  local j = 1
  while j < m and all[j] ~= f do j = j + 2 end
  if j < m then return j end
  return nil
end
local sets = {}
local s = 0
local function put (f, v)
  local j = find(f)
  if j then all[j + 1] = v else
    all[m + 1] = f; all[m + 2] = v; m = m + 2
    if pos then pos[f] = m - 1 end
  end
  sets[s + 1] = f
  sets[s + 2] = v
  s = s + 2
end
for j = 5, 4 + 2 * n, 2 do put(ARGV[j], ARGV[j + 1]) end
local i = 5 + 2 * n
for _ = 1, c do
  local j = find(ARGV[i])
  if j and all[j + 1] == ARGV[i + 1] then put(ARGV[i], ARGV[i + 2]) end
  i = i + 3
end
local dels = {}
for k = i, #ARGV do
  local j = find(ARGV[k])
  if j then
    dels[#dels + 1] = ARGV[k]
    if pos then
      pos[all[m - 1]] = j
      pos[ARGV[k]] = nil
    end
    all[j] = all[m - 1]
    all[j + 1] = all[m]
    all[m] = nil
    all[m - 1] = nil
    m = m - 2
  end
end
local size = 160
local byte = string.byte
for j = 1, m, 2 do
  local f = all[j]
  local a, b = byte(f, 1, 2)
  if a == 100 and b == 58 then size = size + #f - 2 + #all[j + 1] + 4
  elseif f == 'm:u' or f == 'm:ua' or f == 'm:ip' then size = size + #all[j + 1] end
end
if size > tonumber(ARGV[2]) then return -1 end
if s > 0 then redis.call('HSET', KEYS[1], unpack(sets)) end
if #dels > 0 then redis.call('HDEL', KEYS[1], unpack(dels)) end
if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return all`)

// ARGV: mode, then field, expected, value triples. 'create': set them all only if the ring does
// not exist at all (a first start, or a ring lost from Redis: two processes restoring or making
// one at the same time can never leave two naming keys in it). 'reset': the ring becomes exactly
// these fields (an operator starting over). 'set': set each field whose
// current value is the expected one ('' = absent): adds a wrapping, or replaces one that this
// process found unreadable, never one written meanwhile. Returns the whole hash.
export const KEYRING = new Script(`
local held = redis.pcall('HLEN', KEYS[1])
-- A key of another type (a writer's) is no ring: treated as missing.
if type(held) == 'table' and held.err then redis.call('DEL', KEYS[1]) end
if ARGV[1] == 'create' or ARGV[1] == 'reset' then
  if ARGV[1] == 'create' and redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
  redis.call('DEL', KEYS[1])
  for i = 2, #ARGV, 3 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
else
  for i = 2, #ARGV, 3 do
    if (redis.call('HGET', KEYS[1], ARGV[i]) or '') == ARGV[i + 1] then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
  end
end
return redis.call('HGETALL', KEYS[1])`)

// Deletes the session and returns it as it was: the last read of a move, atomic with the delete.
export const TAKE = new Script(`
local all = redis.call('HGETALL', KEYS[1])
if #all > 0 then redis.call('DEL', KEYS[1]) end
return all`)

// Index entries are '<hash> <expiresAt> <loginAt>'. The field '#scan' (never a ref) holds the
// size above which the next login scans the index: scans are amortised O(1) per login.
// ARGV: ref, entry, expected hash ('' = none), now, max, ttl, sample size (0: none), expected '#gen'
// ('-' = any; '' = none yet). Returns {0} when the expected hash or generation does not match,
// else {1, e, e evicted ref/entry pairs, then sampled ref/entry pairs}. A scan (when the index
// outgrew twice its size after the last scan, or the cap) prunes entries past their absolute deadline
// and evicts the oldest beyond the cap; an index above the sample floor also returns a few random
// other entries, whose sessions the caller checks (their records live on other keys, possibly other cluster slots).
export const ADMIT = new Script(`
if ARGV[8] ~= '-' and (redis.call('HGET', KEYS[1], '#gen') or '') ~= ARGV[8] then return {0} end
if ARGV[3] ~= '' then
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if not cur or string.sub(cur, 1, #ARGV[3] + 1) ~= ARGV[3] .. ' ' then return {0} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local held = redis.call('HLEN', KEYS[1])
local mark, marks = nil, 0
-- An index holding only this entry has no marks: nothing more to read.
if held > 1 then
  mark = tonumber(redis.call('HGET', KEYS[1], '#scan'))
  marks = (mark and 1 or 0) + redis.call('HEXISTS', KEYS[1], '#gen')
end
local n = held - marks
local threshold = mark or ${SCAN_FLOOR}
local out = {1, 0}
if n > threshold or n > max then
  local live = {}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if all[i] ~= '#scan' and all[i] ~= '#gen' then
      local exp, at = string.match(all[i + 1], '^%S+ (%d+) (%d+)$')
      if exp == nil or tonumber(exp) <= now then
        redis.call('HDEL', KEYS[1], all[i])
      elseif all[i] ~= ARGV[1] then
        live[#live + 1] = { all[i], all[i + 1], tonumber(at) }
      end
    end
  end
  local excess = #live + 1 - max
  if excess > 0 then
    table.sort(live, function (a, b) return a[3] < b[3] end)
    for i = 1, excess do
      redis.call('HDEL', KEYS[1], live[i][1])
      out[#out + 1] = live[i][1]
      out[#out + 1] = live[i][2]
    end
    out[2] = excess
  else
    excess = 0
  end
  n = #live + 1 - excess
  redis.call('HSET', KEYS[1], '#scan', math.max(${SCAN_FLOOR}, 2 * n))
elseif 4 * n < threshold and mark then
  redis.call('HSET', KEYS[1], '#scan', math.max(${SCAN_FLOOR}, 2 * n))
end
if n > ${SAMPLE_FLOOR} and tonumber(ARGV[7]) > 0 then
  -- HRANDFIELD needs Redis 6.2; before it, no sample (indexes are then pruned by deadline only).
  local picked = redis.pcall('HRANDFIELD', KEYS[1], tonumber(ARGV[7]) + 3, 'WITHVALUES')
  if type(picked) ~= 'table' or picked.err then picked = {} end
  local taken = 0
  for i = 1, #picked, 2 do
    if string.sub(picked[i], 1, 1) ~= '#' and picked[i] ~= ARGV[1] and taken < tonumber(ARGV[7]) then
      out[#out + 1] = picked[i]
      out[#out + 1] = picked[i + 1]
      taken = taken + 1
    end
  end
end
-- An index holding only this entry was made by it (or held only this lineage): its TTL is set as it is.
if held == 1 or redis.call('PTTL', KEYS[1]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
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

// ARGV: ref to keep ('' = none), a new random '#gen' token, the TTL (ms) the index keeps at least.
// Removes every lineage but that one and replaces '#gen', so a login that read the old value
// before this revocation cannot be admitted after it. The TTL is set whenever it is not longer
// (also when a second pass runs in the same millisecond: one command count whatever the timing).
// Returns {ref, entry, …} of the entries removed.
export const DISMISS_ALL = new Script(`
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] and string.sub(all[i], 1, 1) ~= '#' then
    redis.call('HDEL', KEYS[1], all[i])
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
redis.call('HSET', KEYS[1], '#gen', ARGV[2])
if redis.call('PTTL', KEYS[1]) <= tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return out`)

/** Fields of a throttle bucket looked at per call, whose expired ones are removed. */
export const THROTTLE_SAMPLE = 6

// Login-throttle counters live as fields of bucket hashes without a TTL (no volatile-* policy
// evicts them), each field '<count> <window end ms>'. Time is Redis's own (TIME), so instances
// with skewed clocks agree on windows. A field whose window ended counts as zero; a window end
// beyond one window from now (written by someone else) is cut back to one window. Each call
// samples a few fields and deletes those whose window ended: with at most two new fields per
// call, in the steady state a bucket holds at most about 1 / (1 - 2 / THROTTLE_SAMPLE) = 1.5
// times its live counters.
// HRANDFIELD needs Redis 6.2; before it, nothing is swept.
const THROTTLE_PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function counter (v, window)
  if not v then return 0, nil end
  local c, e = string.match(v, '^(%d+) (%d+)$')
  c = tonumber(c)
  e = tonumber(e)
  if c == nil or e == nil or e <= now then return 0, nil end
  if window and e > now + window then e = now + window end
  return c, e
end
local function sweep (keep1, keep2)
  local picked = redis.pcall('HRANDFIELD', KEYS[1], ${THROTTLE_SAMPLE}, 'WITHVALUES')
  if type(picked) ~= 'table' or picked.err then return end
  for i = 1, #picked, 2 do
    local f = picked[i]
    if f ~= keep1 and f ~= keep2 then
      local e = tonumber(string.match(picked[i + 1], '^%d+ (%d+)$'))
      if e == nil or e <= now then redis.call('HDEL', KEYS[1], f) end
    end
  end
end
`

// ARGV: window (ms; '' when only reading), field, share field ('' = none), '1' to count ('0' reads only).
// Returns {count, ms left in the window}.
export const HIT = new Script(THROTTLE_PRELUDE + `
local window = tonumber(ARGV[1])
local count, ends = counter(redis.call('HGET', KEYS[1], ARGV[2]), window)
if ARGV[4] == '1' then
  if ends == nil then ends = now + window end
  count = count + 1
  redis.call('HSET', KEYS[1], ARGV[2], count .. ' ' .. ends)
  if ARGV[3] ~= '' then
    local mine, at = counter(redis.call('HGET', KEYS[1], ARGV[3]), nil)
    if at ~= ends then mine = 0 end
    redis.call('HSET', KEYS[1], ARGV[3], (mine + 1) .. ' ' .. ends)
  end
end
sweep(ARGV[2], ARGV[3])
if ends == nil then return {count, 0} end
return {count, ends - now}`)

// ARGV: field. Takes one hit back, never below zero.
export const UNHIT = new Script(THROTTLE_PRELUDE + `
local count, ends = counter(redis.call('HGET', KEYS[1], ARGV[1]), nil)
if ends ~= nil and count > 0 then redis.call('HSET', KEYS[1], ARGV[1], (count - 1) .. ' ' .. ends) end
return 1`)

// ARGV: field, share field. Takes the share (counted in the counter's current window) out of
// the counter and deletes the share: only the hits counted for that share, never others'.
export const RELEASE = new Script(THROTTLE_PRELUDE + `
local count, ends = counter(redis.call('HGET', KEYS[1], ARGV[1]), nil)
local mine, at = counter(redis.call('HGET', KEYS[1], ARGV[2]), nil)
if ends ~= nil and at == ends and mine > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], math.max(0, count - mine) .. ' ' .. ends)
end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1`)

// ARGV: expected, next. Sets the epoch copy to next only if it holds expected (a value that did
// not verify, never one written meanwhile). Returns the value it holds after.
export const REPLACE_EPOCH = new Script(`
local cur = redis.pcall('GET', KEYS[1])
if cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.pcall('GET', KEYS[1])`)

// ARGV: the caller's newest known epoch. Returns the epoch copy's value, raised to it if older.
export const EPOCH = new Script(`${RAISE}
return raise(KEYS[1], ARGV[1])`)

// KEYS: one epoch copy. ARGV: the next epoch, then copies of other slots on the same cluster
// node (a cluster routes by the declared keys, which must share a slot; Redis 7's
// `allow-cross-slot-keys` lets the script reach the node's other slots). Raises every one of them
// (`revokeAll` on a cluster: a few calls per node instead of one per slot). Returns how many.
export const RAISE_MANY = new Script(`#!lua flags=allow-cross-slot-keys
${RAISE}
raise(KEYS[1], ARGV[1])
for i = 2, #ARGV do raise(ARGV[i], ARGV[1]) end
return #ARGV`)

// KEYS: the session, its epoch copy. ARGV: the caller's newest known epoch, the prefix of user
// index keys ('' = do not read the index: on a cluster it lives in another slot). Returns {epoch,
// the session's index entry ('' when none or not read), the session's fields and values…} (no
// fields: no session). The index key is named by the record's own 'm:k' under the given prefix;
// the caller trusts the entry only for a record whose seal and user key verify.
export const READ = new Script(`${RAISE}
local out = redis.pcall('HGETALL', KEYS[1])
-- A key of another type (a writer's) is no session.
if out.err then out = {} end
local entry = ''
if ARGV[2] ~= '' then
  local user, ref
  for i = 1, #out, 2 do
    if out[i] == 'm:k' then user = out[i + 1] elseif out[i] == 'm:r' then ref = out[i + 1] end
  end
  if user and ref then
    local e = redis.pcall('HGET', ARGV[2] .. user, ref)
    if type(e) == 'string' then entry = e end
  end
end
table.insert(out, 1, entry)
table.insert(out, 1, raise(KEYS[2], ARGV[1]))
return out`)
