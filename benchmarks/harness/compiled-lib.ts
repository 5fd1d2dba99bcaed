/**
 * The plugin as users run it: a checkout's lib/ compiled by `tsc -p tsconfig.build.json` (the
 * package's dist/), not lib/*.ts through tsx. tsx keeps function names by wrapping every
 * function it creates in a `__name(...)` call, a cost per closure per request that the published
 * JavaScript does not have.
 *
 * Compiled once per content of lib/ into node_modules/.cache/hardened-bench-lib/<hash>/ (the
 * harness warms it before any server starts, so no compile runs inside a timed or pinned start).
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'

/** A hash of a checkout's lib/ sources and build settings. */
export function sourceHash (root: string): string {
  const hash = createHash('sha256')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) hash.update(relative(root, path)).update('\0').update(readFileSync(path))
    }
  }
  walk(join(root, 'lib'))
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) hash.update(file).update(readFileSync(join(root, file)))
  return hash.digest('hex').slice(0, 16)
}

/** The directory holding `index.js` of `root`'s lib/ compiled (compiling it now if needed). */
export function compiledLib (root: string, cacheRoot: string): string {
  const out = join(cacheRoot, 'node_modules', '.cache', 'hardened-bench-lib', sourceHash(root))
  if (existsSync(join(out, 'index.js'))) return out
  const building = `${out}.${process.pid}`
  rmSync(building, { recursive: true, force: true })
  mkdirSync(building, { recursive: true })
  const tsc = join(cacheRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const done = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', building, '--declaration', 'false'], {
    cwd: root, encoding: 'utf8',
  })
  if (done.status !== 0) {
    rmSync(building, { recursive: true, force: true })
    throw new Error(`compiling ${root}/lib for the benchmark failed:\n${done.stdout}${done.stderr}`)
  }
  if (!existsSync(join(out, 'index.js'))) renameSync(building, out)
  else rmSync(building, { recursive: true, force: true })
  return out
}
