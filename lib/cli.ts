#!/usr/bin/env node
/**
 * `npx fastify-hardened-session <command>`: prints fresh keys for the plugin's options.
 *
 *   gen-key     a 32-byte AES-256 key for `encryption.keys[].key` (base64url)
 *   gen-secret  a 32-byte cookie-signing secret for `secrets` (base64url)
 *
 * A main script only: it exports nothing and runs when executed (dist/cli.js through the
 * package's `bin`). Keys come from the CSPRNG (`crypto.randomBytes`) and go to stdout only.
 */
import { randomBytes } from 'node:crypto'
import { generateEncryptionKey } from './crypto/keys.ts'

const USAGE = `Usage: fastify-hardened-session <command>

Commands:
  gen-key      print a fresh 32-byte encryption key (base64url) for encryption.keys[].key
  gen-secret   print a fresh 32-byte cookie-signing secret (base64url) for secrets
  --help, -h   show this help
`

function run (args: readonly string[]): number {
  const command = args[0]
  if (args.length === 1 && command === 'gen-key') {
    process.stdout.write(`${generateEncryptionKey()}\n`)
    return 0
  }
  if (args.length === 1 && command === 'gen-secret') {
    // Cookie HMAC key: 32 bytes from the CSPRNG, the HMAC-SHA256 output length (RFC 2104 §3:
    // keys shorter than the output length are strongly discouraged).
    process.stdout.write(`${randomBytes(32).toString('base64url')}\n`)
    return 0
  }
  if (args.length === 1 && (command === '--help' || command === '-h' || command === 'help')) {
    process.stdout.write(USAGE)
    return 0
  }
  process.stderr.write(USAGE)
  return 2
}

process.exitCode = run(process.argv.slice(2))
