/**
 * WebSocket upgrades (`@fastify/websocket`) go through Fastify's routing, so the session is
 * loaded for them like for any request: no `decryptSession` step as in `@fastify/session`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import WebSocket from 'ws'
import hardenedSession, { createMemoryStore } from '../lib/index.ts'
import { SECRET, sessionCookie } from './helpers/app.ts'

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
