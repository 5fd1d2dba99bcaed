/**
 * revokeAll on a Redis Cluster (3 masters, 1 replica each, started here on free loopback ports):
 * how long each call takes with the default storeTimeout (1 s), whether it resolves or rejects
 * with 503, and the longest stretch the event loop was blocked meanwhile (every request of the
 * instance waits that long). A rejected call goes on raising epoch copies in the background, so
 * the calls are 3 s apart.
 *
 *   npx tsx benchmarks/revoke-all-cluster.ts [calls]          (default 10)
 */
import { buildApp, login } from '../test/helpers/app.ts'
import { startCluster } from '../test/helpers/redis-cluster.ts'

const calls = Number(process.argv[2] ?? 10)
const cluster = await startCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] })
try {
  const app = await buildApp({ redis: { cluster: { rootNodes: cluster.rootNodes } } as never })
  await login(app, 'bench-user')
  let rejected = 0
  for (let i = 0; i < calls; i++) {
    let last = performance.now()
    let stall = 0
    const tick = setInterval(() => {
      const now = performance.now()
      stall = Math.max(stall, now - last)
      last = now
    }, 5)
    const started = performance.now()
    const outcome = await app.session.revokeAll().then(() => 'resolved', (err: { code?: string }) => err.code ?? String(err))
    clearInterval(tick)
    if (outcome !== 'resolved') rejected++
    console.log(`${outcome}\t${Math.round(performance.now() - started)} ms\tlongest event-loop stall ${Math.round(stall)} ms`)
    await new Promise((resolve) => setTimeout(resolve, 3000))
  }
  console.log(`node ${process.version}: ${rejected} of ${calls} calls rejected`)
  await app.close()
} finally {
  await cluster.stop()
}
