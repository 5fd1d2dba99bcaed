/**
 * Device-bound sessions (DBSC) in a real browser: the demo (examples/demo-app.ts) over HTTPS in
 * headless Chromium with its DBSC code switched on and a software key (Linux has no TPM path):
 *
 *   --enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,
 *                     EnableBoundSessionCredentialsSoftwareKeysForManualTesting
 *   --ignore-certificate-errors-spki-list=<SHA-256 of the test certificate's SPKI>
 *
 * (DBSC needs a secure origin that Chromium trusts: plain http://localhost, or HTTPS with
 * certificate errors merely ignored, registers nothing.) The bound cookie lives 3 s
 * (`allowShortDurations`), so that its expiry is seen without a long wait; every wait is a
 * bounded poll or a response.
 *
 *   npm run test:browser        # needs Chromium 156+: apt-get install chromium (or CHROMIUM_BIN=/path)
 */
import assert from 'node:assert/strict'
import { createHash, createPublicKey } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { buildDemo } from '../examples/demo-app.ts'
import { makeCertificates } from '../test/helpers/tls.ts'

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const OUTPUT = new URL('./output/', import.meta.url)
const BOUND = '__Host-sid-bound'
const REGISTER = '/.well-known/device-bound-sessions/register'
const REFRESH = '/.well-known/device-bound-sessions/refresh'
const MAX_AGE = 3000
const PASSWORD = 'correct horse battery'

let app: FastifyInstance
let browser: Browser
let origin: string
let dir: string
/** Every DBSC endpoint request the demo saw, with its status (from the demo's request log). */
const dbsc: Array<{ path: string, status: number }> = []
const urls = new Map<string, string>()
const requestLog = new Writable({
  write (chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue
      const entry = JSON.parse(line) as { reqId?: string, req?: { url?: string }, res?: { statusCode?: number } }
      if (entry.reqId !== undefined && entry.req?.url !== undefined) urls.set(entry.reqId, entry.req.url)
      const path = entry.reqId === undefined ? undefined : urls.get(entry.reqId)
      if (entry.res?.statusCode !== undefined && (path === REGISTER || path === REFRESH)) dbsc.push({ path, status: entry.res.statusCode })
    }
    done()
  },
})

async function until (check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!await check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (Debian/Ubuntu), or set CHROMIUM_BIN`)
  mkdirSync(OUTPUT, { recursive: true })
  dir = await mkdtemp(join(tmpdir(), 'dbsc-browser-'))
  const certs = await makeCertificates(dir)
  app = await buildDemo({
    secret: 'browser-test-secret-of-at-least-32-bytes',
    password: { memoryCost: 4096, timeCost: 1 },
    https: { cert: certs.server.cert, key: certs.server.key },
    deviceBound: { cookieMaxAge: MAX_AGE },
    allowShortDurations: true,
    logger: { level: 'info', stream: requestLog } as never,
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  origin = `https://localhost:${(app.server.address() as AddressInfo).port}`
  const spki = createHash('sha256').update(createPublicKey(certs.server.cert).export({ type: 'spki', format: 'der' })).digest('base64')
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting',
      `--ignore-certificate-errors-spki-list=${spki}`],
  })
})

after(async () => {
  await browser?.close()
  await app?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

test('dbsc: Chromium registers a key at login, the devices list says "device-bound", the device refreshes its bound cookie, and a copied cookie jar dies when the bound cookie expires', async () => {
  const name = 'dbsc-user'
  assert.equal((await app.inject({ method: 'POST', url: '/register', payload: { username: name, password: PASSWORD } })).statusCode, 200)
  const context = await browser.newContext()
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()
  const thiefContext = await browser.newContext()
  try {
    await page.goto(`${origin}/`)
    await page.fill('input[name=username]', name)
    await page.fill('input[name=password]', PASSWORD)
    await Promise.all([page.waitForURL(`${origin}/account`), page.press('input[name=password]', 'Enter')])

    // Registration: Chromium answers the login's Secure-Session-Registration on its own.
    await until(async () => dbsc.some((r) => r.path === REGISTER), 10_000, 'Chromium sent a registration')
    assert.deepEqual(dbsc.filter((r) => r.path === REGISTER).map((r) => r.status), [200])
    const jar = await context.cookies(origin)
    const bound = jar.find((c) => c.name === BOUND)
    assert.ok(bound !== undefined && bound.httpOnly && bound.secure, 'the bound cookie is in the jar, HttpOnly and Secure')
    await page.reload()
    assert.equal(await page.locator('#devices tbody tr.this-device').filter({ hasText: 'device-bound' }).count(), 1, 'the devices list shows the binding')
    await page.screenshot({ path: new URL('dbsc-account-devices.png', OUTPUT).pathname, fullPage: true })

    // The thief copies both cookies into another browser, and keeps the bound one past its Max-Age.
    await thiefContext.addCookies((await context.cookies(origin)).map((c) => ({ ...c, expires: Math.floor(Date.now() / 1000) + 3600 })))
    const thief = await thiefContext.newPage()
    await thief.goto(`${origin}/account`)
    assert.equal(new URL(thief.url()).pathname, '/account', 'a copied jar works while the bound cookie lives')

    // Past the bound cookie's deadline the copy is worthless; the device refreshes with its key.
    await until(async () => {
      await thief.goto(`${origin}/account`)
      return new URL(thief.url()).pathname === '/'
    }, 10_000, 'the copied session died with its bound cookie')
    await page.goto(`${origin}/account`)
    assert.equal(new URL(page.url()).pathname, '/account', 'the device is still signed in')
    assert.ok(dbsc.some((r) => r.path === REFRESH && r.status === 200), 'through a refresh signed by the device key')
    const after = (await context.cookies(origin)).find((c) => c.name === BOUND)
    assert.ok(after !== undefined && after.value !== bound.value, 'a new bound cookie')
  } catch (err) {
    await page.screenshot({ path: new URL('dbsc-failure.png', OUTPUT).pathname, fullPage: true }).catch(() => {})
    throw err
  } finally {
    await context.close()
    await thiefContext.close()
  }
})
