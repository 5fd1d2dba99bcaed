/**
 * The module graph of lib/: no import circle, type-only imports included (a circle of types is
 * still two modules that cannot be read, or moved, one without the other). Also checks the
 * layering docs/architecture.md states: the store, crypto and password modules load no Fastify
 * code and reach no request-path module.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const LIB = fileURLToPath(new URL('../lib/', import.meta.url))

function modules (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return modules(full)
    return entry.name.endsWith('.ts') ? [full] : []
  })
}

/** Relative imports of a module (`import`, `import type`, `export … from`), as absolute paths. */
function importsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const found: string[] = []
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
    found.push(path.resolve(path.dirname(file), match[1] as string))
  }
  return found
}

function graph (): Map<string, string[]> {
  return new Map(modules(LIB).map((file) => [file, importsOf(file)]))
}

/** Every elementary circle found by a depth-first search, as module paths relative to lib/. */
function circles (edges: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') {
        found.push(stack.slice(stack.indexOf(next)).concat(next).map((p) => path.relative(LIB, p)))
      } else if (state.get(next) === undefined) {
        visit(next)
      }
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of edges.keys()) if (state.get(node) === undefined) visit(node)
  return found
}

test('import graph: every relative import of lib/ names a module that exists', () => {
  const edges = graph()
  const missing = [...edges].flatMap(([from, to]) => to.filter((target) => !edges.has(target))
    .map((target) => `${path.relative(LIB, from)} → ${path.relative(LIB, target)}`))
  assert.deepEqual(missing, [])
})

test('import graph: lib/ has no import circle, type-only imports included', () => {
  assert.deepEqual(circles(graph()), [])
})

test('import graph: the circle check finds a circle of type-only imports', () => {
  const a = path.join(LIB, 'a.ts')
  const b = path.join(LIB, 'b.ts')
  assert.deepEqual(circles(new Map([[a, [b]], [b, [a]]])), [['a.ts', 'b.ts', 'a.ts']])
})

/** The modules of one request's path and of the Fastify wiring, which off-path code must not reach. */
const REQUEST_PATH = ['plugin.ts', 'resolve.ts', 'session.ts', 'state.ts', 'lifecycle.ts', 'headers.ts', 'cookie.ts']

test('import graph: store, crypto and password modules load no Fastify code and no request-path module', () => {
  const offPath = modules(LIB).filter((file) => /\/(store|crypto|password)\//.test(file))
  assert.ok(offPath.length > 20, 'the off-path folders were found')
  const offenders: string[] = []
  for (const file of offPath) {
    const text = readFileSync(file, 'utf8')
    // A type-only import (a logger interface) loads nothing.
    if (/^import (?!type\b)[^']*from\s+'(?:fastify|@fastify\/[^']+)'/m.test(text)) {
      offenders.push(`${path.relative(LIB, file)} → fastify`)
    }
    for (const target of importsOf(file)) {
      const rel = path.relative(LIB, target)
      if (REQUEST_PATH.includes(rel) || rel.startsWith('defences/') || rel.startsWith('cli/')) {
        offenders.push(`${path.relative(LIB, file)} → ${rel}`)
      }
    }
  }
  assert.deepEqual(offenders, [])
})
