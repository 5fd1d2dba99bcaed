/**
 * The published surface: ESM import and CJS require of the built package (by its own name,
 * through the `exports` map), and the CLI. Runs against dist/, which `npm test` builds first.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const root = new URL('..', import.meta.url)

function run (code: string, type: 'module' | 'commonjs'): string {
  return execFileSync(process.execPath, [type === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', code], { cwd: root, encoding: 'utf8' })
}

test('package: dist/ is built (npm test builds it first)', () => {
  assert.ok(existsSync(new URL('dist/index.js', root)), 'run `npm run build`')
  assert.ok(existsSync(new URL('dist/index.d.ts', root)))
})

test('package: ESM import by name gives the plugin as default and the named helpers', () => {
  const out = run(`
    import plugin, { createMemoryStore, hashPassword, verifyPassword, needsRehash, generateEncryptionKey, SessionError } from 'fastify-hardened-session'
    console.log(JSON.stringify([typeof plugin, plugin[Symbol.for('plugin-meta')]?.name, typeof createMemoryStore, typeof hashPassword, typeof verifyPassword, typeof needsRehash, typeof generateEncryptionKey, typeof SessionError]))
  `, 'module')
  assert.deepEqual(JSON.parse(out), ['function', 'fastify-hardened-session', 'function', 'function', 'function', 'function', 'function', 'function'])
})

test('package: CJS require by name works and exposes the same exports', () => {
  const out = run(`
    const mod = require('fastify-hardened-session')
    console.log(JSON.stringify([typeof mod.default, typeof mod.hardenedSession, typeof mod.createMemoryStore, mod.default === mod.hardenedSession]))
  `, 'commonjs')
  assert.deepEqual(JSON.parse(out), ['function', 'function', 'function', true])
})

test('package: the CLI prints a 32-byte key for gen-key', () => {
  const out = execFileSync(process.execPath, ['dist/cli.js', 'gen-key'], { cwd: root, encoding: 'utf8' }).trim()
  assert.equal(Buffer.from(out, 'base64url').length, 32)
})
