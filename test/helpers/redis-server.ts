/**
 * Starts a real, throw-away `redis-server` for a test file on a free loopback port and stops it
 * by pid. Never mocks Redis. The binary comes from `REDIS_SERVER_BIN` or `PATH`; when it is
 * missing the test run fails with instructions instead of skipping.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer, createConnection } from 'node:net'
import { once } from 'node:events'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly pid: number
  /** Sends one command over a fresh connection (inline protocol) and returns the raw reply. */
  command (...args: string[]): Promise<string>
  /** Redis `INFO commandstats` as a map of command name → calls. */
  commandStats (): Promise<Map<string, number>>
  /** Total calls of every command except those named (e.g. `info`, `config`). */
  totalCalls (exclude?: string[]): Promise<number>
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill (): Promise<void>
  /** Starts it again on the same port after `kill`. */
  restart (): Promise<void>
  stop (): Promise<void>
}

/**
 * The oldest Redis the tests run on, and so the oldest the README may claim (`DEBUG SLEEP` needs
 * `--enable-debug-command`, a 7.0 option; the plugin's own commands need 7.0 too: `PEXPIRE … GT` behind a login).
 */
export const MIN_REDIS_VERSION = '7.0'

const INSTALL = 'install it with `sudo apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), ' +
  'or point REDIS_SERVER_BIN at the binary.'
const INSTALL_HINT = `redis-server was not found. The tests need a real Redis server binary, version ${MIN_REDIS_VERSION} or newer: ${INSTALL}`

/** `[major, minor]` of a `redis-server --version` line (`Redis server v=7.0.15 sha=…`), or undefined. */
export function redisVersionOf (versionLine: string): [number, number] | undefined {
  const m = /\bv=(\d+)\.(\d+)/.exec(versionLine)
  return m === null ? undefined : [Number(m[1]), Number(m[2])]
}

export function redisServerBinary (): string {
  const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server'
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) throw new Error(INSTALL_HINT)
  const version = redisVersionOf(probe.stdout)
  const [major, minor] = MIN_REDIS_VERSION.split('.').map(Number) as [number, number]
  if (version !== undefined && (version[0] < major || (version[0] === major && version[1] < minor))) {
    throw new Error(`${bin} is Redis ${version.join('.')}; the tests need Redis ${MIN_REDIS_VERSION} or newer: ${INSTALL}`)
  }
  return bin
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  server.close()
  await once(server, 'close')
  return port
}

/** Encodes a command in RESP2 array form, so arguments may hold spaces or binary-safe text. */
function encode (args: string[]): string {
  let out = `*${args.length}\r\n`
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`
  return out
}

/**
 * Sends one command, reads until the reply looks complete, and returns it raw. With `tlsOptions`
 * the connection is TLS (e.g. `{ ca, cert, key }`) and the command is sent after the handshake.
 */
export async function rawCommand (port: number, args: string[], timeoutMs = 2000, tlsOptions?: ConnectionOptions): Promise<string> {
  const socket = tlsOptions === undefined
    ? createConnection({ host: '127.0.0.1', port })
    : tlsConnect({ ...tlsOptions, host: '127.0.0.1', port })
  socket.setEncoding('utf8')
  let data = ''
  // A server that closes the connection (CLIENT KILL, shutdown) fails the call at once. Handled
  // here, so that the close our own destroy() causes is no unhandled rejection.
  const closed = once(socket, 'close').then(() => { throw new Error('redis connection closed before the reply') })
  closed.catch(() => {})
  try {
    await Promise.race([
      once(socket, tlsOptions === undefined ? 'connect' : 'secureConnect'),
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('redis connection timed out')), timeoutMs).unref()),
    ])
    socket.write(encode(args))
    const deadline = Date.now() + timeoutMs
    while (!replyComplete(data)) {
      if (Date.now() > deadline) throw new Error(`redis command ${args[0]} timed out`)
      const [chunk] = await Promise.race([
        once(socket, 'data'),
        closed,
        new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('redis reply timed out')), timeoutMs).unref()),
      ]) as [string]
      data += chunk
    }
    return data
  } finally {
    socket.destroy()
  }
}

/**
 * Puts the Redis server on `port` to sleep (`DEBUG SLEEP`, which needs `--enable-debug-command`)
 * so that commands sent meanwhile queue up and run in one of its event-loop iterations. Resolves
 * once a PING has gone unanswered for 100 ms (a busy but awake server answers sooner);
 * `awake` settles when the server wakes.
 */
export async function putToSleep (port: number, seconds: number): Promise<{ awake: Promise<unknown> }> {
  const awake = rawCommand(port, ['DEBUG', 'SLEEP', String(seconds)], seconds * 1000 + 5000).catch(() => '')
  const deadline = Date.now() + 1000
  for (;;) {
    const answered = await rawCommand(port, ['PING'], 100).then(() => true, () => false)
    if (!answered) return { awake }
    if (Date.now() > deadline) throw new Error(`Redis on port ${port} did not fall asleep within 1000 ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** True when `data` holds one whole RESP2 reply. */
function replyComplete (data: string): boolean {
  return parseLength(data, 0) !== -1
}

/** Returns the end offset of the RESP2 value at `pos`, or -1 when it is incomplete. */
function parseLength (data: string, pos: number): number {
  const lineEnd = data.indexOf('\r\n', pos)
  if (lineEnd === -1) return -1
  const type = data[pos]
  const head = data.slice(pos + 1, lineEnd)
  if (type === '+' || type === '-' || type === ':') return lineEnd + 2
  if (type === '$') {
    const len = Number(head)
    if (len < 0) return lineEnd + 2
    // Bulk strings are counted in bytes; the tests only read ASCII replies here.
    const end = lineEnd + 2 + len + 2
    return data.length >= end ? end : -1
  }
  if (type === '*') {
    const n = Number(head)
    let p = lineEnd + 2
    for (let i = 0; i < n; i++) {
      p = parseLength(data, p)
      if (p === -1) return -1
    }
    return p
  }
  return -1
}

/** The default readiness probe: a plaintext PING on `port` answered with PONG. */
async function answersPing (port: number): Promise<boolean> {
  const reply = await rawCommand(port, ['PING'], 500)
  return reply.startsWith('+PONG')
}

async function waitUntilReady (port: number, child: ChildProcess, output: () => string, ready: (port: number) => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${output()}`)
    try {
      if (await ready(port)) return
    } catch {
      // not listening yet: poll again below
    }
    if (Date.now() > deadline) throw new Error(`redis-server was not ready (by default: answering PING) within 10 s:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export interface StartRedisOptions {
  /** The port `--port` gets (plaintext; `0` turns it off); a free one when omitted. */
  port?: number
  /**
   * Tells whether the server is ready (a throw counts as "not yet"); by default a plaintext PING
   * on `port`. A server without a plaintext port (e.g. TLS only) needs its own probe.
   */
  ready?: (port: number) => Promise<boolean>
}

export async function startRedis (extraArgs: string[] = [], options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = redisServerBinary()
  const port = options.port ?? await freePort()
  const ready = options.ready ?? answersPing
  let child: ChildProcess
  let log = ''

  const launch = async (): Promise<void> => {
    log = ''
    child = spawn(bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning', ...extraArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (d: Buffer) => { log += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { log += d.toString() })
    await waitUntilReady(port, child, () => log, ready)
  }

  await launch()

  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    process.kill(child.pid as number, signal)
    await exited
  }

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child.pid as number },
    command: (...args) => rawCommand(port, args),
    async commandStats () {
      const reply = await rawCommand(port, ['INFO', 'commandstats'])
      const stats = new Map<string, number>()
      for (const m of reply.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) stats.set(m[1] as string, Number(m[2]))
      return stats
    },
    async totalCalls (exclude = ['info', 'ping', 'role']) {
      const stats = await server.commandStats()
      let total = 0
      for (const [name, calls] of stats) if (!exclude.includes(name)) total += calls
      return total
    },
    kill: () => stopChild('SIGKILL'),
    restart: launch,
    stop: () => stopChild('SIGTERM'),
  }
  return server
}
