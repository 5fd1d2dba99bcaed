/**
 * Self-test of test/helpers/tls.ts: certificates made with openssl are what they claim to be, and
 * a real TLS redis-server accepts node-redis with the right certificates and refuses the rest
 * (no client certificate, one from another CA, an untrusted server, plaintext), quickly.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'
import { rawCommand } from './redis-server.ts'
import { makeCertificates, startTlsRedis, type TestCertificates, type TlsRedisServer } from './tls.ts'

let certDir: string
let certs: TestCertificates
let strict: TlsRedisServer // client certificate required, TLS only
let lax: TlsRedisServer // no client certificate needed, plus a plaintext port
before(async () => {
  certDir = await mkdtemp(join(tmpdir(), 'tls-test-'))
  certs = await makeCertificates(certDir)
  ;[strict, lax] = await Promise.all([
    startTlsRedis({ requireClientCert: true, certificates: certs }),
    startTlsRedis({ requireClientCert: false, plaintextPort: true, certificates: certs }),
  ])
})
after(async () => {
  await strict?.stop()
  await lax?.stop()
  if (certDir !== undefined) await rm(certDir, { recursive: true, force: true })
})

const DEADLINE_MS = 5000

type Outcome = { ok: true, reply: string } | { ok: false, error: Error & { code?: string } }

/**
 * Connects node-redis (RESP3, no reconnection) with these socket options and PINGs. Resolves
 * with the reply or the error; rejects when neither comes within the deadline.
 */
async function tryPing (socket: Record<string, unknown>): Promise<Outcome> {
  const client = createClient({ RESP: 3, socket: { ...socket, reconnectStrategy: false } })
  client.on('error', () => {}) // the same error also rejects connect()
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      client.connect().then(async () => ({ ok: true as const, reply: await client.ping() })),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no reply and no error within ${DEADLINE_MS} ms`)), DEADLINE_MS)
      }),
    ])
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('no reply and no error')) throw err
    return { ok: false, error: err as Error & { code?: string } }
  } finally {
    clearTimeout(timer)
    client.destroy()
  }
}

function configGet (reply: string): string | undefined {
  // RESP2 `*2 $n name $n value`
  return /^\*2\r\n\$\d+\r\n[^\r]*\r\n\$\d+\r\n([^\r]*)\r\n$/.exec(reply)?.[1]
}

test('tls: makeCertificates writes a CA, a server certificate for 127.0.0.1 and localhost, and client certificates', () => {
  const ca = new X509Certificate(certs.ca.cert)
  const server = new X509Certificate(certs.server.cert)
  const client = new X509Certificate(certs.client.cert)
  const otherCa = new X509Certificate(certs.otherCa.cert)
  const otherClient = new X509Certificate(certs.otherClient.cert)
  assert.equal(ca.ca, true)
  assert.equal(otherCa.ca, true)
  assert.equal(server.ca, false)
  assert.equal(client.ca, false)
  assert.ok(ca.verify(ca.publicKey), 'the CA is self-signed')
  assert.ok(server.verify(ca.publicKey), 'the server certificate is signed by the CA')
  assert.ok(client.verify(ca.publicKey), 'the client certificate is signed by the CA')
  assert.ok(otherClient.verify(otherCa.publicKey), 'the other client certificate is signed by the other CA')
  assert.equal(otherClient.verify(ca.publicKey), false, 'and not by the CA')
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1')
  assert.equal(server.checkHost('localhost'), 'localhost')
  assert.equal(server.checkHost('example.com'), undefined)
  assert.match(server.subjectAltName ?? '', /IP Address:127\.0\.0\.1/)
  assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth')
  assert.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth')
  for (const pair of [certs.ca, certs.server, certs.client, certs.otherCa, certs.otherClient]) {
    assert.ok(existsSync(pair.certFile) && existsSync(pair.keyFile))
    assert.ok(new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key)), `${pair.keyFile} matches`)
    assert.ok(new Date(new X509Certificate(pair.cert).validTo).getTime() > Date.now() + 3600_000)
  }
})

test('tls: a node-redis client with the CA and a client certificate can PING (client certificate required)', async () => {
  const outcome = await tryPing({ ...strict.socketOptions('client') })
  assert.deepEqual(outcome, { ok: true, reply: 'PONG' })
  assert.equal(await strict.command('PING'), '+PONG\r\n')
  assert.equal(configGet(await strict.command('CONFIG', 'GET', 'tls-auth-clients')), 'yes')
  assert.equal(configGet(await strict.command('CONFIG', 'GET', 'port')), '0', 'no plaintext port')
  assert.equal(strict.plaintextPort, undefined)
  assert.equal(strict.tlsUrl, `rediss://127.0.0.1:${strict.tlsPort}`)
})

test('tls: without a client certificate the connection is refused and node-redis reports it in time', async () => {
  const outcome = await tryPing({ ...strict.socketOptions('none') })
  assert.equal(outcome.ok, false)
  assert.equal(outcome.ok === false && outcome.error.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', String(!outcome.ok && outcome.error))

  // With the default reconnect strategy connect() never settles; the refusal shows as 'error' events.
  const client = createClient({ RESP: 3, socket: { ...strict.socketOptions('none') } })
  const errors: Array<Error & { code?: string }> = []
  const seen = new Promise<void>((resolve) => client.on('error', (err: Error) => { errors.push(err); resolve() }))
  const connecting = client.connect().catch((err: unknown) => err)
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      seen,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('no error event in time')), DEADLINE_MS) }),
    ])
    assert.equal(errors[0]?.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    assert.equal(client.isReady, false)
  } finally {
    clearTimeout(timer)
    client.destroy()
    await connecting
  }
})

test('tls: a client certificate signed by an unrelated CA is refused', async () => {
  const outcome = await tryPing({ ...strict.socketOptions('otherClient') })
  assert.equal(outcome.ok, false)
  assert.equal(outcome.ok === false && outcome.error.code, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', String(!outcome.ok && outcome.error))
})

test('tls: the client checks the server certificate: untrusted CA and wrong name refused, localhost accepted', async () => {
  const { ca: _ca, ...withoutCa } = strict.socketOptions('client')
  const untrusted = await tryPing(withoutCa)
  assert.equal(untrusted.ok === false && untrusted.error.code, 'SELF_SIGNED_CERT_IN_CHAIN')
  const wrongName = await tryPing({ ...strict.socketOptions('client'), servername: 'example.com' })
  assert.equal(wrongName.ok === false && wrongName.error.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
  assert.deepEqual(await tryPing({ ...strict.socketOptions('client'), servername: 'localhost' }), { ok: true, reply: 'PONG' })
})

test('tls: a plaintext connection to the TLS port fails', async () => {
  // A raw RESP PING: the server takes it for a broken handshake and drops the connection.
  const raw = await new Promise<{ data: string, error: string | undefined }>((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port: strict.tlsPort })
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('plaintext connection neither answered nor closed')) }, DEADLINE_MS)
    let data = ''
    let error: string | undefined
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', (err: NodeJS.ErrnoException) => { error = err.code })
    socket.on('close', () => { clearTimeout(timer); resolve({ data, error }) })
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'))
  })
  assert.doesNotMatch(raw.data, /PONG/)
  const plain = await tryPing({ host: '127.0.0.1', port: strict.tlsPort })
  assert.equal(plain.ok, false)
  assert.ok(plain.ok === false && ['ECONNRESET', undefined].includes(plain.error.code), String(!plain.ok && plain.error))
  // ...while TLS on the same port still works.
  assert.equal(await strict.command('PING'), '+PONG\r\n')
})

test('tls: without requireClientCert a client with only the CA can PING; the plaintext port answers too', async () => {
  assert.deepEqual(await tryPing({ ...lax.socketOptions('none') }), { ok: true, reply: 'PONG' })
  assert.equal(configGet(await lax.command('CONFIG', 'GET', 'tls-auth-clients')), 'no')
  assert.ok(lax.plaintextPort !== undefined)
  assert.equal(await rawCommand(lax.plaintextPort, ['PING']), '+PONG\r\n')
  assert.deepEqual(await tryPing({ host: '127.0.0.1', port: lax.plaintextPort }), { ok: true, reply: 'PONG' })
})

test('tls: startTlsRedis without certificates makes its own and stop removes them', async () => {
  const own = await startTlsRedis({ requireClientCert: true })
  const { dir } = own.certificates
  try {
    assert.ok(existsSync(own.certificates.server.certFile))
    assert.deepEqual(await tryPing({ ...own.socketOptions() }), { ok: true, reply: 'PONG' })
  } finally {
    await own.stop()
  }
  assert.equal(existsSync(dir), false)
  assert.throws(() => process.kill(own.pid, 0), { code: 'ESRCH' })
})
