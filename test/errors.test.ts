import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { errorTable, SessionError } from '../lib/errors.ts'

test('errors: the README errors table lists exactly the codes of the error table, with their status', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const rows = new Map<string, number>()
  for (const m of readme.matchAll(/^\| `(FST_[A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1] as string, Number(m[2]))
  const table = new Map(Object.entries(errorTable).map(([code, e]) => [code, e.statusCode]))
  assert.deepEqual([...rows].sort(), [...table].sort())
})

test('errors: every code is namespaced and every error carries code, statusCode and a fixed message', () => {
  for (const code of Object.keys(errorTable) as Array<keyof typeof errorTable>) {
    assert.match(code, /^FST_(SESSION|PASSWORD)_[A-Z_]+$/)
    const err = new SessionError(code)
    assert.equal(err.code, code)
    assert.equal(err.statusCode, errorTable[code].statusCode)
    assert.equal(err.message, errorTable[code].message)
    assert.ok(err instanceof Error)
  }
})

test('errors: lib/ throws only coded SessionErrors (the known-answer nonce helper excepted)', () => {
  const files = readdirSync(new URL('../lib/', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
  const offenders: string[] = []
  for (const file of files) {
    const text = readFileSync(new URL(`../lib/${file}`, import.meta.url), 'utf8')
    for (const m of text.matchAll(/throw new (?!SessionError)\w+/g)) {
      const line = text.slice(0, m.index).split('\n').length
      if (!(file.endsWith('field-cipher.ts') && text.split('\n')[line - 1]?.includes('nonce'))) offenders.push(`${file}:${line}: ${m[0]}`)
    }
  }
  assert.deepEqual(offenders, [])
})
