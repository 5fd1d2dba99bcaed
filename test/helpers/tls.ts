/**
 * Throw-away certificates made with the `openssl` CLI (from `OPENSSL_BIN` or `PATH`), and a real
 * redis-server that speaks TLS, started and stopped like `startRedis`. Keys are EC P-256 (fast to
 * make); certificates are valid for two days.
 */
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import { freePort, rawCommand, startRedis, type RedisServer } from './redis-server.ts'

export interface PemPair {
  certFile: string
  keyFile: string
  /** PEM text of the certificate. */
  cert: string
  /** PEM text of the private key (PKCS#8, unencrypted). */
  key: string
}

export interface TestCertificates {
  dir: string
  /** The CA that signed `server` and `client`; redis-server trusts it for client certificates. */
  ca: PemPair
  /** For redis-server: CN=localhost, subjectAltName IP:127.0.0.1 and DNS:localhost, serverAuth. */
  server: PemPair
  /** A client certificate (clientAuth) signed by `ca`. */
  client: PemPair
  /** A second CA that nothing trusts. */
  otherCa: PemPair
  /** A client certificate signed by `otherCa`: the "wrong client certificate". */
  otherClient: PemPair
}

const OPENSSL_HINT = 'openssl was not found. The TLS tests need the OpenSSL command line tool ' +
  '(e.g. `sudo apt-get install openssl`), or point OPENSSL_BIN at the binary.'

function opensslBinary (): string {
  const bin = process.env.OPENSSL_BIN ?? 'openssl'
  const probe = spawnSync(bin, ['version'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) throw new Error(OPENSSL_HINT)
  return bin
}

function run (bin: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      else resolve()
    })
  })
}

/** A config of its own, so nothing depends on the system's openssl.cnf. */
const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`

const EXTENSIONS = {
  server: `basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`,
  client: `basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`,
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/**
 * Writes a CA, a server certificate for 127.0.0.1/localhost and a client certificate signed by
 * it, plus an unrelated CA and a client certificate signed by that one, into `dir` (which must
 * exist); returns the file paths and PEM contents.
 */
export async function makeCertificates (dir: string): Promise<TestCertificates> {
  const openssl = opensslBinary()
  await writeFile(join(dir, 'req.cnf'), REQ_CONFIG)
  await writeFile(join(dir, 'server.ext'), EXTENSIONS.server)
  await writeFile(join(dir, 'client.ext'), EXTENSIONS.client)

  const read = async (name: string): Promise<PemPair> => {
    const certFile = join(dir, `${name}.crt`)
    const keyFile = join(dir, `${name}.key`)
    return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') }
  }

  const makeCa = async (name: string, cn: string): Promise<PemPair> => {
    await run(openssl, [
      'req', '-x509', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2',
      '-subj', `/CN=${cn}`, '-config', 'req.cnf', '-extensions', 'v3_ca',
    ], dir)
    return read(name)
  }

  const makeLeaf = async (name: string, cn: string, ca: string, ext: 'server' | 'client'): Promise<PemPair> => {
    await run(openssl, [
      'req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`, '-config', 'req.cnf',
    ], dir)
    await run(openssl, [
      'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', `${ext}.ext`, '-out', `${name}.crt`,
    ], dir)
    return read(name)
  }

  const [ca, otherCa] = await Promise.all([
    makeCa('ca', 'fastify-hardened-session test CA'),
    makeCa('other-ca', 'unrelated test CA'),
  ])
  const [server, client, otherClient] = await Promise.all([
    makeLeaf('server', 'localhost', 'ca', 'server'),
    makeLeaf('client', 'test client', 'ca', 'client'),
    makeLeaf('other-client', 'test client', 'other-ca', 'client'),
  ])
  return { dir, ca, server, client, otherCa, otherClient }
}

// ---------------------------------------------------------------------------------------------

export interface StartTlsRedisOptions {
  /** `--tls-auth-clients yes` (a client certificate signed by the CA is required) or `no`. */
  requireClientCert: boolean
  /** Also listen on a plaintext port (for admin commands); by default TLS only (`--port 0`). */
  plaintextPort?: boolean
  /** Certificates to use; by default fresh ones in a temp dir that `stop` removes. */
  certificates?: TestCertificates
  extraArgs?: string[]
}

/** Which certificate a client presents: ours, the one from the unrelated CA, or none. */
export type ClientIdentity = 'client' | 'otherClient' | 'none'

export interface TlsSocketOptions {
  tls: true
  host: string
  port: number
  ca: string
  cert?: string
  key?: string
}

export interface TlsRedisServer {
  readonly tlsPort: number
  /** `rediss://127.0.0.1:<tlsPort>` (a client still needs the CA, see `socketOptions`). */
  readonly tlsUrl: string
  /** The plaintext port when started with `plaintextPort: true`. */
  readonly plaintextPort: number | undefined
  readonly pid: number
  readonly requireClientCert: boolean
  readonly certificates: TestCertificates
  /** node-redis `socket` options for this server: TLS, trusting the CA, with the given identity. */
  socketOptions (identity?: ClientIdentity): TlsSocketOptions
  /** One command over a fresh TLS connection (with the client certificate); the raw reply. */
  command (...args: string[]): Promise<string>
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill (): Promise<void>
  /** Starts it again on the same ports after `kill`. */
  restart (): Promise<void>
  /** Stops the server; removes the certificates' temp dir when this server made them. */
  stop (): Promise<void>
}

export async function startTlsRedis (options: StartTlsRedisOptions): Promise<TlsRedisServer> {
  const ownDir = options.certificates === undefined ? await mkdtemp(join(tmpdir(), 'redis-tls-')) : undefined
  try {
    const certificates = options.certificates ?? await makeCertificates(ownDir as string)
    const tlsPort = await freePort()
    const plaintextPort = options.plaintextPort === true ? await freePort() : undefined
    const adminTls: ConnectionOptions = { ca: certificates.ca.cert, cert: certificates.client.cert, key: certificates.client.key }
    const tlsCommand = (args: string[], timeoutMs?: number): Promise<string> => rawCommand(tlsPort, args, timeoutMs, adminTls)

    const server: RedisServer = await startRedis([
      '--tls-port', String(tlsPort),
      '--tls-cert-file', certificates.server.certFile,
      '--tls-key-file', certificates.server.keyFile,
      '--tls-ca-cert-file', certificates.ca.certFile,
      '--tls-auth-clients', options.requireClientCert ? 'yes' : 'no',
      ...(options.extraArgs ?? []),
    ], {
      port: plaintextPort ?? 0,
      // Ready once it answers PING over TLS (also when a plaintext port exists).
      ready: async () => (await tlsCommand(['PING'], 500)).startsWith('+PONG'),
    })

    return {
      tlsPort,
      tlsUrl: `rediss://127.0.0.1:${tlsPort}`,
      plaintextPort,
      get pid () { return server.pid },
      requireClientCert: options.requireClientCert,
      certificates,
      socketOptions (identity = 'client') {
        const socket: TlsSocketOptions = { tls: true, host: '127.0.0.1', port: tlsPort, ca: certificates.ca.cert }
        if (identity !== 'none') {
          socket.cert = certificates[identity].cert
          socket.key = certificates[identity].key
        }
        return socket
      },
      command: (...args) => tlsCommand(args),
      kill: () => server.kill(),
      restart: () => server.restart(),
      async stop () {
        await server.stop()
        if (ownDir !== undefined) await rm(ownDir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    if (ownDir !== undefined) await rm(ownDir, { recursive: true, force: true })
    throw err
  }
}
