/**
 * Every process the harness starts is tracked here and stopped by its pid: on a normal end, on
 * an error, on Ctrl-C (SIGINT), SIGTERM or SIGHUP, and as a last resort when this process exits.
 * No stray servers, load generators or redis-servers are left behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'

const live = new Map<number, string>()
const finalizers = new Set<() => void>()
let installed = false

/** Records a pid to kill if the harness is interrupted. */
export function track (pid: number, name: string): void {
  live.set(pid, name)
}

export function untrack (pid: number): void {
  live.delete(pid)
}

/** A synchronous clean-up step (e.g. removing a temp dir) run on interruption and at exit. */
export function onCleanup (fn: () => void): () => void {
  finalizers.add(fn)
  return () => finalizers.delete(fn)
}

function killAll (): void {
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  live.clear()
  for (const fn of finalizers) {
    try {
      fn()
    } catch {
      // best effort: keep cleaning up the rest
    }
  }
  finalizers.clear()
}

/** Installs the signal and exit handlers (idempotent). */
export function installCleanup (): void {
  if (installed) return
  installed = true
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping ${live.size} process(es)\n`)
      killAll()
      process.exit(130)
    })
  }
  process.on('exit', killAll)
}

/** Spawns a tracked child; it is untracked when it exits. */
export function spawnTracked (name: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  if (child.pid !== undefined) {
    const pid = child.pid
    track(pid, name)
    child.once('exit', () => untrack(pid))
  }
  return child
}

function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild (child: ChildProcess, graceMs = 3000): Promise<void> {
  if (exited(child) || child.pid === undefined) return
  const done = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => { if (!exited(child)) child.kill('SIGKILL') }, graceMs)
  try {
    await done
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a child to completion and returns its exit code and output. */
export async function runToEnd (name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawnTracked(name, command, args, options)
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}
