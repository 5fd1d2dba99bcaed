#!/usr/bin/env node
/**
 * `npx fastify-hardened-session <command>`: keys for the plugin's options, and operations on the
 * session store (see docs/operations.md).
 *
 *   gen-key, gen-secret              fresh keys (CSPRNG), printed to stdout only
 *   revoke-user <userId>             ends every session of a user, on every instance
 *   revoke-session <userId> <ref>    ends one session of a user (a ref from list-sessions)
 *   list-sessions <userId>           a user's live sessions, by ref (never ids), with user agent and IP
 *   revoke-all                       breach response: ends every session that exists now
 *   stats                            session records, tracked keys against the table limit, memory
 *
 * Redis from REDIS_URL (rediss:// for TLS; REDIS_CA, REDIS_CERT, REDIS_KEY are file paths),
 * SESSION_KEY_PREFIX (default sess:), for commands that take a user id the application's
 * secrets from SESSION_SECRETS (comma-separated, newest first) or SESSION_SECRET, and with
 * `encryption` its keys from SESSION_ENCRYPTION_KEYS (id:key pairs, newest first).
 *
 * Exit codes: 0 done, 1 failed (the reason on stderr), 2 usage, 3 nothing there (no live session
 * of that user id, no session with that ref, nothing under the key prefix): a mistyped user id
 * or prefix never looks like success.
 *
 * A main script only: it exports nothing and runs when executed (dist/cli/main.js through the
 * package's `bin`). It never prints a session id, a secret, a key, a password or the Redis URL;
 * recorded user agents are printed with control characters replaced (no terminal escapes).
 */
import { randomBytes } from 'node:crypto'
import { generateEncryptionKey } from '../crypto/encryption-keys.ts'

const USAGE = `Usage: fastify-hardened-session <command>

Keys:
  gen-key                  print a fresh 32-byte encryption key (base64url) for encryption.keys[].key
  gen-secret               print a fresh 32-byte cookie-signing secret (base64url) for secrets

Session store (Redis from REDIS_URL, keys under SESSION_KEY_PREFIX, default sess:):
  revoke-user <userId>     end every session of a user, on every instance (needs the secrets)
  revoke-session <userId> <ref>
                           end one session of a user, by the ref list-sessions shows
                           (needs the secrets)
  list-sessions <userId>   list a user's live sessions: ref, dates, user agent and IP when
                           recorded (needs the secrets) [--json]
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
  SESSION_ENCRYPTION_KEYS  with encryption: the plugin's encryption.keys as id:key pairs,
                           comma-separated, newest first (to list sessions, user agents, IPs)

Exit codes: 0 done, 1 failed (reason on stderr), 2 usage, 3 nothing there (no live session
of that user id, no session with that ref, nothing under the key prefix).
`

type Run = (args: readonly string[]) => Promise<number>

/** Exit code when the command found nothing to act on: a wrong user id, ref or prefix is not success. */
const NOTHING = 3

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

/** A recorded value (user agent, IP) fit for a terminal and a TSV column: no control characters. */
// A User-Agent is whatever the client sent: raw, an ESC sequence would drive the operator's terminal.
const printable = (text: string | undefined): string =>
  // eslint-disable-next-line no-control-regex
  text === undefined || text === '' ? '-' : text.replace(/[\x00-\x1f\x7f-\x9f]/g, '?')

/** Why nothing matched, said on stderr, in the prefix's terms (the user id is not echoed). */
function nothingFor (prefix: string): string {
  return `under key prefix '${prefix}' (check the user id, and SESSION_KEY_PREFIX: the application's keyPrefix)`
}

/** Runs a store command: opens the store from the environment, runs `body`, closes. */
async function withStore (
  needSecrets: boolean, body: (ops: import('./store-access.ts').Ops) => Promise<number>, reset = false
): Promise<number> {
  // Loaded only for store commands: gen-key and gen-secret stay instant.
  const { openOps, stderrLogger } = await import('./store-access.ts')
  let ops: import('./store-access.ts').Ops | undefined
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
    run: ([userId]) => withStore(true, async ({ admin, keys }) => {
      const n = await admin.revokeUser(userId as string)
      if (n === 0) {
        out(`no live session of that user id ${nothingFor(keys.prefix)}: nothing revoked`)
        return NOTHING
      }
      out(`revoked ${n} live session${n === 1 ? '' : 's'} of that user`)
      return 0
    }),
  },
  'revoke-session': {
    args: 2,
    run: ([userId, ref]) => withStore(true, async ({ admin, keys }) => {
      if (await admin.revokeSession(userId as string, ref as string)) {
        out('revoked that session, on every instance')
        return 0
      }
      out(`no live session with that ref for that user id ${nothingFor(keys.prefix)}: nothing revoked`)
      return NOTHING
    }),
  },
  'list-sessions': {
    args: 1,
    run: ([userId, flag]) => withStore(true, async (ops) => {
      const sessions = await ops.admin.listUserSessions(userId as string)
      const unlisted = await ops.unlisted(userId as string, sessions.length)
      if (unlisted !== undefined) {
        process.stderr.write(unlisted.reason === 'encrypted'
          ? `warning: ${unlisted.count} session(s) of that user keep the user id encrypted: ` +
            "set SESSION_ENCRYPTION_KEYS to the application's encryption keys (id:key, newest first) to list them\n"
          : `warning: ${unlisted.count} session(s) indexed under that user id could not be verified ` +
            'with these secrets: give every secret of the application (SESSION_SECRETS=newest,older)\n')
      }
      if (flag === '--json') {
        out(JSON.stringify(sessions.map((s) => ({
          ref: s.ref,
          createdAt: s.createdAt,
          lastSeenAt: s.lastSeenAt,
          expiresAt: s.expiresAt,
          authenticatedAt: s.authenticatedAt,
          ...(s.userAgent === undefined ? {} : { userAgent: s.userAgent }),
          ...(s.ip === undefined ? {} : { ip: s.ip }),
        }))))
      } else if (sessions.length > 0) {
        out(['ref', 'created', 'last seen', 'expires', 'authenticated', 'ip', 'user agent'].join('\t'))
        for (const s of sessions) {
          out([s.ref, date(s.createdAt), date(s.lastSeenAt), date(s.expiresAt), date(s.authenticatedAt),
            printable(s.ip), printable(s.userAgent)].join('\t'))
        }
      }
      if (sessions.length > 0) return 0
      if (unlisted !== undefined) return 1 // there are sessions, but these settings cannot show them
      const none = `no live session of that user id ${nothingFor(ops.keys.prefix)}`
      if (flag === '--json') process.stderr.write(`${none}\n`)
      else out(none)
      return NOTHING
    }),
  },
  'revoke-all': {
    args: 0,
    // The epoch is signed under the naming key, which only the application's secrets open.
    run: () => withStore(true, async ({ admin, keys, prefixInUse }) => {
      // A mistyped prefix would otherwise write an epoch where no application looks, and report success.
      if (!await prefixInUse()) {
        out(`nothing is stored under key prefix '${keys.prefix}' (no key ring, no epoch): nothing revoked. ` +
          "Is SESSION_KEY_PREFIX the application's keyPrefix?")
        return NOTHING
      }
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
        out('a new naming key, wrapped under SESSION_SECRETS only, and a new epoch: every session has ended; ' +
          'running instances with these secrets adopt the key')
        return 0
      }, true),
  },
  stats: {
    args: 0,
    run: ([flag]) => withStore(false, async (ops) => {
      const { collectStats } = await import('./store-access.ts')
      const s = await collectStats(ops)
      const unused = `nothing is stored under key prefix '${s.keyPrefix}': no key ring, no epoch, no session. ` +
        "Is SESSION_KEY_PREFIX the application's keyPrefix?"
      if (flag === '--json') {
        out(JSON.stringify(s))
        if (!s.prefixInUse) process.stderr.write(`${unused}\n`)
        return s.prefixInUse ? 0 : NOTHING
      }
      const limit = s.trackingTableMaxKeys === undefined
        ? 'unknown (CONFIG GET not permitted)'
        : s.trackingTableMaxKeys === 0 ? 'unlimited' : String(s.trackingTableMaxKeys)
      const share = s.trackedKeys !== undefined && s.trackingTableMaxKeys !== undefined && s.trackingTableMaxKeys > 0
        ? ` (${Math.round(100 * s.trackedKeys / s.trackingTableMaxKeys)}% of the limit)`
        : ''
      out(`key prefix:          ${s.keyPrefix}`)
      out(`session records:     ${s.sessionRecords} (live, or revoked by revoke-all until their TTL ends)`)
      out(`user indexes:        ${s.userIndexes}`)
      out(`revocation epoch:    ${s.epoch} (revoke-all count; 0: none yet)`)
      out(`tracked keys:        ${s.trackedKeys ?? 'unknown (INFO not permitted)'} / limit ${limit}${share}`)
      out(`tracked prefixes:    ${s.trackingPrefixes ?? 'unknown'} ` +
        '(the plugin tracks by prefix: its sessions need no table entry)')
      out('memory per session:  ' +
        `${s.bytesPerSession === undefined ? 'unknown' : `${s.bytesPerSession} bytes (mean of ${s.sampled})`}`)
      if (s.bytesPerSession !== undefined) {
        out(`sessions total:      ~${Math.round(s.bytesPerSession * s.sessionRecords / 1024)} KiB`)
      }
      if (s.usedMemory !== undefined) out(`redis used memory:   ${Math.round(s.usedMemory / 1024)} KiB`)
      if (!s.prefixInUse) {
        out(unused)
        return NOTHING
      }
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
  if (store !== undefined && positional.length === store.args &&
    (flags.length === 0 || command === 'stats' || command === 'list-sessions')) {
    return await store.run([...positional, ...flags])
  }
  return usage()
}

function usage (): number {
  process.stderr.write(USAGE)
  return 2
}

process.exitCode = await run(process.argv.slice(2))
