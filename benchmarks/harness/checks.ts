/**
 * Correctness checks run before a variant is timed: a server that answers wrongly (no user on
 * the read, a write that does not persist, a logout that does not revoke) must fail loudly
 * instead of producing a fast number.
 */
import { json, mergeCookies, send, type RequestSpec, type Response } from './http.ts'

export class CheckFailed extends Error {
  override name = 'CheckFailed'
}

export function expect (condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message)
}

export function expectOk (response: Response, what: string): void {
  expect(response.status >= 200 && response.status < 300, `${what} answered ${response.status}: ${response.body.slice(0, 200)}`)
}

export const LOGIN: RequestSpec = { method: 'POST', path: '/login' }
export const READ: RequestSpec = { method: 'GET', path: '/me' }
export const WRITE: RequestSpec = { method: 'POST', path: '/write' }
export const READ_N: RequestSpec = { method: 'GET', path: '/n' }
export const LOGOUT: RequestSpec = { method: 'POST', path: '/logout' }
/** The value the write check stores and reads back. */
export const PROBE_N = 424242

/** POST /login; returns the Cookie header carrying the session cookie(s) it set. */
export async function login (origin: string, spec: RequestSpec = LOGIN): Promise<string> {
  const response = await send(origin, spec)
  expectOk(response, `${spec.method} ${spec.path}`)
  const cookie = mergeCookies(undefined, response.cookies)
  expect(cookie !== undefined, `${spec.method} ${spec.path} set no cookie`)
  return cookie
}

/** GET /me answers the logged-in user (and the theme stored at login). */
export async function expectRead (origin: string, cookie: string | undefined, user = 'user-1', theme = 'dark'): Promise<void> {
  const response = await send(origin, READ, cookie)
  expectOk(response, 'GET /me')
  const body = json(response)
  expect(body['user'] === user && body['theme'] === theme,
    `GET /me answered ${response.body.slice(0, 200)}, expected user ${user} and theme ${theme}`)
}

/** GET /me without a cookie: no user, and no cookie set (nothing was created). */
export async function expectAnonymousRead (origin: string): Promise<void> {
  const response = await send(origin, READ)
  expectOk(response, 'GET /me (no cookie)')
  expect(json(response)['user'] === undefined, `GET /me without a cookie answered a user: ${response.body}`)
  expect(response.cookies.length === 0, 'GET /me without a cookie set a cookie')
}

/**
 * POST /write `{ n }` and read it back with GET /n (following a re-issued cookie, as a stateless
 * session needs). `persisted` then checks the store itself, where there is one.
 */
export async function expectWriteRoundTrip (origin: string, cookie: string, persisted?: (cookie: string) => Promise<void>): Promise<void> {
  const write = await send(origin, { ...WRITE, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: PROBE_N }) }, cookie)
  expectOk(write, 'POST /write')
  const after = mergeCookies(cookie, write.cookies) ?? cookie
  const read = await send(origin, READ_N, after)
  expectOk(read, 'GET /n')
  expect(json(read)['n'] === PROBE_N, `GET /n after writing ${PROBE_N} answered ${read.body.slice(0, 200)}`)
  await persisted?.(after)
}

/** login → read → logout → the old cookie no longer reads the user (revoked). */
export async function expectLoginLogout (origin: string): Promise<void> {
  const cookie = await login(origin)
  await expectRead(origin, cookie)
  const out = await send(origin, LOGOUT, cookie)
  expectOk(out, 'POST /logout')
  expect(out.clears, 'POST /logout did not clear the cookie')
  const again = await send(origin, READ, cookie)
  expectOk(again, 'GET /me after logout')
  expect(json(again)['user'] === undefined, `the cookie still reads a user after logout: ${again.body}`)
}

/** The value of a RESP2 bulk-string reply (`$n\r\n…\r\n`), or undefined for nil / other replies. */
export function bulkString (reply: string): string | undefined {
  const match = /^\$(\d+)\r\n/.exec(reply)
  if (match === null) return undefined
  const start = match[0].length
  return reply.slice(start, start + Number(match[1]))
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue (header: string, name: string): string | undefined {
  for (const pair of header.split(/;\s*/)) {
    if (pair.startsWith(name + '=')) return pair.slice(name.length + 1)
  }
  return undefined
}
