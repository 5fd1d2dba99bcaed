/**
 * How long `register` takes to fail, and with what, for each way a Redis connection goes wrong:
 * `npx tsx benchmarks/connect-errors.ts [--connect-timeout ms]`.
 *
 * Starts its own throw-away redis-servers (plaintext with a password, TLS requiring a client
 * certificate) on loopback ports and registers the plugin with Fastify's defaults against each
 * case; prints one Markdown row per case: time to fail, error code, `cause` code or message, and
 * whether anything was logged. The unknown host is answered by a lookup function (no DNS query).
 */
import Fastify from 'fastify'
import type { LookupFunction } from 'node:net'
import hardenedSession, { type HardenedSessionOptions } from '../lib/index.ts'
import { freePort, startRedis } from '../test/helpers/redis-server.ts'
import { startTlsRedis } from '../test/helpers/tls.ts'

const SECRET = 'benchmark-secret-0123456789-abcdefghijklmnop'
const arg = process.argv.indexOf('--connect-timeout')
const connectTimeout = arg > 0 ? Number(process.argv[arg + 1]) : undefined

async function attempt (name: string, redis: HardenedSessionOptions['redis']): Promise<string> {
  let logged = 0
  const app = Fastify({ logger: { level: 'warn', stream: { write: () => { logged++ } } } })
  const start = Date.now()
  let outcome: string
  try {
    const options: HardenedSessionOptions = { secrets: [SECRET], redis }
    if (connectTimeout !== undefined) options.connectTimeout = connectTimeout
    await app.register(hardenedSession, options)
    await app.ready()
    outcome = '| registered | | '
  } catch (err) {
    const e = err as { code?: string, cause?: { code?: string, message?: string } }
    const cause = e.cause?.code ?? e.cause?.message?.split('\n')[0]?.slice(0, 60) ?? ''
    outcome = `| \`${e.code ?? 'error'}\` | ${cause.replace(/\|/g, '/')} | `
  }
  const ms = Date.now() - start
  await app.close().catch(() => {})
  return `| ${name} | ${ms} ms ${outcome}${logged} |`
}

const password = 'benchmark-redis-password'
const plain = await startRedis()
await plain.command('CONFIG', 'SET', 'requirepass', password)
const tls = await startTlsRedis({ requireClientCert: true })
const closed = await freePort()
const notFound: LookupFunction = (hostname, _options, callback) => {
  callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4)
}

const rows = [
  await attempt('refused port', { url: `redis://127.0.0.1:${closed}` }),
  await attempt('wrong password', { url: `redis://:wrong@127.0.0.1:${plain.port}` }),
  await attempt('no password (server needs one)', { url: plain.url }),
  await attempt('TLS to a plaintext port', { url: `rediss://127.0.0.1:${plain.port}` }),
  await attempt('plaintext to a TLS port', { url: `redis://127.0.0.1:${tls.tlsPort}` }),
  await attempt('unknown host', { url: 'redis://sessions.example:6379', socket: { lookup: notFound } as never }),
  await attempt('mTLS, no client certificate', { socket: tls.socketOptions('none') }),
  await attempt('mTLS, certificate from another CA', { socket: tls.socketOptions('otherClient') }),
  await attempt('TLS, server not trusted', { socket: { ...tls.socketOptions('client'), ca: undefined } as never }),
  await attempt('mTLS, correct', { socket: tls.socketOptions('client') }),
]
process.stdout.write(`connectTimeout: ${connectTimeout ?? 'default (10 s)'}, Fastify pluginTimeout: default (10 s)\n\n`)
process.stdout.write('| case | time to fail | code | cause | log lines (warn+) |\n| --- | ---: | --- | --- | ---: |\n')
process.stdout.write(rows.join('\n') + '\n')
await plain.stop()
await tls.stop()
