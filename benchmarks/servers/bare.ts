/**
 * The ceiling: bare Fastify with the same routes, answering constants (no session, no cookie).
 */
import Fastify from 'fastify'
import { serve, THEME, USER } from './common.ts'

const app = Fastify({ logger: false })
const me = { user: USER, theme: THEME }
const ok = { ok: true }

app.post('/login', async () => ok)
app.get('/me', async () => me)
app.post('/write', async () => ok)
app.get('/n', async () => ({ n: 0 }))
app.post('/logout', async () => ok)

await serve(app)
