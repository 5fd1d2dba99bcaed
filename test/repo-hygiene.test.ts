/**
 * Repository hygiene. Fixed defect: a git worktree's `node_modules` symlink (to an absolute path
 * on one machine) was committed, since `.gitignore`'s `node_modules/` matched directories only;
 * a checkout then had a dangling `node_modules` link where `npm ci` installs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'

test('repo: no node_modules entry (file, directory or symlink) is tracked by git', (t) => {
  let tracked: string
  try {
    tracked = execFileSync('git', ['ls-files', '-s', '--', 'node_modules'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
  } catch {
    t.skip('not a git checkout')
    return
  }
  assert.equal(tracked.trim(), '', `tracked: ${tracked.trim()}`)
})
