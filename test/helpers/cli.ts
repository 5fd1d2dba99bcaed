/**
 * The operations CLI from its source (lib/cli/main.ts through tsx), run as an operator runs it:
 * a child process with only the environment given (and PATH), its exit code and both streams.
 * (test/cli.test.ts runs the built dist/cli/main.js instead.)
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface CliResult { code: number | null, stdout: string, stderr: string }

const BIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export function cli (args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: ROOT })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}
