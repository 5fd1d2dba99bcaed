/**
 * Session ids and the names derived from them.
 *
 * Protects against: guessing ids (256 bits from the OS CSPRNG, OWASP Session Management Cheat
 * Sheet asks for ≥ 64 bits of entropy), and replay of a leaked store (the store only ever sees a
 * SHA-256 of the id, so a copy of Redis does not contain any valid cookie).
 */
import { hash } from 'node:crypto'
import { randomToken } from './random.ts'

/** Length of an id: 32 random bytes in base64url without padding. */
export const ID_LENGTH = 43
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/

/** A new session id: 256 bits from `crypto.randomBytes` (random.ts), base64url. */
export function generateId (): string {
  return randomToken(32)
}

export function isWellFormedId (id: string): boolean {
  return id.length === ID_LENGTH && ID_PATTERN.test(id)
}

/**
 * One-way name of a session in the store: SHA-256 of the id, base64url. A plain hash suffices
 * because the id carries 256 bits of entropy (nothing to brute-force); the store never sees the id.
 */
export function storageHash (id: string): string {
  return hash('sha256', id, 'base64url')
}

/**
 * A session's lineage reference for logs, events and `listUserSessions`: 72 random bits,
 * unrelated to the id (knowing it grants nothing), stable across regenerate and re-login.
 */
export function generateRef (): string {
  return randomToken(9)
}

export const REF_PATTERN = /^[A-Za-z0-9_-]{12}$/
