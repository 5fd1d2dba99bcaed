/**
 * Self-test of test/helpers/tcp-proxy.ts against a real redis-server: forwarding, stalls in each
 * direction (held, then delivered in order), connections opened during a stall, cut and close.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import { EventEmitter, once } from 'node:events'
import { createClient, SocketClosedUnexpectedlyError } from 'redis'
import { startRedis, type RedisServer } from './redis-server.ts'
import { startProxy, type TcpProxy } from './tcp-proxy.ts'

let redis: RedisServer
let proxy: TcpProxy
before(async () => {
  redis = await startRedis()
  proxy = await startProxy(redis.port)
})
after(async () => {
  await proxy?.close()
  await redis?.stop()
})

interface RawClient {
  readonly socket: Socket
  readonly data: string
  readonly closed: boolean
  send (...args: string[]): void
  /** Resolves true as soon as `check` holds (tested on every data/close event), false after `ms`. */
  until (check: () => boolean, ms: number): Promise<boolean>
}

/** A plain socket speaking RESP, recording every byte it receives. */
async function rawClient (port: number): Promise<RawClient> {
  const socket = createConnection({ host: '127.0.0.1', port })
  socket.setEncoding('utf8')
  const changes = new EventEmitter()
  let data = ''
  let closed = false
  socket.on('data', (chunk: string) => { data += chunk; changes.emit('change') })
  socket.on('close', () => { closed = true; changes.emit('change') })
  socket.on('error', () => {})
  await once(socket, 'connect')
  return {
    socket,
    get data () { return data },
    get closed () { return closed },
    send (...args) {
      let out = `*${args.length}\r\n`
      for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`
      socket.write(out)
    },
    until (check, ms) {
      if (check()) return Promise.resolve(true)
      return new Promise((resolve) => {
        const onChange = (): void => {
          if (!check()) return
          clearTimeout(timer)
          changes.off('change', onChange)
          resolve(true)
        }
        const timer = setTimeout(() => { changes.off('change', onChange); resolve(false) }, ms)
        changes.on('change', onChange)
      })
    },
  }
}

/** Polls `check` every 10 ms until it holds; throws after `ms`. */
async function waitFor (check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const NO_REPLY_MS = 300

test('tcp-proxy: PING through the proxy reaches the target and the connection is counted', async () => {
  const acceptedBefore = proxy.accepted
  const raw = await rawClient(proxy.port)
  try {
    raw.send('PING')
    assert.ok(await raw.until(() => raw.data === '+PONG\r\n', 2000), `got ${JSON.stringify(raw.data)}`)
    assert.equal(proxy.accepted, acceptedBefore + 1)
    assert.equal(proxy.connections, 1)
    // The server saw the command: the proxy really forwards rather than answering itself.
    raw.send('CLIENT', 'SETNAME', 'via-proxy')
    assert.ok(await raw.until(() => raw.data.endsWith('+OK\r\n'), 2000))
    assert.match(await redis.command('CLIENT', 'LIST'), /name=via-proxy/)
  } finally {
    raw.socket.destroy()
  }
  await waitFor(() => proxy.connections === 0, 2000, 'the closed connection is no longer counted')
  assert.equal(proxy.url, `redis://127.0.0.1:${proxy.port}`)
})

test('tcp-proxy: while stalled a command does not reach the server; resume delivers it and its reply', async () => {
  await redis.command('DEL', 'stall:up')
  const raw = await rawClient(proxy.port)
  try {
    proxy.stall()
    assert.equal(proxy.stalled, true)
    raw.send('INCR', 'stall:up')
    assert.equal(await raw.until(() => raw.data !== '', NO_REPLY_MS), false, 'no reply while stalled')
    assert.equal(await redis.command('GET', 'stall:up'), '$-1\r\n', 'the server has not run the command')
    assert.equal(raw.closed, false, 'a stall closes nothing')
    proxy.resume()
    assert.ok(await raw.until(() => raw.data === ':1\r\n', 2000), `got ${JSON.stringify(raw.data)}`)
    assert.equal(await redis.command('GET', 'stall:up'), '$1\r\n1\r\n')
  } finally {
    proxy.resume()
    raw.socket.destroy()
  }
})

test('tcp-proxy: while stalled a reply the server already sent is held until resume', async () => {
  await redis.command('DEL', 'stall:down')
  const raw = await rawClient(proxy.port)
  try {
    raw.send('BLPOP', 'stall:down', '0')
    await waitFor(async () => /blocked_clients:1\r\n/.test(await redis.command('INFO', 'clients')), 2000, 'BLPOP is blocked')
    proxy.stall()
    // Unblock it directly: the server writes the reply to the proxy, which must hold it.
    assert.equal(await redis.command('RPUSH', 'stall:down', 'v'), ':1\r\n')
    await waitFor(async () => /blocked_clients:0\r\n/.test(await redis.command('INFO', 'clients')), 2000, 'BLPOP is served')
    assert.equal(await raw.until(() => raw.data !== '', NO_REPLY_MS), false, 'the reply is held while stalled')
    proxy.resume()
    const reply = '*2\r\n$10\r\nstall:down\r\n$1\r\nv\r\n'
    assert.ok(await raw.until(() => raw.data === reply, 2000), `got ${JSON.stringify(raw.data)}`)
  } finally {
    proxy.resume()
    raw.socket.destroy()
  }
})

test('tcp-proxy: a connection opened while stalled is held too, and held bytes arrive in order', async () => {
  proxy.stall()
  const acceptedBefore = proxy.accepted
  let raw: RawClient | undefined
  try {
    raw = await rawClient(proxy.port)
    const client = raw
    await waitFor(() => proxy.accepted === acceptedBefore + 1, 2000, 'the proxy accepts during a stall')
    let expected = ''
    for (let i = 0; i < 200; i++) {
      const word = `m${i}`.padEnd(200, '.')
      client.send('ECHO', word)
      expected += `$${word.length}\r\n${word}\r\n`
    }
    assert.equal(await client.until(() => client.data !== '', NO_REPLY_MS), false, 'no reply while stalled')
    assert.equal(client.closed, false)
    proxy.resume()
    assert.ok(await client.until(() => client.data.length >= expected.length, 5000), 'every reply arrives')
    assert.equal(client.data, expected, 'replies in the order the commands were sent')
  } finally {
    proxy.resume()
    raw?.socket.destroy()
  }
})

test('tcp-proxy: a node-redis PING gets no reply while stalled and gets it after resume', async () => {
  const client = createClient({ url: proxy.url, RESP: 3 })
  client.on('error', () => {})
  try {
    await client.connect()
    assert.equal(await client.ping(), 'PONG')
    proxy.stall()
    const started = Date.now()
    const pending = client.ping()
    const outcome = await Promise.race([
      pending.then(() => 'reply'),
      new Promise<string>((resolve) => setTimeout(() => resolve('no reply'), NO_REPLY_MS)),
    ])
    assert.equal(outcome, 'no reply')
    assert.equal(client.isReady, true, 'the client still thinks it is connected')
    proxy.resume()
    assert.equal(await pending, 'PONG')
    assert.ok(Date.now() - started >= NO_REPLY_MS - 5) // timers and Date.now() round differently
  } finally {
    proxy.resume()
    client.destroy()
  }
})

test('tcp-proxy: a half-close sent during a stall is delivered after the bytes before it', async () => {
  const raw = await rawClient(proxy.port)
  try {
    proxy.stall()
    raw.send('PING')
    raw.socket.end()
    assert.equal(await raw.until(() => raw.data !== '' || raw.closed, NO_REPLY_MS), false, 'nothing happens while stalled')
    proxy.resume()
    // The server runs PING, then sees the end of input and closes: the client gets both, in order.
    assert.ok(await raw.until(() => raw.closed, 2000), 'the connection closes after resume')
    assert.equal(raw.data, '+PONG\r\n')
  } finally {
    proxy.resume()
    raw.socket.destroy()
  }
  await waitFor(() => proxy.connections === 0, 2000, 'the connection is no longer counted')
})

test('tcp-proxy: a client that closes during a stall stays connected upstream until resume', async () => {
  const raw = await rawClient(proxy.port)
  raw.send('CLIENT', 'SETNAME', 'closes-while-stalled')
  assert.ok(await raw.until(() => raw.data === '+OK\r\n', 2000))
  const upstreamOpen = async (): Promise<boolean> => (await redis.command('CLIENT', 'LIST')).includes('name=closes-while-stalled')
  try {
    proxy.stall()
    raw.socket.destroy()
    assert.ok(await raw.until(() => raw.closed, 2000))
    const deadline = Date.now() + NO_REPLY_MS
    while (Date.now() < deadline) {
      assert.equal(await upstreamOpen(), true, 'the server still sees the connection while stalled')
    }
  } finally {
    proxy.resume()
  }
  await waitFor(async () => !(await upstreamOpen()), 2000, 'the close reaches the server after resume')
})

test('tcp-proxy: a reset by the target closes the client side', async () => {
  // A target that resets (RST, no FIN) every connection as soon as it receives a byte.
  const target = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.resetAndDestroy())
  })
  target.listen(0, '127.0.0.1')
  await once(target, 'listening')
  const other = await startProxy((target.address() as AddressInfo).port)
  const raw = await rawClient(other.port)
  try {
    raw.send('PING')
    assert.ok(await raw.until(() => raw.closed, 2000), 'the client sees a close')
    await waitFor(() => other.connections === 0, 2000, 'the connection is no longer counted')
  } finally {
    raw.socket.destroy()
    await other.close()
    target.close()
  }
})

test('tcp-proxy: a close by the server reaches the client', async () => {
  const raw = await rawClient(proxy.port)
  try {
    raw.send('CLIENT', 'ID')
    assert.ok(await raw.until(() => /^:\d+\r\n$/.test(raw.data), 2000))
    const id = raw.data.slice(1, -2)
    assert.equal(await redis.command('CLIENT', 'KILL', 'ID', id), ':1\r\n')
    assert.ok(await raw.until(() => raw.closed, 2000), 'the client sees the close')
  } finally {
    raw.socket.destroy()
  }
})

test('tcp-proxy: cut() closes every connection, clients see it, and the proxy keeps listening', async () => {
  await waitFor(() => proxy.connections === 0, 2000, 'earlier connections are closed')
  const raw = await rawClient(proxy.port)
  const client = createClient({ url: proxy.url, RESP: 3, socket: { reconnectStrategy: () => 20 } })
  const errors: Error[] = []
  client.on('error', (err: Error) => { errors.push(err) })
  try {
    await client.connect()
    assert.equal(await client.ping(), 'PONG')
    assert.equal(proxy.connections, 2)
    const acceptedBefore = proxy.accepted
    proxy.cut()
    assert.ok(await raw.until(() => raw.closed, 2000), 'the raw socket sees a close')
    await waitFor(() => errors.length > 0, 2000, 'node-redis reports the lost connection')
    assert.ok(errors[0] instanceof SocketClosedUnexpectedlyError, String(errors[0]))
    // node-redis reconnects through the proxy, which still listens.
    assert.equal(await client.ping(), 'PONG')
    assert.equal(proxy.accepted, acceptedBefore + 1)
    await waitFor(() => proxy.connections === 1, 2000, 'only the reconnected client is counted')
  } finally {
    raw.socket.destroy()
    client.destroy()
  }
})

test('tcp-proxy: close() cuts connections and stops listening', async () => {
  const other = await startProxy(redis.port)
  const raw = await rawClient(other.port)
  try {
    raw.send('PING')
    assert.ok(await raw.until(() => raw.data === '+PONG\r\n', 2000))
    await other.close()
    assert.ok(await raw.until(() => raw.closed, 2000), 'the client sees a close')
    const outcome = await new Promise<string>((resolve) => {
      const probe = createConnection({ host: '127.0.0.1', port: other.port })
      probe.on('connect', () => { probe.destroy(); resolve('connected') })
      probe.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)))
    })
    assert.equal(outcome, 'ECONNREFUSED')
  } finally {
    raw.socket.destroy()
  }
})
