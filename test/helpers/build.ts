/**
 * The built package (dist/), for tests that use it as users do — by its name, through the
 * `exports` map, or as the CLI. `npm test` builds first; a single test file run by hand builds
 * here when lib/ is newer than dist/.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))

/** Newest modification time under a directory (ms). */
function newest (dir: string): number {
  let t = 0
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) t = Math.max(t, statSync(`${dir}/${f}`).mtimeMs)
  return t
}

/** Builds dist/ unless it is newer than every file of lib/. */
export function ensureBuilt (): void {
  const built = statSync(`${root}dist/cli/main.js`, { throwIfNoEntry: false })
  if (built === undefined || newest(`${root}lib`) > built.mtimeMs) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })
}

/** A scratch directory inside the package (git-ignored `.tmp/`), where its own name resolves to dist/. */
export function scratchDir (name: string): string {
  const dir = `${root}.tmp/${name}/`
  mkdirSync(dir, { recursive: true })
  return dir
}

/** The fenced code blocks of `lang` in a Markdown file, each with the line it starts on and the heading above it. */
export function codeBlocks (markdown: string, lang: string): Array<{ code: string, line: number, heading: string }> {
  const out: Array<{ code: string, line: number, heading: string }> = []
  const lines = markdown.split('\n')
  let heading = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '')
    const fence = /^(\s*)(```+)(\S*)\s*$/.exec(line)
    if (fence === null) continue
    const end = lines.findIndex((l, j) => j > i && l.trim() === fence[2])
    if (end < 0) throw new Error(`unclosed code block at line ${i + 1}`)
    if (fence[3] === lang) out.push({ code: lines.slice(i + 1, end).map((l) => l.slice((fence[1] as string).length)).join('\n'), line: i + 1, heading })
    i = end
  }
  return out
}
