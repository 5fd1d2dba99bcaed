/**
 * Random tokens (session ids, lineage refs) drawn from one `crypto.randomBytes` call per
 * POOL_BYTES instead of one per token: a CSPRNG call costs ~2–3 µs whatever its size, more than
 * the rest of making an id.
 *
 * Protects against: a token's bytes being handed out twice (each byte is used once, then the
 * pool moves past it), and a memory disclosure revealing tokens already issued (their bytes are
 * zeroed as they are taken). Bytes not yet taken are future tokens, as the CSPRNG's own state is.
 */
import { randomBytes } from 'node:crypto'

/** Bytes per CSPRNG call: about 20 logins' ids and refs. */
const POOL_BYTES = 1024

let pool = Buffer.alloc(0)
let offset = 0

/** `bytes` fresh random bytes, base64url without padding (a token over POOL_BYTES gets a draw of its own size). */
export function randomToken (bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes))
    offset = 0
  }
  const end = offset + bytes
  const token = pool.toString('base64url', offset, end)
  pool.fill(0, offset, end)
  offset = end
  return token
}
