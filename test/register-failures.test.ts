/**
 * Attacks on register failing after the store was opened: nothing keeps the process alive, against
 * real redis-servers.
 * A test preceded by `// Fixed defect:` failed on the code it was written against and names the
 * invariant that broke; every other test is an attack the code withstood, kept as a regression test.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SECRET } from './helpers/app.ts'
import { rawCommand } from './helpers/redis-server.ts'
import { useRedis } from './helpers/redis-fixture.ts'

const fx = useRedis('regist', ['--enable-debug-command', 'yes'])

const S1 = SECRET

describe('register failures', () => {
  // Fixed defect: a register that fails after the store was opened (here FST_SESSION_KEYRING_INVALID) never closes the plugin's Redis connection, even after app.close(): a process that handles the error cannot exit.
  test('register: a process whose register failed with FST_SESSION_KEYRING_INVALID exits by itself after app.close()', async () => {
    const keyPrefix = fx.freshPrefix()
    // Closed before the ring is altered: a running instance would repair its entry at once.
    await (await fx.app({ keyPrefix, secrets: [S1] })).close()
    const fields = (await rawCommand(fx.redis.port, ['HKEYS', keyPrefix + 'keyring'])).split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'))
    await rawCommand(fx.redis.port, ['HSET', keyPrefix + 'keyring', fields[0] as string, randomBytes(60).toString('base64url')])
    const dir = mkdtempSync(join(tmpdir(), 'fhs-register-'))
    const script = join(dir, 'start.mts')
    const lib = fileURLToPath(new URL('../lib/index.ts', import.meta.url))
    writeFileSync(script, [
      `import Fastify from ${JSON.stringify(import.meta.resolve('fastify'))}`,
      `import plugin from ${JSON.stringify(lib)}`,
      'const app = Fastify()',
      `app.register(plugin, { secrets: [${JSON.stringify(S1)}], redis: { url: ${JSON.stringify(fx.redis.url)} }, keyPrefix: ${JSON.stringify(keyPrefix)} })`,
      'try { await app.ready() } catch (err) { console.log(err.code); await app.close().catch(() => {}) }',
    ].join('\n'))
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const exited = await Promise.race([once(child, 'exit').then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 8000))])
    if (!exited) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    assert.match(out, /FST_SESSION_KEYRING_INVALID/)
    assert.equal(exited, true, 'the process was still running 8 s after its failed register and app.close(): the Redis connection was left open')
  })
})
