/**
 * Demo: a small login app on fastify-hardened-session (the app itself is demo-app.ts).
 *
 *   npm install && npm run demo            # memory store, http://127.0.0.1:3000
 *   REDIS_URL=redis://127.0.0.1:6379 npm run demo
 *
 * Environment: PORT (default 3000), REDIS_URL (Redis instead of the memory store),
 * SESSION_SECRET (≥ 32 bytes; random by default, so sessions end when the demo restarts),
 * LOG_LEVEL, CLEAR_SITE_DATA (the plugin's clearSiteData option, e.g. '"cache", "cookies"'; "false"
 * sends none), METRICS_PORT (serve the plugin's metrics for Prometheus at
 * http://127.0.0.1:<METRICS_PORT>/metrics, through @opentelemetry/exporter-prometheus;
 * examples/dashboard.ts plots them).
 *
 * Open it in a browser (a phone-sized window works too): sign-in page with Log in (Enter) and
 * Create account, then an account page with the devices signed in to the account ("this device"
 * marked, sign out one or all others), a light or dark theme kept in the session, "switch user",
 * and "Who am I?". The page runs under a strict CSP (no inline script or style).
 * `npm run test:browser` drives it in Chromium and saves screenshots to test-browser/output/.
 */
import { randomBytes } from 'node:crypto'
import { buildDemo } from './demo-app.ts'

const port = Number(process.env.PORT ?? 3000)
const redisUrl = process.env.REDIS_URL
const clearSiteData = process.env.CLEAR_SITE_DATA
const useRedis = redisUrl !== undefined && redisUrl !== ''

const metricsPort = process.env.METRICS_PORT
if (metricsPort !== undefined && metricsPort !== '') {
  // Before the plugin registers: it takes the meter provider registered at that moment.
  const { metrics } = await import('@opentelemetry/api')
  const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
  const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus')
  const exporter = new PrometheusExporter({ host: '127.0.0.1', port: Number(metricsPort) })
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }))
}

const app = await buildDemo({
  secret: process.env.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
  ...(useRedis ? { redisUrl } : {}),
  ...(clearSiteData === undefined || clearSiteData === '' ? {} : { clearSiteData: clearSiteData === 'false' ? false : clearSiteData }),
  logger: { level: process.env.LOG_LEVEL ?? 'info' },
})
await app.listen({ host: '127.0.0.1', port })
const address = app.server.address()
const listening = typeof address === 'object' && address !== null ? address.port : port
app.log.info(`demo listening on http://127.0.0.1:${listening} with the ${useRedis ? 'Redis store (REDIS_URL)' : 'embedded memory store (set REDIS_URL to use Redis)'}`)
if (metricsPort !== undefined && metricsPort !== '') app.log.info(`metrics for Prometheus on http://127.0.0.1:${metricsPort}/metrics`)
if (process.env.SESSION_SECRET === undefined) app.log.warn('SESSION_SECRET not set: using a random secret, sessions end when the demo restarts')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
