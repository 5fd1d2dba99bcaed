/**
 * WebSocket upgrades (`@fastify/websocket`) go through Fastify's routing, so the session is
 * loaded for them like for any request: no `decryptSession` step as in `@fastify/session`. An
 * upgrade is a GET that a page on another origin can start with the visitor's cookie (the
 * browser sends the Lax cookie to a sibling subdomain's handshake): it is origin-checked like an
 * unsafe request (cross-site WebSocket hijacking). Real handshakes with `ws`, and raw ones.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createConnection } from 'node:net'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import WebSocket from 'ws'
import hardenedSession, { createMemoryStore, type HardenedSessionOptions, type SessionEvent, type SessionStore } from '../lib/index.ts'
import { SECRET, eventually, sessionCookie } from './helpers/app.ts'

test('websocket: an upgrade request carries request.session (the logged-in user), a cookieless one an anonymous session', async () => {
  const app = Fastify()
  await app.register(hardenedSession, { secrets: [SECRET], store: createMemoryStore() })
  await app.register(fastifyWebsocket)
  app.post('/login', async (req) => { await req.session.login('u-ws'); return 'ok' })
  app.get('/ws', { websocket: true }, (socket, req) => {
    socket.send(JSON.stringify({ user: req.session.userId ?? null }))
    socket.close()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  try {
    const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login' })) ?? ''
    const first = async (headers: Record<string, string>): Promise<unknown> => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers })
      const [data] = await once(ws, 'message') as [Buffer]
      return JSON.parse(data.toString())
    }
    assert.deepEqual(await first({ cookie }), { user: 'u-ws' })
    assert.deepEqual(await first({}), { user: null })
  } finally {
    await app.close()
  }
})

/** A real memory store whose calls are counted (instrumentation, not a stand-in). */
function counted (): { store: SessionStore, calls: () => number } {
  const store = createMemoryStore()
  let calls = 0
  const proxy = new Proxy(store, {
    get (target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'stats' || prop === 'close') return value
      return (...args: unknown[]) => { calls++; return (value as (...a: unknown[]) => unknown).apply(target, args) }
    },
  })
  return { store: proxy, calls: () => calls }
}

/** An app on a real port serving /ws, whose handler reports the session user; `opened` counts handler runs. */
async function wsApp (options: Partial<HardenedSessionOptions> = {}) {
  const { store, calls } = counted()
  const events: SessionEvent[] = []
  const app = Fastify()
  await app.register(hardenedSession, { secrets: [SECRET], store, onEvent: (e) => { events.push(e) }, ...options })
  await app.register(fastifyWebsocket)
  let opened = 0
  app.post('/login', async (req) => { await req.session.login('u-ws'); return 'ok' })
  app.get('/ws', { websocket: true }, (socket, req) => {
    opened++
    socket.send(JSON.stringify({ user: req.session.userId ?? null }))
    socket.close()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login' })) ?? ''
  return { app, port, cookie, events, calls, opened: () => opened }
}

/** A real handshake with `ws`: the first message, or the HTTP status of a refused upgrade and its body. */
function handshake (port: number, headers: Record<string, string>): Promise<{ message: unknown } | { status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: 'app.example.com', ...headers } })
    ws.once('message', (data: Buffer) => { resolve({ message: JSON.parse(data.toString()) }); ws.close() })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    ws.once('error', reject)
  })
}

/**
 * A handshake written by hand on a TCP socket (odd header forms a client library would not
 * send): the status line, and whether the server closed the connection within 2 s (it stays
 * open after a 101).
 */
async function rawHandshake (port: number, lines: string[]): Promise<{ status: string, closed: boolean }> {
  const socket = createConnection({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true))
    setTimeout(() => resolve(false), 2000).unref()
  })
  socket.write(['GET /ws HTTP/1.1', 'Host: app.example.com', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...lines, '', ''].join('\r\n'))
  const [chunk] = await once(socket, 'data') as [Buffer]
  socket.resume() // keep reading, so the server's close is seen
  const status = chunk.toString().split('\r\n')[0] as string
  const result = { status, closed: status.includes(' 101 ') ? false : await closed }
  socket.destroy()
  return result
}

test('websocket: a handshake carrying the session cookie from a same-site sibling origin or another site is refused with 403 FST_SESSION_CSRF before the handler, with no store call', async () => {
  const { app, port, cookie, events, calls, opened } = await wsApp()
  try {
    const before = calls()
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://chat.example.com', 'sec-fetch-site': 'same-site' }, // a sibling subdomain: the Lax cookie is sent
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: 'https://evil.example' }, // no Fetch Metadata (older browsers)
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
      { origin: 'https://app.example.com' }, // https page, ws:// request: another origin (scheme)
    ]
    for (const headers of foreign) {
      const res = await handshake(port, { cookie, ...headers })
      assert.ok('status' in res, `${JSON.stringify(headers)} was upgraded`)
      assert.equal(res.status, 403, JSON.stringify(headers))
      assert.equal(JSON.parse(res.body).code, 'FST_SESSION_CSRF')
    }
    assert.equal(opened(), 0, 'no handler ran')
    assert.equal(calls(), before, 'no store access for a refused handshake')
    assert.equal(events.filter((e) => e.type === 'csrf').length, foreign.length)
  } finally {
    await app.close()
  }
})

test('websocket: same-origin and trusted-origin handshakes and clients without Origin or Fetch Metadata connect with the session', async () => {
  const { app, port, cookie } = await wsApp({ csrf: { trustedOrigins: ['https://app.example.net'] } })
  try {
    assert.deepEqual(await handshake(port, { cookie, origin: 'http://app.example.com', 'sec-fetch-site': 'same-origin' }), { message: { user: 'u-ws' } })
    assert.deepEqual(await handshake(port, { cookie, origin: 'http://app.example.com' }), { message: { user: 'u-ws' } })
    assert.deepEqual(await handshake(port, { cookie, origin: 'https://app.example.net', 'sec-fetch-site': 'cross-site' }).then((r) => 'status' in r ? r.status : r), 403, 'cross-site metadata wins over a trusted Origin')
    assert.deepEqual(await handshake(port, { cookie, origin: 'https://app.example.net', 'sec-fetch-site': 'same-site' }), { message: { user: 'u-ws' } })
    assert.deepEqual(await handshake(port, { cookie }), { message: { user: 'u-ws' } }, 'a non-browser client')
    assert.deepEqual(await handshake(port, { origin: 'https://evil.example' }), { message: { user: null } }, 'a foreign page without the cookie gets no session')
  } finally {
    await app.close()
  }
})

test('websocket: odd handshakes (Upgrade in any case, in a list, with spaces; Sec-Fetch-Mode websocket) are origin-checked all the same, and the server closes a refused one', async () => {
  const { app, port, cookie, opened } = await wsApp()
  try {
    const foreign = ['Origin: https://evil.example', `Cookie: ${cookie}`]
    for (const upgrade of ['Upgrade: WebSocket', 'Upgrade: websocket, h2c', 'Upgrade:   WEBSOCKET  ', 'Upgrade: h2c, websocket']) {
      assert.deepEqual(await rawHandshake(port, ['Connection: Upgrade', upgrade, ...foreign]), { status: 'HTTP/1.1 403 Forbidden', closed: true }, upgrade)
    }
    assert.deepEqual(await rawHandshake(port, ['Connection: keep-alive, Upgrade', 'Upgrade: websocket', 'Sec-Fetch-Mode: websocket', ...foreign]), { status: 'HTTP/1.1 403 Forbidden', closed: true })
    const own = await rawHandshake(port, ['Connection: Upgrade', 'Upgrade: websocket', 'Origin: http://app.example.com', `Cookie: ${cookie}`])
    assert.equal(own.status, 'HTTP/1.1 101 Switching Protocols', 'the same handshake from the own origin is upgraded')
    await eventually(async () => opened() === 1, 1000, 'the handler ran once')
  } finally {
    await app.close()
  }
})
