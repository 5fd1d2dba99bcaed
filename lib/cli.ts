#!/usr/bin/env node
/**
 * `npx fastify-hardened-session <command>`: keys for the plugin's options, and operations on the
 * session store (see docs/operations.md).
 *
 *   gen-key, gen-secret          fresh keys (CSPRNG), printed to stdout only
 *   revoke-user <userId>         ends every session of a user, on every instance
 *   list-sessions <userId>       a user's live sessions, by ref (never ids)
 *   revoke-all                   breach response: ends every session that exists now
 *   stats                        session records, tracked keys against the table limit, memory
 *
 * Redis from REDIS_URL (rediss:// for TLS; REDIS_CA, REDIS_CERT, REDIS_KEY are file paths),
 * SESSION_KEY_PREFIX (default sess:), and for commands that take a user id the application's
 * secrets from SESSION_SECRETS (comma-separated, newest first) or SESSION_SECRET.
 *
 * A main script only: it exports nothing and runs when executed (dist/cli.js through the
 * package's `bin`). It never prints a session id, a secret, a password or the Redis URL.
 */
import { randomBytes } from 'node:crypto'
import { generateEncryptionKey } from './crypto/keys.ts'

const USAGE = `Usage: fastify-hardened-session <command>

Keys:
  gen-key                  print a fresh 32-byte encryption key (base64url) for encryption.keys[].key
  gen-secret               print a fresh 32-byte cookie-signing secret (base64url) for secrets

Session store (Redis from REDIS_URL, keys under SESSION_KEY_PREFIX, default sess:):
  revoke-user <userId>     end every session of a user, on every instance (needs the secrets)
  list-sessions <userId>   list a user's live sessions by ref (needs the secrets) [--json]
  revoke-all               end every session that exists now (breach response; needs the secrets)
  reset-keyring --yes      start over: a new naming key wrapped under SESSION_SECRETS only, and
                           revoke-all (a leaked secret could unwrap the old key; needs the secrets)
  stats                    session records, user indexes, tracked keys vs the table limit,
                           memory per session [--json]
  --help, -h               show this help

Environment:
  REDIS_URL                redis://[user:password@]host:port, or rediss://… for TLS
  REDIS_CA, REDIS_CERT, REDIS_KEY
                           PEM file paths: the CA to trust, the client certificate and key (mTLS)
  REDIS_ALLOW_PLAINTEXT    true: allow plaintext to a non-loopback host when NODE_ENV=production
  SESSION_KEY_PREFIX       the plugin's keyPrefix (default sess:)
  SESSION_SECRETS          the plugin's secrets, comma-separated, newest first (or SESSION_SECRET)
`

type Run = (args: readonly string[]) => Promise<number>

const keyCommands: Record<string, () => string> = {
  'gen-key': () => generateEncryptionKey(),
  // Cookie HMAC key: 32 bytes from the CSPRNG, the HMAC-SHA256 output length (RFC 2104 §3:
  // keys shorter than the output length are strongly discouraged).
  'gen-secret': () => randomBytes(32).toString('base64url'),
}

function out (line: string): void {
  process.stdout.write(`${line}\n`)
}

/** One line for a failure: the coded message and, when the store gave one, its cause's code. */
function explain (err: unknown): string {
  const e = err as { code?: string, message?: string, cause?: { code?: string } }
  const cause = typeof e.cause?.code === 'string' ? ` (${e.cause.code})` : ''
  return `${e.code ?? 'error'}: ${e.message ?? String(err)}${cause}`
}

const date = (d: Date | undefined): string => d === undefined ? '-' : d.toISOString()

/** Runs a store command: opens the store from the environment, runs `body`, closes. */
async function withStore (needSecrets: boolean, body: (ops: import('./ops.ts').Ops) => Promise<number>, reset = false): Promise<number> {
  // Loaded only for store commands: gen-key and gen-secret stay instant.
  const { openOps, stderrLogger } = await import('./ops.ts')
  let ops: import('./ops.ts').Ops | undefined
  try {
    ops = await openOps(process.env, needSecrets, stderrLogger(), reset)
    return await body(ops)
  } catch (err) {
    process.stderr.write(`${explain(err)}\n`)
    return 1
  } finally {
    await ops?.close().catch(() => {})
  }
}

const storeCommands: Record<string, { args: number, run: Run }> = {
  'revoke-user': {
    args: 1,
    run: ([userId]) => withStore(true, async ({ admin }) => {
      const n = await admin.revokeUser(userId as string)
      out(`revoked ${n} live session${n === 1 ? '' : 's'} of that user`)
      return 0
    }),
  },
  'list-sessions': {
    args: 1,
    run: ([userId, flag]) => withStore(true, async ({ admin }) => {
      const sessions = await admin.listUserSessions(userId as string)
      if (flag === '--json') {
        out(JSON.stringify(sessions.map((s) => ({ ref: s.ref, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, expiresAt: s.expiresAt, authenticatedAt: s.authenticatedAt }))))
        return 0
      }
      if (sessions.length === 0) out('no live sessions')
      else out(['ref', 'created', 'last seen', 'expires', 'authenticated'].join('\t'))
      for (const s of sessions) out([s.ref, date(s.createdAt), date(s.lastSeenAt), date(s.expiresAt), date(s.authenticatedAt)].join('\t'))
      return 0
    }),
  },
  'revoke-all': {
    args: 0,
    // The epoch is signed under the naming key, which only the application's secrets open.
    run: () => withStore(true, async ({ admin }) => {
      await admin.revokeAll()
      out('every session that existed is revoked, on every instance; new logins work')
      return 0
    }),
  },
  'reset-keyring': {
    args: 1,
    run: ([confirm]) => confirm !== '--yes'
      ? Promise.resolve(usage())
      : withStore(true, async ({ admin }) => {
        await admin.revokeAll()
        out('a new naming key, wrapped under SESSION_SECRETS only, and a new epoch: every session has ended; running instances with these secrets adopt the key')
        return 0
      }, true),
  },
  stats: {
    args: 0,
    run: ([flag]) => withStore(false, async (ops) => {
      const { collectStats } = await import('./ops.ts')
      const s = await collectStats(ops)
      if (flag === '--json') {
        out(JSON.stringify(s))
        return 0
      }
      const limit = s.trackingTableMaxKeys === undefined ? 'unknown (CONFIG GET not permitted)' : s.trackingTableMaxKeys === 0 ? 'unlimited' : String(s.trackingTableMaxKeys)
      const share = s.trackedKeys !== undefined && s.trackingTableMaxKeys !== undefined && s.trackingTableMaxKeys > 0 ? ` (${Math.round(100 * s.trackedKeys / s.trackingTableMaxKeys)}% of the limit)` : ''
      out(`key prefix:          ${s.keyPrefix}`)
      out(`session records:     ${s.sessionRecords} (live, or revoked by revoke-all until their TTL ends)`)
      out(`user indexes:        ${s.userIndexes}`)
      out(`revocation epoch:    ${s.epoch} (revoke-all count; 0: none yet)`)
      out(`tracked keys:        ${s.trackedKeys ?? 'unknown (INFO not permitted)'} / limit ${limit}${share}`)
      out(`tracked prefixes:    ${s.trackingPrefixes ?? 'unknown'} (the plugin tracks by prefix: its sessions need no table entry)`)
      out(`memory per session:  ${s.bytesPerSession === undefined ? 'unknown' : `${s.bytesPerSession} bytes (mean of ${s.sampled})`}`)
      if (s.bytesPerSession !== undefined) out(`sessions total:      ~${Math.round(s.bytesPerSession * s.sessionRecords / 1024)} KiB`)
      if (s.usedMemory !== undefined) out(`redis used memory:   ${Math.round(s.usedMemory / 1024)} KiB`)
      return 0
    }),
  },
}

async function run (args: readonly string[]): Promise<number> {
  const [command, ...rest] = args
  if (command !== undefined && rest.length === 0 && keyCommands[command] !== undefined) {
    out(keyCommands[command]())
    return 0
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const store = command === undefined ? undefined : storeCommands[command]
  const flags = rest.filter((a) => a === '--json')
  const positional = rest.filter((a) => a !== '--json')
  if (store !== undefined && positional.length === store.args && (flags.length === 0 || command === 'stats' || command === 'list-sessions')) {
    return await store.run([...positional, ...flags])
  }
  return usage()
}

function usage (): number {
  process.stderr.write(USAGE)
  return 2
}

process.exitCode = await run(process.argv.slice(2))
