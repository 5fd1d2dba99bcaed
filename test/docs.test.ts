/**
 * The documentation checked against the code: every TypeScript block of README.md and docs/
 * compiles (strict, exactOptionalPropertyTypes) against the built package as users import it, and
 * docs/security.md cites only tests that exist, by their exact titles, in the files it names,
 * stating no number its tests do not carry.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import ts from 'typescript'
import { codeBlocks, ensureBuilt, root, scratchDir } from './helpers/build.ts'

const MARKDOWN = ['README.md', ...readdirSync(`${root}docs`).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]

/**
 * What the snippets take as given: an application and the placeholders of the reader's own code
 * (a user table, the request of the route they stand in). Blocks declare or import anything else.
 */
const PRELUDE = `
interface DocsUser { id: string, passwordHash: string, plan: 'free' | 'pro', pepperVersion: 1 | 2 }
declare const app: import('fastify').FastifyInstance
declare const secrets: string[]
declare const redis: { url: string }
declare const ca: Buffer
declare const db: {
  findUser (username: string): Promise<DocsUser | undefined>
  setPasswordHash (userId: string, hash: string): Promise<void>
  users: {
    create (user: { email: string, passwordHash: string }): Promise<DocsUser>
    findByEmail (email: string): Promise<DocsUser | undefined>
    update (userId: string, fields: Partial<DocsUser>): Promise<void>
  }
}
declare const audit: { write (entry: object): void }
declare const alerts: { page (message: string): void }
`

/** Compiler options of a strict application: what the docs promise to compile under. */
const OPTIONS: ts.CompilerOptions = {
  strict: true,
  exactOptionalPropertyTypes: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: ['node'],
  typeRoots: [`${root}node_modules/@types`],
  skipLibCheck: true,
  noEmit: true,
}

interface Block { file: string, line: number, path: string }

/** Type errors of `blocks` compiled as one program, as `file:line: message` (Markdown lines). */
function typeErrors (blocks: Block[], prelude: string): string[] {
  const program = ts.createProgram([prelude, ...blocks.map((b) => b.path)], OPTIONS)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    // The first line, and the innermost reason when the message is a chain.
    const lines = ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').map((l) => l.trim())
    const message = lines.length === 1 ? lines[0] as string : `${lines[0] as string} … ${lines[lines.length - 1] as string}`
    const block = blocks.find((b) => b.path === d.file?.fileName)
    if (d.file === undefined || d.start === undefined || block === undefined) return `${d.file?.fileName ?? '(options)'}: ${message}`
    const { line } = d.file.getLineAndCharacterOfPosition(d.start)
    return `${block.file}:${block.line + 1 + line}: ${message}`
  })
}

test('docs: every TypeScript block of README.md and docs/*.md compiles under strict and exactOptionalPropertyTypes, against the built package', () => {
  ensureBuilt()
  const dir = scratchDir('docs-ts')
  rmSync(dir, { recursive: true, force: true })
  scratchDir('docs-ts')
  const prelude = `${dir}prelude.d.ts`
  writeFileSync(prelude, PRELUDE + "declare const hardenedSession: typeof import('fastify-hardened-session').default\n")
  const bare = `${dir}prelude-bare.d.ts` // for blocks that must not load the main entry
  writeFileSync(bare, PRELUDE)
  // Blocks that load @fastify/session (the side-by-side migration) get a program of their own:
  // it types request.session itself, as the main entry of this package does.
  const shared: Block[] = []
  const alone: Block[] = []
  let count = 0
  for (const file of MARKDOWN) {
    for (const block of codeBlocks(readFileSync(`${root}${file}`, 'utf8'), 'ts')) {
      const path = `${dir}${file.replace(/\W/g, '_')}_${block.line}.ts`
      // Each block is a module of its own (top-level await, no names shared between blocks).
      writeFileSync(path, `${block.code}\nexport {}\n`)
      ;(block.code.includes("'@fastify/session'") ? alone : shared).push({ file, line: block.line, path })
      count++
    }
  }
  assert.ok(count >= 15, `${count} blocks found`)
  const errors = [...typeErrors(shared, prelude), ...(alone.length === 0 ? [] : typeErrors(alone, bare))]
  assert.deepEqual(errors, [])
})

const SECURITY = readFileSync(`${root}docs/security.md`, 'utf8')

/** Each `file` › `title` citation of docs/security.md. */
function citations (text: string): Array<{ file: string, title: string }> {
  return [...text.matchAll(/`((?:test|test-browser)\/[^`]+)` › `([^`]+)`/g)].map((m) => ({ file: m[1] as string, title: m[2] as string }))
}

/** Whether `source` has `title` as a test title: in quotes, as written in the file (apostrophes escaped). */
function hasTitle (source: string, title: string): boolean {
  return [`'${title.replace(/'/g, "\\'")}'`, `"${title}"`, `\`${title}\``].some((quoted) => source.includes(quoted))
}

test('docs: every test docs/security.md cites exists, by its exact title, in the file it names', () => {
  const cited = citations(SECURITY)
  assert.ok(cited.length > 150, `${cited.length} citations found`)
  const missing = cited.filter(({ file, title }) => !existsSync(`${root}${file}`) || !hasTitle(readFileSync(`${root}${file}`, 'utf8'), title))
  assert.deepEqual(missing.map(({ file, title }) => `${file} › ${title}`), [])
})

test('docs: every number a docs/security.md claim states (N×, N ms, N s, N %) is in the title of a test it cites', () => {
  // A claim is a bullet ending in "— proof:" and its citations; its bounds must be the tests'.
  const items: string[] = []
  let item: string | undefined
  for (const line of SECURITY.split('\n')) {
    if (line.startsWith('- ')) {
      if (item !== undefined) items.push(item)
      item = line.slice(2)
    } else if (item !== undefined && /^\s+\S/.test(line)) {
      item += ' ' + line.trim()
    } else {
      if (item !== undefined) items.push(item)
      item = undefined
    }
  }
  if (item !== undefined) items.push(item)
  const stronger: string[] = []
  let claims = 0
  for (const text of items) {
    const at = text.indexOf('— proof:')
    if (at < 0) continue
    claims++
    const claim = text.slice(0, at)
    const titles = citations(text.slice(at)).map((c) => c.title)
    for (const [quantity, number] of claim.matchAll(/(\d+(?:\.\d+)?) ?(?:×|ms\b|s\b|%)/g)) {
      if (!titles.some((t) => t.includes(number as string))) stronger.push(`"${quantity}" in: ${claim.slice(0, 120)}…`)
    }
  }
  assert.ok(claims > 60, `${claims} claims found`)
  assert.deepEqual(stronger, [])
})

test('docs: the README claims the Redis the tests need (redis-server ≥ MIN_REDIS_VERSION), and the test helper refuses an older one', async () => {
  const { MIN_REDIS_VERSION, redisServerBinary } = await import('./helpers/redis-server.ts')
  const readme = readFileSync(`${root}README.md`, 'utf8')
  const claimed = [...readme.matchAll(/Redis ≥ ?(\d+(?:\.\d+)?)/g)].map((m) => m[1])
  assert.deepEqual([...new Set(claimed)], [MIN_REDIS_VERSION], 'every "Redis ≥" of the README')
  const old = `${scratchDir('old-redis')}redis-server`
  writeFileSync(old, '#!/bin/sh\necho "Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=0"\n', { mode: 0o755 })
  const saved = process.env.REDIS_SERVER_BIN
  process.env.REDIS_SERVER_BIN = old
  try {
    assert.throws(() => redisServerBinary(), /is Redis 6\.2; the tests need Redis 7\.0 or newer: install it with/)
  } finally {
    if (saved === undefined) delete process.env.REDIS_SERVER_BIN
    else process.env.REDIS_SERVER_BIN = saved
  }
})

test('docs: the module table of docs/architecture.md names every file and folder of lib/, and nothing that is not there', () => {
  const text = readFileSync(`${root}docs/architecture.md`, 'utf8')
  const table = text.slice(text.indexOf('| module | one job |'), text.indexOf('\n\n', text.indexOf('| module | one job |')))
  const rows = table.split('\n').slice(2)
  const firstCells = rows.map((row) => row.split('|')[1] ?? '')
  const entries = readdirSync(`${root}lib`, { withFileTypes: true })
  const missing: string[] = []
  for (const entry of entries) {
    const name = entry.isDirectory() ? `${entry.name}/` : entry.name
    if (!firstCells.some((cell) => cell.includes(`\`${name}\``))) missing.push(name)
    if (!entry.isDirectory()) continue
    // A folder's row names each of its files (bar the obvious index.ts).
    const row = rows.find((r) => (r.split('|')[1] ?? '').includes(`\`${name}\``)) ?? ''
    for (const file of readdirSync(`${root}lib/${entry.name}`)) {
      if (file !== 'index.ts' && !row.includes(`\`${file}\``)) missing.push(`${name}${file}`)
    }
  }
  assert.deepEqual(missing, [], 'lib/ entries the module table does not name')
  const named = [...table.matchAll(/`([\w-]+(?:\/[\w-]+)*\.ts)`/g)].map((m) => m[1] as string)
  const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name)
  const absent = named.filter((file) => !existsSync(`${root}lib/${file}`) &&
    !folders.some((folder) => existsSync(`${root}lib/${folder}/${file}`)) && !existsSync(`${root}test/${file}`))
  assert.deepEqual(absent, [], 'files the module table names that lib/ does not have')
})
