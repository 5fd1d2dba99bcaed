/**
 * autocannon driver: the fallback when wrk is not on PATH. Runs autocannon-worker.ts as a
 * separate (pinned) node process. Note that one autocannon process tops out well below wrk, so
 * the fastest variants (bare Fastify first) may be limited by the load generator: ratios to bare
 * then understate the gap.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runToEnd } from '../processes.ts'
import type { LoadGenerator, LoadPlan, LoadResult, LoadSettings } from './types.ts'

const WORKER = fileURLToPath(new URL('./autocannon-worker.ts', import.meta.url))
let jobs = 0

export const autocannonGenerator: LoadGenerator = {
  name: 'autocannon',
  async run (plan: LoadPlan, settings: LoadSettings): Promise<LoadResult> {
    const job = JSON.stringify({ origin: settings.origin, connections: settings.connections, durationS: settings.durationS, plan })
    // A pool of thousands of cookies does not fit one command-line argument.
    let arg = job
    if (job.length > 64_000) {
      arg = join(settings.tmpDir, `autocannon-job-${process.pid}-${jobs++}.json`)
      writeFileSync(arg, job)
      arg = '@' + arg
    }
    const [command, ...args] = [...settings.pinPrefix, process.execPath, '--import', 'tsx', WORKER, arg]
    const { code, stdout, stderr } = await runToEnd('autocannon', command as string, args)
    const line = stdout.trim().split('\n').pop()
    if (code !== 0 || line === undefined || line === '') throw new Error(`autocannon failed (exit ${code}): ${stderr.trim()}`)
    return JSON.parse(line) as LoadResult
  },
}
