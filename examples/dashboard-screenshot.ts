/**
 * Produces docs/metrics-dashboard.png, the dashboard of the demo's own metrics:
 *
 *   npx tsx examples/dashboard-screenshot.ts [--seconds 45] [--out docs/metrics-dashboard.png]
 *
 * Two demo instances (examples/demo.ts, METRICS_PORT set) share a throw-away redis-server; the
 * second reaches it through a TCP proxy. examples/dashboard.ts reads both Prometheus endpoints
 * and Chromium (playwright-core, CHROMIUM_BIN or /usr/bin/chromium) shows it while traffic runs:
 * users log in on instance 1 and read on both (cached reads), log out on instance 1 (instance 2
 * hears the invalidations), mistype passwords (failed logins, one account until it is
 * throttled), sign out other devices; midway the proxy stalls instance 2's link for 1.5 s (store
 * errors and latency). Then the page is captured.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { freePort, startRedis } from '../test/helpers/redis-server.ts'
import { startProxy } from '../test/helpers/tcp-proxy.ts'

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}
const SECONDS = Number(arg('seconds') ?? 45)
const OUT = arg('out') ?? fileURLToPath(new URL('../docs/metrics-dashboard.png', import.meta.url))
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const root = fileURLToPath(new URL('..', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const children: ChildProcess[] = []
function start (script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] })
  children.push(child)
  return child
}

async function up (url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    await sleep(100)
  }
  throw new Error(`${url} did not come up`)
}

/** One demo instance, driven like a browser would (the session cookie kept by hand). */
class Client {
  constructor (readonly origin: string) {}

  async post (path: string, body: Record<string, string>, cookie?: string): Promise<{ status: number, cookie: string | undefined }> {
    const res = await fetch(this.origin + path, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/json', ...(cookie === undefined ? {} : { cookie }) },
      body: JSON.stringify(body),
    })
    await res.arrayBuffer()
    const set = res.headers.getSetCookie().find((c) => c.startsWith('__Host-sid='))
    return { status: res.status, cookie: set?.split(';')[0] }
  }

  async get (path: string, cookie: string): Promise<number> {
    const res = await fetch(this.origin + path, { redirect: 'manual', headers: { cookie } })
    await res.arrayBuffer()
    return res.status
  }
}

const redis = await startRedis()
const proxy = await startProxy(redis.port)
try {
  const [web1, web2, metrics1, metrics2, board] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()])
  const common = { SESSION_SECRET: 'dashboard-demo-secret-0123456789abcdefghij', LOG_LEVEL: 'warn' }
  start('examples/demo.ts', { ...common, PORT: String(web1), REDIS_URL: redis.url, METRICS_PORT: String(metrics1) })
  start('examples/demo.ts', { ...common, PORT: String(web2), REDIS_URL: proxy.url, METRICS_PORT: String(metrics2) })
  start('examples/dashboard.ts', { PORT: String(board), METRICS_URLS: `http://127.0.0.1:${metrics1}/metrics,http://127.0.0.1:${metrics2}/metrics` })
  await Promise.all([up(`http://127.0.0.1:${web1}/demo.css`), up(`http://127.0.0.1:${web2}/demo.css`), up(`http://127.0.0.1:${metrics1}/metrics`), up(`http://127.0.0.1:${metrics2}/metrics`), up(`http://127.0.0.1:${board}/`)])

  const browser = await chromium.launch({ executablePath: CHROMIUM })
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 })
    await page.goto(`http://127.0.0.1:${board}/`)

    const one = new Client(`http://127.0.0.1:${web1}`)
    const two = new Client(`http://127.0.0.1:${web2}`)
    const USERS = Array.from({ length: 12 }, (_, i) => `user${i}`)
    const PASSWORD = 'demo-password-1234'
    // The demo keeps its accounts in memory, per instance: each instance gets the same ones.
    for (const name of USERS) {
      await one.post('/register', { username: name, password: PASSWORD })
      await two.post('/register', { username: name, password: PASSWORD })
    }
    const cookies = new Map<string, string>()
    const logIn = async (name: string): Promise<void> => {
      const res = await one.post('/login', { username: name, password: PASSWORD })
      if (res.cookie !== undefined) cookies.set(name, res.cookie)
    }
    for (const name of USERS) await logIn(name)

    const started = Date.now()
    let tick = 0
    let stalled = false
    let throttled = false
    while (Date.now() - started < SECONDS * 1000) {
      tick++
      const elapsed = (Date.now() - started) / 1000
      // Cached reads on both instances (instance 2 only when its link is not stalled: a stalled
      // read waits storeTimeout, which would stall this loop too).
      const reads: Array<Promise<unknown>> = []
      for (const cookie of cookies.values()) {
        reads.push(one.get('/', cookie))
        if (!stalled) reads.push(two.get('/', cookie))
      }
      await Promise.all(reads)
      const name = USERS[tick % USERS.length] as string
      // A logout on instance 1 and a login again: instance 2 is told by invalidations.
      if (tick % 6 === 0) {
        const cookie = cookies.get(name)
        if (cookie !== undefined) await one.post('/logout', {}, cookie)
        await logIn(name)
      }
      // A mistyped password now and then (few enough to stay under the demo's per-IP limit).
      if (tick % 40 === 0) await one.post('/login', { username: name, password: 'mistyped' })
      if (tick % 25 === 0) {
        // A second device of the same user, then "sign out other devices" from the first.
        const other = await two.post('/login', { username: name, password: PASSWORD })
        const cookie = cookies.get(name)
        if (other.cookie !== undefined && cookie !== undefined) await one.post('/devices/sign-out-others', {}, cookie)
      }
      if (!throttled && elapsed > SECONDS * 0.35) {
        throttled = true
        for (let i = 0; i < 8; i++) await one.post('/login', { username: 'user0', password: `guess-${i}` })
      }
      if (!stalled && elapsed > SECONDS * 0.55 && elapsed < SECONDS * 0.6) {
        stalled = true
        proxy.stall()
        // Reads instance 2 does not have cached (new sessions): each waits for the store and fails.
        const fresh = await one.post('/login', { username: 'user1', password: PASSWORD })
        if (fresh.cookie !== undefined) await Promise.all([two.get('/', fresh.cookie), two.get('/', fresh.cookie)])
        await sleep(1500)
        proxy.resume()
        stalled = false
      }
      await sleep(40)
    }
    await sleep(1200) // one more poll after the last traffic
    const samples = Number(await page.getAttribute('body', 'data-samples'))
    if (!(samples > 10)) throw new Error(`the dashboard drew ${samples} samples`)
    await page.screenshot({ path: OUT, fullPage: true })
    console.log(`wrote ${OUT}`)
  } finally {
    await browser.close()
  }
} finally {
  proxy.resume()
  for (const child of children) {
    child.kill('SIGTERM')
    if (child.exitCode === null) await once(child, 'exit')
  }
  await proxy.close()
  await redis.stop()
}
