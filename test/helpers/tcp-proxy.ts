/**
 * A TCP proxy between a test's client and a real server, which the test controls: it can make the
 * network hang (`stall`: bytes are held in both directions, nothing is closed, like a dead link or
 * a SIGSTOPped peer), let it go again (`resume`: the held bytes are delivered in order), or cut
 * every connection (`cut`). Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:targetPort.
 */
import { createServer, createConnection, type Socket } from 'node:net'
import { once } from 'node:events'

export interface TcpProxy {
  readonly port: number
  /** `redis://127.0.0.1:<port>`, for a client that should go through the proxy. */
  readonly url: string
  /** Connections (client side plus its upstream) not yet fully closed. */
  readonly connections: number
  /** Connections accepted since the proxy started, including closed ones. */
  readonly accepted: number
  /** True between `stall()` and `resume()`. */
  readonly stalled: boolean
  /** Stops forwarding in both directions on every existing and new connection; holds the bytes. */
  stall (): void
  /** Delivers every held byte (and held close) in order, then forwards normally again. */
  resume (): void
  /** Destroys every current connection (both sides); the proxy keeps listening. */
  cut (): void
  /** Destroys every connection and stops listening. */
  close (): Promise<void>
}

/** What one direction of a connection holds while stalled: bytes, then possibly its end. */
type Held = Buffer | 'end'

/** One direction of a connection: reads `from`, writes `to`. */
interface Direction {
  from: Socket
  to: Socket
  held: Held[]
  /** Reading from `from` is paused until `to` drains. */
  draining: boolean
}

interface Connection {
  client: Socket
  upstream: Socket
  directions: [Direction, Direction]
}

export async function startProxy (targetPort: number): Promise<TcpProxy> {
  const live = new Set<Connection>()
  let stalled = false
  let accepted = 0

  /** Applies one item to the receiving side; never writes to a socket that is gone. */
  const deliver = (d: Direction, item: Held): void => {
    if (d.to.destroyed) return
    if (item === 'end') {
      d.to.end()
      return
    }
    if (!d.to.write(item) && !d.draining) {
      // Backpressure: read no more from `from` until `to` drains (a stall may still hold it after).
      d.draining = true
      d.from.pause()
      d.to.once('drain', () => {
        d.draining = false
        if (!stalled) d.from.resume()
      })
    }
  }

  const wire = (d: Direction): void => {
    d.from.on('data', (chunk: Buffer) => {
      if (stalled) d.held.push(chunk)
      else deliver(d, chunk)
    })
    d.from.on('end', () => {
      if (stalled) d.held.push('end')
      else deliver(d, 'end')
    })
  }

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    accepted++
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true })
    // While stalled nothing is read from either side; the kernel and Node buffers keep the bytes.
    if (stalled) upstream.pause()
    const conn: Connection = {
      client,
      upstream,
      directions: [
        { from: client, to: upstream, held: [], draining: false },
        { from: upstream, to: client, held: [], draining: false },
      ],
    }
    live.add(conn)
    for (const d of conn.directions) wire(d)
    let closed = 0
    const onClose = (): void => {
      closed++
      // One side is gone: close the other once it has written what it was given, unless a stall
      // holds bytes for it (then `resume` delivers them first, and its end closes this side).
      for (const d of conn.directions) {
        if (d.to.destroyed) continue
        if (stalled || d.held.length > 0) continue
        if (d.from.destroyed) d.to.end(() => d.to.destroy())
      }
      if (closed === 2) live.delete(conn)
    }
    // Errors (ECONNRESET, a refused upstream) end in 'close', handled above.
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.on('close', onClose)
    upstream.on('close', onClose)
    if (!stalled) client.resume()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address !== 'object') throw new Error('tcp-proxy: no listening address')
  const port = address.port

  const destroyAll = (): void => {
    for (const conn of live) {
      conn.client.destroy()
      conn.upstream.destroy()
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get connections () { return live.size },
    get accepted () { return accepted },
    get stalled () { return stalled },
    stall () {
      stalled = true
      for (const conn of live) {
        conn.client.pause()
        conn.upstream.pause()
      }
    },
    resume () {
      stalled = false
      for (const conn of live) {
        for (const d of conn.directions) {
          const held = d.held.splice(0)
          for (const item of held) deliver(d, item)
          // A side that closed during the stall: close the other now that it has its bytes.
          if (d.from.destroyed && !d.to.destroyed) d.to.end(() => d.to.destroy())
        }
        for (const d of conn.directions) if (!d.from.destroyed && !d.draining) d.from.resume()
      }
    },
    cut: destroyAll,
    async close () {
      destroyAll()
      const closed = once(server, 'close')
      server.close()
      await closed
    },
  }
}
