/**
 * Demo: a small login app on fastify-hardened-session.
 *
 *   npm install && npm run demo            # memory store, http://127.0.0.1:3000
 *   REDIS_URL=redis://127.0.0.1:6379 npm run demo
 *
 * Routes: GET / (HTML page), POST /register, POST /login, GET /me, POST /theme, POST /logout.
 * Users live in memory (a real app keeps them in its database). A wrong password and an unknown
 * user get the same answer after the same work, so the login form does not reveal who exists.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions } from '../lib/index.ts'

declare module '../lib/index.ts' {
  interface SessionData {
    theme: 'light' | 'dark'
  }
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fastify-hardened-session demo</title>
<style>body{font:16px system-ui;max-width:36rem;margin:3rem auto;padding:0 1rem}input,button{font:inherit;margin:.2rem}pre{background:#f4f4f4;padding:.8rem}body.dark{background:#222;color:#eee}body.dark pre{background:#333}</style>
</head><body>
<h1>fastify-hardened-session</h1>
<p>Register or log in; the session cookie is <code>__Host-sid</code> (HttpOnly, Secure, SameSite=Lax).</p>
<form id="f"><input name="username" placeholder="username" autocomplete="username" required>
<input name="password" type="password" placeholder="password" autocomplete="current-password" required>
<button data-action="/register">Register</button><button data-action="/login">Log in</button></form>
<p><button id="me">Who am I?</button> <button id="theme">Toggle theme</button> <button id="logout">Log out</button></p>
<pre id="out">…</pre>
<script>
const out = document.getElementById('out')
async function call (path, body) {
  const res = await fetch(path, { method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = await res.json()
  out.textContent = res.status + ' ' + JSON.stringify(json, null, 2)
  if (json.theme) document.body.className = json.theme
  return json
}
document.querySelectorAll('[data-action]').forEach((b) => b.addEventListener('click', (e) => {
  e.preventDefault()
  const f = new FormData(document.getElementById('f'))
  call(b.dataset.action, { username: f.get('username'), password: f.get('password') })
}))
document.getElementById('me').onclick = () => call('/me')
document.getElementById('theme').onclick = () => call('/theme', { theme: document.body.className === 'dark' ? 'light' : 'dark' })
document.getElementById('logout').onclick = () => call('/logout', {})
</script></body></html>`

const port = Number(process.env.PORT ?? 3000)
const redisUrl = process.env.REDIS_URL
const secret = process.env.SESSION_SECRET ?? randomBytes(32).toString('base64url')

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
const storeOption: Partial<HardenedSessionOptions> = redisUrl !== undefined && redisUrl !== ''
  ? { redis: { url: redisUrl } }
  : { store: createMemoryStore() }
await app.register(hardenedSession, { secrets: [secret], ...storeOption } as HardenedSessionOptions)

const users = new Map<string, { id: string, hash: string }>()

interface Credentials { username?: unknown, password?: unknown }
function credentials (body: unknown): { username: string, password: string } | undefined {
  const { username, password } = (body ?? {}) as Credentials
  if (typeof username !== 'string' || typeof password !== 'string') return undefined
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(username) || password.length === 0) return undefined
  return { username, password }
}

app.get('/', { config: { session: false } }, async (_req, reply) => {
  reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
  return PAGE
})

app.post('/register', async (req, reply) => {
  const c = credentials(req.body)
  if (c === undefined) return reply.code(400).send({ error: 'username (letters, digits, . _ -) and password required' })
  if (users.has(c.username)) return reply.code(409).send({ error: 'username taken' })
  const hash = await app.passwords.hash(c.password)
  users.set(c.username, { id: `user:${c.username}`, hash })
  await req.session.login(`user:${c.username}`)
  return { ok: true, user: c.username }
})

app.post('/login', async (req, reply) => {
  const c = credentials(req.body)
  const user = c === undefined ? undefined : users.get(c.username)
  // verify(null) runs a dummy verify: unknown users cost the same as wrong passwords.
  const { ok, newHash } = await app.passwords.verifyAndUpgrade(user?.hash ?? null, c?.password ?? '')
  if (!ok || user === undefined) return reply.code(401).send({ error: 'invalid username or password' })
  if (newHash !== undefined) user.hash = newHash
  await req.session.login(user.id)
  return { ok: true, user: c?.username }
})

app.get('/me', { preHandler: app.requireLogin }, async (req) => ({
  user: req.session.userId,
  theme: req.session.get('theme') ?? 'light',
  authenticatedAt: req.session.authenticatedAt,
  expiresAt: req.session.expiresAt,
  sessions: (await app.session.listUserSessions(req.session.userId as string)).length,
}))

app.post('/theme', { preHandler: app.requireLogin }, async (req) => {
  const theme = (req.body as { theme?: unknown } | undefined)?.theme === 'dark' ? 'dark' : 'light'
  req.session.set('theme', theme)
  return { ok: true, theme }
})

app.post('/logout', async (req) => {
  await req.session.logout()
  return { ok: true }
})

await app.listen({ host: '127.0.0.1', port })
app.log.info(`demo listening on http://127.0.0.1:${port} with the ${redisUrl !== undefined && redisUrl !== '' ? 'Redis store (REDIS_URL)' : 'embedded memory store (set REDIS_URL to use Redis)'}`)
if (process.env.SESSION_SECRET === undefined) app.log.warn('SESSION_SECRET not set: using a random secret, sessions end when the demo restarts')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
