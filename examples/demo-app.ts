/**
 * The demo application: a sign-in page, an account page with the session's self-service, and a
 * small JSON route. `demo.ts` runs it; the browser test (test-browser/) builds it in-process.
 *
 * Routes (HTML forms post and are answered with a page or a 303 to one; every form works
 * without script):
 *   GET  /                          sign-in page (303 to /account when signed in)
 *   GET  /account                   user, theme, devices (303 to / when signed out)
 *   POST /login                     loginWithPassword: 303 /account, 401, or 429 + Retry-After
 *   POST /register                  the same answer for a new and a taken name (see below)
 *   POST /logout                    logout (Clear-Site-Data), 303 /
 *   POST /switch-user               logout, then loginWithPassword, in one request
 *   POST /theme                     theme in the session (signed in or not)
 *   POST /devices/sign-out          revokeSession(user, ref): "sign out this device" per row
 *   POST /devices/sign-out-others   revokeOthers()
 *   GET  /me                        JSON about this session (401 when signed out)
 *   GET  /demo.js, /demo.css, /favicon.svg, /favicon.ico   static, no session
 *
 * What it shows, and why:
 * - Enter logs in: the form's action and first (default) button are Log in; Register is a
 *   second button with `formaction`, so only a click on it registers.
 * - Registration does not tell who has an account: a new and a taken name get the same answer
 *   after the same work (one argon2id hash, policy checked before the name is looked at); only a
 *   new name is stored. Whoever claims a name still learns whether it was theirs by signing in
 *   with it, but that is a login attempt, throttled per account and IP. (A real application
 *   would answer "check your e-mail" and mail the owner of a taken address instead.) With
 *   script, "Create account" posts in the background and the page keeps both fields, so Enter
 *   then logs in; without, the answer page has the name filled in and the cursor in the password.
 * - A device whose session ended elsewhere ("sign out" on another device, or expiry) still
 *   sends its dead cookie: its next page says so once, and the dead cookie is cleared.
 * - One error page for every error (404, 403, 503, …), in the page's theme; JSON for API calls.
 * - Login answers the same for an unknown name and a wrong password; after 5 failures for one
 *   name in 5 minutes (lower than the plugin's default, to be seen quickly) it answers 429 with
 *   Retry-After and a readable countdown.
 * - The theme lives in the session: it survives reloads (rendered on the server), is kept
 *   through sign-in (same visitor), and ends with logout (a new visitor starts light).
 * - Private responses are `Cache-Control: no-store` (the plugin's default for logged-in
 *   sessions; this app sends it on every page), so Back after logout re-asks the server.
 * - Headers on every response: `Content-Security-Policy: default-src 'none'; script-src 'self';
 *   style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self';
 *   frame-ancestors 'none'; base-uri 'none'` (no inline script or style), `nosniff`,
 *   `Referrer-Policy: same-origin` (not `no-referrer`: with it, browsers send `Origin: null` on
 *   the page's own form posts, which the plugin's csrf check refuses as foreign).
 */
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import hardenedSession, { createMemoryStore, SessionError, type HardenedSessionOptions, type PasswordOptions } from '../lib/index.ts'
import { accountPage, errorPage, signInPage, type Notice, type SignInView, type Theme } from './demo-page.ts'

declare module '../lib/index.ts' {
  interface SessionData {
    theme: Theme
  }
}

export interface DemoOptions {
  /** Cookie-signing secret, at least 32 bytes. */
  secret: string
  /** Redis instead of the embedded memory store. */
  redisUrl?: string
  /** The plugin's `clearSiteData` option (default: the plugin's, `'"cache"'`). */
  clearSiteData?: string | false
  /** The plugin's `password` (argon2id) options (default: the plugin's). */
  password?: PasswordOptions
  /**
   * The plugin's `deviceBound` option (default on, with the plugin's defaults): a browser with
   * Device Bound Session Credentials binds its session to a key, and the devices list says so.
   */
  deviceBound?: HardenedSessionOptions['deviceBound']
  /** The plugin's `allowShortDurations` (tests: a bound cookie of a few seconds). */
  allowShortDurations?: boolean
  /** Serve HTTPS with this certificate (browsers run device-bound sessions over HTTPS). */
  https?: { cert: string, key: string }
  logger?: FastifyServerOptions['logger']
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const asset = (name: string): string => readFileSync(new URL(name, import.meta.url), 'utf8')
const STATIC = {
  js: asset('./demo-client.js'),
  css: asset('./demo.css'),
  svg: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#2d6cdf"/>' +
    '<path d="M10 15v-3a6 6 0 0 1 12 0v3" fill="none" stroke="#fff" stroke-width="3"/><rect x="8" y="15" width="16" height="11" rx="2" fill="#fff"/></svg>',
}

const USERNAME = /^[a-z0-9_.-]{1,64}$/
const COOKIE = '__Host-sid' // the plugin's default cookie name

interface User { id: string, hash: string }

/** Username (NFKC, lower-cased: `Alice` and `alice` are one account, as for the throttle) and password from a form or JSON body. */
function credentials (body: unknown): { username: string, password: string } | undefined {
  const { username, password } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  if (typeof username !== 'string' || typeof password !== 'string' || password === '') return undefined
  const name = username.normalize('NFKC').toLowerCase()
  return USERNAME.test(name) ? { username: name, password } : undefined
}

function field (body: unknown, name: string): string | undefined {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined
  return typeof value === 'string' ? value : undefined
}

const PASSWORD_ERRORS: Partial<Record<string, string>> = {
  FST_PASSWORD_TOO_SHORT: 'Choose a password of at least 8 characters.',
  FST_PASSWORD_TOO_LONG: 'That password is too long.',
  FST_PASSWORD_EMPTY: 'Enter a password.',
  FST_PASSWORD_INVALID: 'That password contains characters that cannot be used.',
}

function humanDuration (seconds: number): string {
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`
}

export async function buildDemo (options: DemoOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false, ...(options.https === undefined ? {} : { https: options.https }) }) as unknown as FastifyInstance
  const storeOption: Pick<HardenedSessionOptions, 'redis' | 'store'> = options.redisUrl !== undefined && options.redisUrl !== ''
    ? { redis: { url: options.redisUrl } }
    : { store: createMemoryStore() }
  await app.register(hardenedSession, {
    secrets: [options.secret],
    ...storeOption,
    sessionInfo: { userAgent: true, ip: true }, // for the devices list
    loginThrottle: { perAccount: { max: 5, windowMs: 5 * 60_000 } },
    ...(options.clearSiteData === undefined ? {} : { clearSiteData: options.clearSiteData }),
    ...(options.password === undefined ? {} : { password: options.password }),
    deviceBound: options.deviceBound ?? {},
    ...(options.allowShortDurations === true ? { allowShortDurations: true } : {}),
  } as HardenedSessionOptions)

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8192 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('content-security-policy', CSP)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'same-origin')
    reply.header('cross-origin-opener-policy', 'same-origin')
    // Pages depend on the cookie: never stored by any cache (the plugin already does this for logged-in sessions).
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    done(null, payload)
  })

  const users = new Map<string, User>() // a real app keeps them in its database

  const themeOf = (req: FastifyRequest): Theme => req.session?.get('theme') === 'dark' ? 'dark' : 'light'
  const html = (reply: FastifyReply, status: number, body: string): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').send(body)
  const signIn = (req: FastifyRequest, reply: FastifyReply, status: number, notice: Notice, username?: string, view: SignInView = {}): FastifyReply =>
    html(reply, status, signInPage(themeOf(req), { ...view, notice, ...(username === undefined ? {} : { username }) }))
  const wantsHtml = (req: FastifyRequest): boolean => req.headers.accept?.includes('text/html') === true

  /** Password login for /login and /switch-user: 303 to the account, or the sign-in page with 401/429. */
  async function passwordLogin (req: FastifyRequest, reply: FastifyReply, c: { username: string, password: string }, failed: string): Promise<FastifyReply> {
    const user = users.get(c.username)
    let result: { ok: boolean, newHash?: string }
    try {
      // Throttled per account and IP, origin-checked, the same argon2id cost for an unknown name.
      result = await req.session.loginWithPassword({ account: c.username, hash: user?.hash, password: c.password, ...(user === undefined ? {} : { userId: user.id }) })
    } catch (err) {
      if (err instanceof SessionError && err.code === 'FST_SESSION_LOGIN_THROTTLED') {
        const seconds = Number(err.headers?.['retry-after'] ?? 60)
        reply.header('retry-after', String(seconds))
        return signIn(req, reply, 429, {
          kind: 'error',
          text: `Too many failed sign-ins for this name or from this network. Try again in ${humanDuration(seconds)}.`,
          retryAfter: seconds,
        }, c.username)
      }
      const message = err instanceof SessionError ? PASSWORD_ERRORS[err.code] : undefined
      if (message !== undefined) return signIn(req, reply, 400, { kind: 'error', text: message }, c.username)
      throw err
    }
    if (!result.ok || user === undefined) return signIn(req, reply, 401, { kind: 'error', text: failed }, c.username)
    if (result.newHash !== undefined) user.hash = result.newHash
    return reply.redirect('/account', 303)
  }

  const BAD_INPUT: Notice = { kind: 'error', text: 'Enter a username (letters, digits, . _ -, at most 64) and a password.' }

  app.get('/', async (req, reply) => {
    if (req.session.userId !== undefined) return reply.redirect('/account', 303)
    // A session cookie that names no session: this device was signed out elsewhere (or its
    // session expired). Say so once, and drop the dead cookie.
    if (req.session.isNew && req.cookies[COOKIE] !== undefined) {
      reply.clearCookie(COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'lax' })
      return html(reply, 200, signInPage(themeOf(req), {
        notice: { kind: 'info', text: 'You were signed out: this device\'s session was ended from another device, or it expired. Log in again to continue.' },
      }))
    }
    return html(reply, 200, signInPage(themeOf(req)))
  })

  app.get('/account', async (req, reply) => {
    const userId = req.session.userId
    if (userId === undefined) return reply.redirect('/', 303)
    const count = Number((req.query as Record<string, unknown>)['signed-out'])
    const notice: Notice | undefined = Number.isSafeInteger(count) && count >= 0
      ? { kind: 'info', text: count === 0 ? 'No other device was signed out.' : `Signed out ${count} other device${count === 1 ? '' : 's'}.` }
      : undefined
    return html(reply, 200, accountPage({
      user: userId.slice('user:'.length),
      theme: themeOf(req),
      thisRef: req.session.ref,
      devices: await app.session.listUserSessions(userId),
      ...(notice === undefined ? {} : { notice }),
    }))
  })

  app.post('/login', async (req, reply) => {
    const c = credentials(req.body)
    if (c === undefined) return signIn(req, reply, 400, BAD_INPUT)
    return await passwordLogin(req, reply, c, 'Invalid username or password.')
  })

  app.post('/register', async (req, reply) => {
    const c = credentials(req.body)
    if (c === undefined) return signIn(req, reply, 400, BAD_INPUT)
    let hash: string
    try {
      // Hashed before the name is looked at: a taken name costs the same and fails the same policy.
      hash = await app.passwords.hashPassword(c.password)
    } catch (err) {
      const message = err instanceof SessionError ? PASSWORD_ERRORS[err.code] : undefined
      if (message !== undefined) return signIn(req, reply, 400, { kind: 'error', text: message }, c.username)
      throw err
    }
    if (!users.has(c.username)) users.set(c.username, { id: `user:${c.username}`, hash })
    // demo.js posts in the background and keeps the password in its field; a plain form post
    // comes back to an empty password field.
    const inPlace = req.headers['x-demo-in-place'] === '1'
    return signIn(req, reply, 200, {
      kind: 'info',
      text: `If the name “${c.username}” was free, it is yours now: ${inPlace ? 'press Log in (or Enter) to sign in with it.' : 'enter its password again and log in.'}`,
    }, c.username, { focusPassword: true })
  })

  app.post('/logout', async (req, reply) => {
    await req.session.logout()
    return reply.redirect('/', 303)
  })

  app.post('/switch-user', { preHandler: app.requireLogin }, async (req, reply) => {
    const c = credentials(req.body)
    if (c === undefined) return signIn(req, reply, 400, BAD_INPUT)
    // One request, two steps: the old session ends (Clear-Site-Data) and a new one starts. The
    // plugin never sends a directive that would wipe the new cookie beside it.
    await req.session.logout()
    return await passwordLogin(req, reply, c, 'You are signed out. The username or password for the other account was not right.')
  })

  app.post('/theme', async (req, reply) => {
    // The plugin's csrf check covers requests carrying the session cookie. A cross-site POST
    // arrives without it (SameSite=Lax), so here it would start a new session whose cookie
    // replaces the visitor's (signing them out), and whose data a later sign-in keeps.
    const site = req.headers['sec-fetch-site']
    if (req.session.isNew && site !== undefined && site !== 'same-origin' && site !== 'none') {
      throw new SessionError('FST_SESSION_CSRF') // the same refusal, and the same page, as the plugin's
    }
    req.session.set('theme', field(req.body, 'theme') === 'dark' ? 'dark' : 'light')
    return reply.redirect(field(req.body, 'back') === '/account' ? '/account' : '/', 303)
  })

  app.post('/devices/sign-out', { preHandler: app.requireLogin }, async (req, reply) => {
    const ref = field(req.body, 'ref') ?? ''
    if (ref === req.session.ref) {
      await req.session.logout()
      return reply.redirect('/', 303)
    }
    const done = await app.session.revokeSession(req.session.userId as string, ref)
    return reply.redirect(`/account?signed-out=${done ? 1 : 0}`, 303)
  })

  app.post('/devices/sign-out-others', { preHandler: app.requireLogin }, async (req, reply) => {
    const count = await req.session.revokeOthers()
    return reply.redirect(`/account?signed-out=${count}`, 303)
  })

  app.get('/me', { preHandler: app.requireLogin }, async (req) => ({
    user: (req.session.userId as string).slice('user:'.length),
    theme: themeOf(req),
    ref: req.session.ref,
    authenticatedAt: req.session.authenticatedAt,
    expiresAt: req.session.expiresAt,
    devices: (await app.session.listUserSessions(req.session.userId as string)).length,
  }))

  const noSession = { config: { session: false } }
  const revalidate = 'no-cache'
  app.get('/demo.js', noSession, async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', revalidate).send(STATIC.js))
  app.get('/demo.css', noSession, async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', revalidate).send(STATIC.css))
  for (const path of ['/favicon.svg', '/favicon.ico']) {
    app.get(path, noSession, async (_req, reply) => reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(STATIC.svg))
  }

  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status >= 500) req.log.error({ err }, 'request failed')
    else req.log.info({ code: err.code }, 'request refused')
    // A page's form posted by a device whose session ended elsewhere: to the sign-in page, which says why.
    if (err.code === 'FST_SESSION_UNAUTHENTICATED' && wantsHtml(req)) return reply.redirect('/', 303)
    const code = err instanceof SessionError ? err.code : undefined
    if (wantsHtml(req)) return html(reply, status, errorPage(themeOf(req), status, code))
    // Messages of the plugin's errors are fixed strings; anything else unexpected is not shown.
    const text = err instanceof SessionError || status < 500 ? err.message : 'Something went wrong.'
    return reply.code(status).send({ statusCode: status, code: err.code, message: text })
  })

  app.setNotFoundHandler((req, reply) => {
    if (wantsHtml(req)) return html(reply, 404, errorPage(themeOf(req), 404, undefined))
    return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'Not found' })
  })

  return app
}
