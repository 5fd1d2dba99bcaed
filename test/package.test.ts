/**
 * The published surface: ESM import and CJS require of the built package (by its own name,
 * through the `exports` map), the CLI, and what `npm pack` ships. Runs against dist/, which
 * `npm test` builds first.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = new URL('..', import.meta.url)
const rootDir = fileURLToPath(root)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  scripts: Record<string, string>
  files: string[]
}

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

test('package: fastify-hardened-session/side-by-side exports the same plugin and helpers as the main entry', () => {
  const out = run(`
    import * as main from 'fastify-hardened-session'
    import * as side from 'fastify-hardened-session/side-by-side'
    console.log(JSON.stringify([main.default === side.default, Object.keys(main).sort().join() === Object.keys(side).sort().join(), typeof side.createMemoryStore]))
  `, 'module')
  assert.deepEqual(JSON.parse(out), [true, true, 'function'])
})

test('package: CJS require by name works and exposes the same exports', () => {
  const out = run(`
    const mod = require('fastify-hardened-session')
    console.log(JSON.stringify([typeof mod.default, typeof mod.hardenedSession, typeof mod.createMemoryStore, mod.default === mod.hardenedSession]))
  `, 'commonjs')
  assert.deepEqual(JSON.parse(out), ['function', 'function', 'function', true])
})

test('package: the CLI prints a 32-byte key for gen-key', () => {
  const out = execFileSync(process.execPath, ['dist/cli/main.js', 'gen-key'], { cwd: root, encoding: 'utf8' }).trim()
  assert.equal(Buffer.from(out, 'base64url').length, 32)
})

/** Whether version `v` (x.y.z) satisfies an npm `engines` range of the forms dependencies use (`>=x`, `^x`, `||`). */
function satisfies (v: string, range: string): boolean {
  const num = (s: string): number[] => s.split('.').map((n) => Number(n))
  const cmp = (a: number[], b: number[]): number => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0)
    return 0
  }
  const version = num(v)
  return range.split('||').some((alternative) => alternative.trim().replace(/(>=|<=|[<>^~=])\s+/g, '$1').split(/\s+/).every((comparator) => {
    const m = /^(>=|<=|[<>^~=])?v?(\d+(?:\.\d+){0,2})(?:\.x)?$/.exec(comparator)
    if (m === null) throw new Error(`engines range not understood: ${range}`)
    const bound = num(m[2] as string)
    switch (m[1]) {
      case '>=': return cmp(version, bound) >= 0
      case '>': return cmp(version, bound) > 0
      case '<=': return cmp(version, bound) <= 0
      case '<': return cmp(version, bound) < 0
      case '^': return cmp(version, bound) >= 0 && version[0] === bound[0]
      case '~': return cmp(version, bound) >= 0 && version[0] === bound[0] && version[1] === bound[1]
      default: return bound.every((n, i) => version[i] === n)
    }
  }))
}

test('package: engines names the maintained Node lines (22 and 24; 22.12 has require(esm)) and every runtime dependency runs on them', () => {
  const own = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } }
  assert.equal(own.engines.node, '>=22.12.0')
  assert.ok(!satisfies('20.19.0', own.engines.node), 'Node 20 (end of life) is not claimed')
  const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as { packages: Record<string, { dev?: boolean, engines?: { node?: string } }> }
  assert.equal(lock.packages['']?.engines?.node, own.engines.node, 'package-lock.json agrees')
  for (const [name, entry] of Object.entries(lock.packages)) {
    const range = entry.engines?.node
    if (name === '' || entry.dev === true || range === undefined) continue
    for (const version of ['22.12.0', '22.99.0', '24.0.0']) assert.ok(satisfies(version, range), `${name} (engines ${range}) does not run on Node ${version}`)
  }
})

test('package: `prepare` builds dist/, so an install from a git URL gets a working package', () => {
  assert.equal(pkg.scripts['prepare'], 'npm run build')
  assert.match(pkg.scripts['build'] ?? '', /tsc -p tsconfig\.build\.json/)
})

test('package: an MIT LICENSE file is present and shipped', () => {
  const license = readFileSync(new URL('LICENSE', root), 'utf8')
  assert.match(license, /^MIT License\n/)
  assert.match(license, /Copyright \(c\) 2026 fastify-hardened-session contributors/)
  assert.ok(pkg.files.includes('LICENSE'))
})

/** The files `npm pack` would put in the tarball (scripts skipped: dist/ is already built). */
function packedFiles (): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  const [report] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>
  return report!.files.map((f) => f.path).sort()
}

test('package: npm pack ships the build, types, CLI, docs, the README chart and licence, and no sources, tests or secrets', () => {
  const files = packedFiles()
  for (const needed of ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'docs/passwords.md', 'benchmarks/results/latest.svg']) {
    assert.ok(files.includes(needed), `${needed} is shipped`)
  }
  for (const file of files) {
    assert.match(file, /^(dist\/|docs\/[^/]+\.md$|package\.json$|README\.md$|LICENSE$|benchmarks\/results\/latest\.svg$)/, `${file} is not shipped`)
    assert.doesNotMatch(file, /(^|\/)\.env|\.pem$|\.key$|\.tgz$|\.test\.|\.tsbuildinfo$/, `${file} looks like it should not be shipped`)
  }
})

test('package: every source map reference in dist/ resolves to a shipped file', () => {
  const shipped = new Set(packedFiles())
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)])
  const toPackagePath = (file: string): string => relative(rootDir, file).split(sep).join('/')
  for (const file of walk(join(rootDir, 'dist'))) {
    if (file.endsWith('.map')) {
      const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[], sourcesContent?: unknown[] }
      if (map.sourcesContent !== undefined) continue // self-contained
      for (const source of map.sources) {
        const target = toPackagePath(join(dirname(file), source))
        assert.ok(shipped.has(target), `${toPackagePath(file)} points at ${target}, which is not shipped`)
      }
    } else if (/\.(js|d\.ts)$/.test(file)) {
      const reference = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(file, 'utf8'))?.[1]
      if (reference === undefined || reference.startsWith('data:')) continue
      const target = toPackagePath(join(dirname(file), reference))
      assert.ok(shipped.has(target), `${toPackagePath(file)} refers to ${target}, which is not shipped`)
    }
  }
})
