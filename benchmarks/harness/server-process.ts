/**
 * Lifecycle of one server under test: start it (pinned), wait until it prints
 * `LISTENING <port>` (benchmarks/servers/common.ts), stop it. It gets `HOST=127.0.0.1` and
 * `PORT=0` in its environment.
 */
import type { ChildProcess } from 'node:child_process'
import { spawnTracked, stopChild } from './processes.ts'

export interface ServerSpec {
  readonly command: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
}

export interface RunningServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** Pid whose CPU time is measured. */
  readonly pid: number | undefined
  output (): string
  stop (): Promise<void>
}

const READY = /\bLISTENING (\d+)\b/

/** Replaces `{name}` placeholders (e.g. `{redisUrl}`) with values. */
export function expand (text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole)
}

export async function startServer (
  name: string, spec: ServerSpec, pinPrefix: readonly string[], values: Readonly<Record<string, string>>, timeoutMs = 30_000
): Promise<RunningServer> {
  const [command, ...args] = [...pinPrefix, ...spec.command.map((part) => expand(part, values))]
  if (command === undefined) throw new Error(`server ${name}: empty command`)
  const env: Record<string, string | undefined> = { ...process.env, HOST: '127.0.0.1', PORT: '0', NODE_ENV: 'production' }
  for (const [key, value] of Object.entries(spec.env ?? {})) env[key] = expand(value, values)
  // taskset execs the command, so the child's pid is the server's pid.
  const child = spawnTracked(`server ${name}`, command, args, { env, cwd: spec.cwd })
  let log = ''
  const collect = (d: Buffer): void => { if (log.length < 64_000) log += d.toString() }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  try {
    const port = await waitForPort(child, () => log, timeoutMs)
    return { origin: `http://127.0.0.1:${port}`, pid: child.pid, output: () => log, stop: () => stopChild(child) }
  } catch (err) {
    await stopChild(child)
    throw new Error(`server ${name} did not start: ${(err as Error).message}\n${log.slice(-2000)}`)
  }
}

function waitForPort (child: ChildProcess, log: () => string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = READY.exec(log())
      if (match !== null) {
        finish()
        resolve(Number(match[1]))
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      finish()
      reject(new Error(`exited (code ${code}, signal ${signal}) before listening`))
    }
    const timer = setTimeout(() => {
      finish()
      reject(new Error(`no "LISTENING <port>" line within ${timeoutMs} ms`))
    }, timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', check)
      child.stderr?.off('data', check)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', check)
    child.stderr?.on('data', check)
    child.once('exit', onExit)
  })
}
