/**
 * The demo (examples/demo-app.ts) in a real Chromium, for what only a browser shows: the cookie
 * jar and what scripts can read, Back after logout, Clear-Site-Data, two devices, the CSP, and
 * forms posted from other origins.
 *
 *   npm run test:browser        # needs Chromium: apt-get install chromium (or CHROMIUM_BIN=/path)
 *
 * The demo runs in-process on a free 127.0.0.1 port with the memory store and
 * `clearSiteData: '"cache", "cookies"'` (so that logout-then-login in one request has a cookie
 * directive to leave out); a second HTTP server plays the attacker, reached as
 * http://127.0.0.1:<other port> (same site, other origin) and http://localhost:<port> (other
 * site). Chromium treats both hosts as secure contexts, so the Secure `__Host-` cookie works
 * over plain HTTP. The back/forward cache is left on, as in a user's browser (Playwright turns
 * it off by default). Every wait is for a response, a page's load event or a selector; nothing
 * sleeps.
 * A failing test saves a screenshot of each of its pages to test-browser/output/; the devices
 * test saves one on success too (test-browser/output/account-devices.png), and the layout test
 * saves the sign-in, account and error pages at 390 px and 1280 px, light and dark
 * (test-browser/output/layout-*.png): look at them after a change to the demo's pages.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page, type Response } from 'playwright-core'
import { buildDemo } from '../examples/demo-app.ts'
import { esc } from '../examples/demo-page.ts'

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const OUTPUT = new URL('./output/', import.meta.url)
const COOKIE = '__Host-sid'

let app: FastifyInstance
let attacker: Server
let browser: Browser
let demo: string // http://127.0.0.1:<port>
let attackerPort: number

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium (Debian/Ubuntu), or set CHROMIUM_BIN`)
  rmSync(OUTPUT, { recursive: true, force: true })
  mkdirSync(OUTPUT, { recursive: true })
  app = await buildDemo({
    secret: 'browser-test-secret-of-at-least-32-bytes',
    clearSiteData: '"cache", "cookies"',
    password: { memoryCost: 4096, timeCost: 1 }, // cheap argon2id: this test is about the browser, not the hash cost
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  demo = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // The attacker's page: a form that posts itself to the demo (?to=/path&field=value...).
  attacker = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://attacker')
    const inputs = [...url.searchParams].filter(([k]) => k !== 'to')
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('')
    res.setHeader('content-type', 'text/html; charset=utf-8')
    res.end(`<!doctype html><form method="post" action="${demo}${url.searchParams.get('to') ?? '/'}">${inputs}</form><script>document.forms[0].submit()</script>`)
  })
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
  attackerPort = (attacker.address() as AddressInfo).port
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags Chromium's own connections are refused by the closed network here.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreDefaultArgs: ['--disable-back-forward-cache'],
  })
})

after(async () => {
  await browser?.close()
  await new Promise((resolve) => attacker?.close(resolve))
  await app?.close()
})

type Visitor = (label: string, options?: BrowserContextOptions) => Promise<{ context: BrowserContext, page: Page }>

/**
 * A test that gets `visitor(label, options)`: a new browser context ("device") with a page.
 * If the test fails, each of its pages is screenshotted to test-browser/output/; its contexts
 * are closed after it.
 */
function browserTest (name: string, body: (visitor: Visitor) => Promise<void>): void {
  test(name, async () => {
    const visitors: Array<{ label: string, context: BrowserContext, page: Page }> = []
    const visitor: Visitor = async (label, options = {}) => {
      const context = await browser.newContext(options)
      context.setDefaultTimeout(10_000)
      const page = await context.newPage()
      visitors.push({ label, context, page })
      return { context, page }
    }
    try {
      await body(visitor)
    } catch (err) {
      const slug = name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()
      for (const v of visitors) {
        await v.page.screenshot({ path: new URL(`${slug}--${v.label}.png`, OUTPUT).pathname, fullPage: true }).catch(() => {})
      }
      throw err
    } finally {
      for (const v of visitors) await v.context.close()
    }
  })
}

let names = 0
/** A fresh account name per use, so that tests share no throttle counter or devices list. */
const fresh = (prefix: string): string => `${prefix}${++names}`
const PASSWORD = 'correct horse battery'

/** Registers through HTTP, as a script would (no Origin header: not a browser). */
async function account (name: string, password = PASSWORD): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/register', payload: { username: name, password } })
  assert.equal(res.statusCode, 200)
}

/**
 * Opens the attacker's page on `host` (`127.0.0.1`: another origin of the same site as the demo;
 * `localhost`: another site), which auto-posts a form with `fields` to the demo's `path`, and
 * answers the demo's response to that POST.
 */
async function autoPosted (page: Page, host: '127.0.0.1' | 'localhost', path: string, fields: Record<string, string>): Promise<Response> {
  const posted = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path)
  await page.goto(`http://${host}:${attackerPort}/?${new URLSearchParams({ to: path, ...fields }).toString()}`)
  return await posted
}

/**
 * Runs `act` (a click or a key that submits a form), waits for the POST's answer and the page it
 * leads to, and checks that the form went to `path`.
 */
async function submit (page: Page, path: string, act: () => Promise<void>): Promise<Response> {
  const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.waitForEvent('load'), act()])
  assert.equal(`POST ${new URL(res.url()).pathname}`, `POST ${path}`, 'the form was sent to the expected route')
  return res
}

/**
 * Clicks "Create account" with script on: the form posts in the background (no page load) and
 * the answer's notice replaces the page's. Returns the POST's answer.
 */
async function registerInPlace (page: Page): Promise<Response> {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/register'),
    page.click('#register'),
  ])
  await page.waitForFunction(() => document.activeElement?.getAttribute('name') === 'password' && document.getElementById('notice') !== null)
  return res
}

/** Signs in through the sign-in form, pressing Enter in the password field. */
async function signIn (page: Page, name: string, password = PASSWORD): Promise<Response> {
  if (page.url() !== `${demo}/`) await page.goto(`${demo}/`)
  await page.fill('input[name=username]', name)
  await page.fill('input[name=password]', password)
  return await submit(page, '/login', () => page.press('input[name=password]', 'Enter'))
}

async function sessionCookie (context: BrowserContext): Promise<string | undefined> {
  return (await context.cookies(demo)).find((c) => c.name === COOKIE)?.value
}

/** GET /me with this cookie value, outside the browser. */
async function me (cookie: string | undefined): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await app.inject({ url: '/me', headers: cookie === undefined ? {} : { cookie: `${COOKIE}=${cookie}` } })
  return { status: res.statusCode, body: res.json() }
}

browserTest('page: both pages load under a CSP without inline script, with no failed request, console error or CSP violation', async (visitor) => {
  const { page } = await visitor('page')
  const failures: string[] = []
  page.on('response', (r) => { if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`) })
  page.on('requestfailed', (r) => failures.push(`failed ${r.url()}`))
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') failures.push(`console ${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`))
  const res = await page.goto(`${demo}/`)
  const csp = (await res?.allHeaders())?.['content-security-policy'] ?? ''
  assert.match(csp, /default-src 'none'/)
  assert.match(csp, /script-src 'self'(;|$)/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  // The separate script ran under that policy: it wrote what it can read of document.cookie.
  await page.waitForSelector('#script-cookies:text-is("\\"\\"")')
  const icon = await page.getAttribute('link[rel=icon]', 'href')
  assert.equal(icon, '/favicon.svg')
  for (const path of ['/favicon.svg', '/favicon.ico']) {
    const fav = await page.request.get(`${demo}${path}`)
    assert.equal(fav.status(), 200, path)
    assert.equal(fav.headers()['content-type'], 'image/svg+xml', path)
  }
  // The signed-in page too, and its script's fetch (connect-src 'self'): "Who am I?".
  const name = fresh('csp')
  await account(name)
  await signIn(page, name)
  assert.equal(page.url(), `${demo}/account`)
  await page.click('#whoami')
  await page.waitForSelector('#me:visible')
  assert.match(await page.textContent('#me') ?? '', new RegExp(`^200 \\{\\n {2}"user": "${name}",`))
  assert.deepEqual(failures, [])
})

browserTest('cookie: the jar holds __Host-sid HttpOnly, Secure, SameSite=Lax, host-only on /, and document.cookie cannot read it', async (visitor) => {
  const { context, page } = await visitor('cookie')
  await page.goto(`${demo}/`)
  await submit(page, '/theme', () => page.click('#theme')) // an anonymous session: the theme
  const name = fresh('cookie')
  await account(name)
  await signIn(page, name)
  assert.equal(page.url(), `${demo}/account`)
  const cookies = await context.cookies(demo)
  assert.equal(cookies.length, 1)
  const c = cookies[0]!
  assert.equal(c.name, COOKIE)
  assert.equal(c.httpOnly, true)
  assert.equal(c.secure, true)
  assert.equal(c.sameSite, 'Lax')
  assert.equal(c.path, '/')
  assert.equal(c.domain, '127.0.0.1') // no leading dot: host-only, as __Host- requires
  assert.ok(c.expires > Date.now() / 1000, 'a persistent cookie with the session\'s lifetime')
  assert.equal(await page.evaluate('document.cookie'), '')
  assert.equal(await page.textContent('#script-cookies'), '""')
  // The value is what the server accepts as this user's session.
  assert.equal((await me(c.value)).body['user'], name)
})

browserTest('login: Enter logs in (never registers) and the session id changes at login; the old id is dead', async (visitor) => {
  const { context, page } = await visitor('login')
  await page.goto(`${demo}/`)
  await submit(page, '/theme', () => page.click('#theme'))
  const before = await sessionCookie(context)
  assert.ok(before !== undefined, 'the theme started an anonymous session')
  const name = fresh('enter')
  await page.fill('input[name=username]', name)
  await page.fill('input[name=password]', PASSWORD)
  const registered = await registerInPlace(page)
  assert.equal(registered.status(), 200)
  assert.equal(await page.getAttribute('#notice', 'class'), 'notice info')
  assert.equal(await page.inputValue('input[name=username]'), name)
  const loggedIn = await submit(page, '/login', () => page.press('input[name=password]', 'Enter'))
  assert.equal(loggedIn.status(), 303)
  assert.equal(page.url(), `${demo}/account`)
  assert.equal(await page.textContent('#user'), name)
  const after = await sessionCookie(context)
  assert.ok(after !== undefined && after !== before, 'a new id at login (fixation defence)')
  assert.equal((await me(before)).status, 401, 'the pre-login id no longer works')
  assert.equal((await me(after)).body['user'], name)
  assert.equal(await page.getAttribute('body', 'class'), 'dark', 'the visitor\'s theme is kept through sign-in')
})

browserTest('login: Enter with a wrong password or a mistyped name answers 401 and creates no account', async (visitor) => {
  const { page } = await visitor('typo')
  const name = fresh('typo')
  await account(name)
  await page.goto(`${demo}/`)
  const wrong = await signIn(page, name, 'not the password')
  assert.equal(wrong.status(), 401)
  assert.equal(await page.textContent('#notice'), 'Invalid username or password.')
  const typo = await signIn(page, `${name}x`, PASSWORD)
  assert.equal(typo.status(), 401, 'a mistyped name is not registered')
  assert.equal(await page.textContent('#notice'), 'Invalid username or password.')
  // Had Enter registered the mistyped name, this sign-in would now succeed.
  const again = await app.inject({ method: 'POST', url: '/login', payload: { username: `${name}x`, password: PASSWORD } })
  assert.equal(again.statusCode, 401)
})

browserTest('register: a taken name and a new name get the same status and the same page; neither signs in', async (visitor) => {
  const { context, page } = await visitor('register')
  const taken = fresh('taken')
  await account(taken)
  const answers: Array<{ status: number, body: string }> = []
  for (const name of [taken, fresh('free')]) {
    await page.goto(`${demo}/`)
    await page.fill('input[name=username]', name)
    await page.fill('input[name=password]', 'another password 123')
    const r = await registerInPlace(page)
    answers.push({ status: r.status(), body: (await r.text()).replaceAll(name, 'NAME') })
  }
  assert.equal(answers[0]!.status, 200)
  assert.deepEqual(answers[0], answers[1])
  assert.equal(await sessionCookie(context), undefined, 'registration does not sign in')
  // The taken name kept its password: registration did not overwrite it.
  assert.equal((await signIn(page, taken)).status(), 303)
})

browserTest('register: "Create account" keeps the name and the chosen password, so Enter then logs in; without script the answer asks for the password again, cursor in it', async (visitor) => {
  const { page } = await visitor('register-keep')
  const name = fresh('keep')
  await page.goto(`${demo}/`)
  await page.fill('input[name=username]', name)
  await page.fill('input[name=password]', PASSWORD)
  await registerInPlace(page)
  assert.equal(page.url(), `${demo}/`, 'no page load')
  assert.equal(await page.textContent('#notice'), `If the name “${name}” was free, it is yours now: press Log in (or Enter) to sign in with it.`)
  assert.equal(await page.inputValue('input[name=password]'), PASSWORD, 'the chosen password is still there')
  assert.equal((await submit(page, '/login', () => page.press('input[name=password]', 'Enter'))).status(), 303)
  assert.equal(await page.textContent('#user'), name)

  const { page: plain } = await visitor('register-noscript', { javaScriptEnabled: false })
  const other = fresh('keep')
  await plain.goto(`${demo}/`)
  await plain.fill('input[name=username]', other)
  await plain.fill('input[name=password]', PASSWORD)
  const res = await submit(plain, '/register', () => plain.click('#register'))
  assert.equal(res.status(), 200)
  assert.equal(await plain.textContent('#notice'), `If the name “${other}” was free, it is yours now: enter its password again and log in.`)
  assert.equal(await plain.inputValue('input[name=username]'), other)
  assert.equal(await plain.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'the cursor waits in the password field')
})

browserTest('reload: the account page shows the user and the saved theme on first paint, even without script', async (visitor) => {
  const { context, page } = await visitor('reload')
  const name = fresh('reload')
  await account(name)
  await signIn(page, name)
  assert.equal(page.url(), `${demo}/account`)
  await submit(page, '/theme', () => page.click('#theme'))
  await page.reload()
  assert.equal(await page.getAttribute('body', 'class'), 'dark')
  assert.equal(await page.textContent('#user'), name)
  assert.equal(await page.locator('#devices tbody tr').count(), 1)
  // The same session in a browser that runs no script: the server rendered all of it.
  const { page: plain } = await visitor('reload-noscript', { javaScriptEnabled: false, storageState: await context.storageState() })
  await plain.goto(`${demo}/account`)
  assert.equal(await plain.getAttribute('body', 'class'), 'dark')
  assert.equal(await plain.textContent('#user'), name)
})

browserTest('logout: the theme ends with the session and does not carry to the next user', async (visitor) => {
  const { page } = await visitor('theme')
  const first = fresh('first')
  const second = fresh('second')
  await account(first)
  await account(second)
  await signIn(page, first)
  assert.equal(page.url(), `${demo}/account`)
  await submit(page, '/theme', () => page.click('#theme'))
  assert.equal(await page.getAttribute('body', 'class'), 'dark')
  await submit(page, '/logout', () => page.click('#logout'))
  assert.equal(await page.getAttribute('body', 'class'), 'light')
  await signIn(page, second)
  assert.equal(page.url(), `${demo}/account`)
  assert.equal(await page.textContent('#user'), second)
  assert.equal(await page.getAttribute('body', 'class'), 'light')
})

browserTest('back: Back after logout shows no private data (the page is no-store and is asked for again)', async (visitor) => {
  const { page } = await visitor('back')
  const name = fresh('back')
  await account(name)
  await signIn(page, name)
  const accountPage = await page.reload()
  assert.equal(accountPage?.url(), `${demo}/account`)
  assert.equal((await accountPage.allHeaders())['cache-control'], 'no-store')
  assert.equal(await page.textContent('#user'), name)
  await submit(page, '/logout', () => page.click('#logout'))
  const asked: string[] = []
  page.on('request', (r) => asked.push(new URL(r.url()).pathname))
  // Commit, not load: a page restored from the back/forward cache fires no load event. Then
  // whichever page Back shows: the sign-in page (asked again, 303) or the private one.
  await page.goBack({ waitUntil: 'commit' })
  await page.waitForSelector('#sign-in, #devices')
  assert.ok(asked.includes('/account'), `Back asked the server again (requests: ${asked.join(', ') || 'none'})`)
  assert.equal(page.url(), `${demo}/`, '/account answered 303 to the sign-in page')
  assert.equal(await page.locator('#devices').count(), 0)
  assert.equal(await page.locator('#user').count(), 0)
  assert.ok(!(await page.content()).includes(name), 'the user name is nowhere on the page')
  assert.equal(await page.locator('#sign-in').count(), 1)
})

browserTest('clear-site-data: logout wipes the jar ("cookies"), but logout then login in one request (switch user) keeps the new session', async (visitor) => {
  const { context, page } = await visitor('switch')
  const first = fresh('switch-a')
  const second = fresh('switch-b')
  await account(first)
  await account(second)
  const probe = { name: 'probe', value: '1', domain: '127.0.0.1', path: '/' }

  // Plain logout: the browser honours "cookies" here, so the rule below is tested for real.
  await signIn(page, first)
  assert.equal(page.url(), `${demo}/account`)
  await context.addCookies([probe])
  const loggedOut = await submit(page, '/logout', () => page.click('#logout'))
  assert.equal((await loggedOut.allHeaders())['clear-site-data'], '"cache", "cookies"')
  assert.equal(page.url(), `${demo}/`)
  assert.deepEqual((await context.cookies(demo)).map((c) => c.name), [], 'every cookie of the site is gone')

  // Switch user: logout + login in one response; only "cache" is sent beside the new cookie.
  await signIn(page, first)
  assert.equal(page.url(), `${demo}/account`)
  const old = await sessionCookie(context)
  await context.addCookies([probe])
  await page.fill('#switch-user input[name=username]', second)
  await page.fill('#switch-user input[name=password]', PASSWORD)
  const res = await submit(page, '/switch-user', () => page.click('#switch-user button'))
  assert.equal(res.status(), 303)
  assert.equal((await res.allHeaders())['clear-site-data'], '"cache"')
  assert.match((await res.headerValue('set-cookie')) ?? '', /^__Host-sid=/)
  assert.equal(page.url(), `${demo}/account`, 'the browser kept the new session cookie: /account did not send it back to sign-in')
  assert.equal(await page.textContent('#user'), second)
  const now = await sessionCookie(context)
  assert.ok(now !== undefined && now !== old)
  assert.ok((await context.cookies(demo)).some((c) => c.name === 'probe'), 'no "cookies" directive beside the new session cookie')
  assert.equal((await me(now)).body['user'], second)
  assert.equal((await me(old)).status, 401, 'the first user\'s session ended')
  await page.reload()
  assert.equal(await page.textContent('#user'), second)
})

browserTest('devices: each device marks itself; "sign out other devices" signs the second browser out', async (visitor) => {
  const name = fresh('devices')
  await account(name)
  const a = await visitor('device-a')
  const b = await visitor('device-b', { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/140.0' })
  await signIn(a.page, name)
  assert.equal(a.page.url(), `${demo}/account`)
  await signIn(b.page, name)
  assert.equal(b.page.url(), `${demo}/account`)
  await a.page.reload()
  const refA = (await me(await sessionCookie(a.context))).body['ref']
  const refB = (await me(await sessionCookie(b.context))).body['ref']
  assert.equal(await a.page.locator('#devices tbody tr').count(), 2)
  assert.equal(await a.page.getAttribute('tr.this-device', 'data-ref'), refA)
  assert.equal(await b.page.getAttribute('tr.this-device', 'data-ref'), refB)
  assert.equal(await a.page.textContent(`tr[data-ref="${String(refB)}"] td:first-child`), 'Firefox 140 on Windows')
  await a.page.screenshot({ path: new URL('account-devices.png', OUTPUT).pathname, fullPage: true })

  const done = await submit(a.page, '/devices/sign-out-others', () => a.page.click('#sign-out-others'))
  assert.equal(done.status(), 303)
  assert.equal(await a.page.textContent('#notice'), 'Signed out 1 other device.')
  assert.equal(await a.page.locator('#devices tbody tr').count(), 1)
  assert.equal(await a.page.isDisabled('#sign-out-others'), true)
  await b.page.reload()
  assert.equal(b.page.url(), `${demo}/`, 'the second browser is back at the sign-in page')
  assert.equal(await b.page.locator('#sign-in').count(), 1)
  assert.equal(await b.page.textContent('#notice'), 'You were signed out: this device\'s session was ended from another device, or it expired. Log in again to continue.')
  await b.page.reload()
  assert.equal(await b.page.locator('#notice').count(), 0, 'said once: the dead cookie is gone')
  assert.equal((await me(await sessionCookie(b.context))).status, 401)
  assert.equal((await me(await sessionCookie(a.context))).body['user'], name, 'this device stays signed in')
})

browserTest('devices: "Sign out" on one row ends that device only', async (visitor) => {
  const name = fresh('row')
  await account(name)
  const a = await visitor('row-a')
  const b = await visitor('row-b')
  const c = await visitor('row-c')
  for (const v of [a, b, c]) {
    await signIn(v.page, name)
    assert.equal(v.page.url(), `${demo}/account`)
  }
  await a.page.reload()
  const refB = String((await me(await sessionCookie(b.context))).body['ref'])
  const revoked = await submit(a.page, '/devices/sign-out', () => a.page.click(`tr[data-ref="${refB}"] button`))
  assert.equal(revoked.status(), 303)
  assert.equal(await a.page.textContent('#notice'), 'Signed out 1 other device.')
  assert.equal(await a.page.locator('#devices tbody tr').count(), 2)
  assert.equal(await a.page.locator(`tr[data-ref="${refB}"]`).count(), 0)
  assert.equal((await me(await sessionCookie(b.context))).status, 401)
  assert.equal((await me(await sessionCookie(c.context))).body['user'], name)
})

browserTest('throttle: after 5 failures for a name, sign-in answers 429 with Retry-After, shown as a countdown', async (visitor) => {
  const { page } = await visitor('throttle')
  const name = fresh('throttle')
  await account(name)
  await page.goto(`${demo}/`)
  for (let i = 0; i < 5; i++) assert.equal((await signIn(page, name, `wrong password ${i}`)).status(), 401)
  const res = await signIn(page, name) // the right password, but throttled: no verify at all
  assert.equal(res.status(), 429)
  const retryAfter = Number((await res.allHeaders())['retry-after'])
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 300, `Retry-After ${retryAfter}`)
  await page.waitForSelector('#notice[data-retry-after]')
  const text = await page.textContent('#notice') ?? ''
  assert.match(text, /^Too many failed sign-ins for this name or from this network\. Try again in (5 min|4 min \d+ s)\. \((5:00|4:[0-5]\d) left\)$/)
  assert.equal(await page.inputValue('input[name=username]'), name)
})

browserTest('csrf: a form auto-posted from another origin of the same site is refused with 403 FST_SESSION_CSRF; the session is unchanged', async (visitor) => {
  const { context, page } = await visitor('csrf-same-site')
  const name = fresh('victim')
  await account(name)
  await signIn(page, name)
  assert.equal(page.url(), `${demo}/account`)
  const cookie = await sessionCookie(context)
  const res = await autoPosted(page, '127.0.0.1', '/theme', { theme: 'dark', back: '/account' })
  const sent = await res.request().allHeaders()
  assert.equal(sent['sec-fetch-site'], 'same-site')
  assert.match(sent['cookie'] ?? '', /__Host-sid=/, 'SameSite=Lax let the cookie through: the origin check had to act')
  assert.equal(res.status(), 403)
  assert.match(await res.text(), /FST_SESSION_CSRF/)
  assert.equal(await sessionCookie(context), cookie)
  const after = await me(cookie)
  assert.equal(after.body['user'], name)
  assert.equal(after.body['theme'], 'light')
})

browserTest('csrf: a login form auto-posted from another site is refused (login CSRF): the visitor stays who they were', async (visitor) => {
  const { context, page } = await visitor('csrf-login')
  const victim = fresh('victim')
  const mallory = fresh('mallory')
  await account(victim)
  await account(mallory)
  await signIn(page, victim)
  assert.equal(page.url(), `${demo}/account`)
  const cookie = await sessionCookie(context)
  const res = await autoPosted(page, 'localhost', '/login', { username: mallory, password: PASSWORD })
  const sent = await res.request().allHeaders()
  assert.equal(sent['sec-fetch-site'], 'cross-site')
  assert.equal(sent['cookie'], undefined, 'SameSite=Lax withheld the cookie')
  assert.equal(res.status(), 403)
  assert.match(await res.text(), /FST_SESSION_CSRF/)
  assert.equal(await sessionCookie(context), cookie, 'no attacker session cookie was set')
  assert.equal((await me(cookie)).body['user'], victim)
})

browserTest('csrf: a cross-site form to /theme (cookie withheld) is refused and does not replace the session cookie', async (visitor) => {
  const { context, page } = await visitor('csrf-theme')
  const name = fresh('victim')
  await account(name)
  await signIn(page, name)
  assert.equal(page.url(), `${demo}/account`)
  const cookie = await sessionCookie(context)
  const res = await autoPosted(page, 'localhost', '/theme', { theme: 'dark', back: '/' })
  assert.equal((await res.request().allHeaders())['cookie'], undefined)
  assert.equal(res.status(), 403)
  assert.equal(await res.headerValue('set-cookie'), null)
  assert.equal(await sessionCookie(context), cookie)
  assert.equal((await me(cookie)).body['user'], name)
})

browserTest('errors: a 404, the plugin\'s cross-site 403 and the demo\'s own 403 are one error page with a way back, the 404 in the visitor\'s theme; API calls get JSON', async (visitor) => {
  const { page } = await visitor('errors')
  const name = fresh('errors')
  await account(name)
  await signIn(page, name)
  await submit(page, '/theme', () => page.click('#theme'))
  const notFound = await page.goto(`${demo}/no-such-page`)
  assert.equal(notFound?.status(), 404)
  const shape = async (): Promise<string> => await page.evaluate(() => [
    document.body.className,
    document.querySelector('.error-card .status')?.textContent,
    document.querySelector('.error-card h1')?.textContent,
    document.querySelector('.error-card a.button')?.getAttribute('href'),
    document.querySelector('link[rel=stylesheet]')?.getAttribute('href'),
  ].join(' | '))
  assert.equal(await shape(), 'dark | 404 | Page not found | / | /demo.css')
  await page.goto(`${demo}/account`)
  const forged = await autoPosted(page, '127.0.0.1', '/devices/sign-out-others', {})
  assert.equal(forged.status(), 403)
  await page.waitForSelector('.error-card')
  // Refused before the session is read (no store access for a forged request): the default theme.
  assert.equal(await shape(), 'light | 403 | Request refused | / | /demo.css')
  assert.match(await page.textContent('.error-card') ?? '', /Error code FST_SESSION_CSRF/)
  const { page: anonymous } = await visitor('errors-theme')
  const themed = await autoPosted(anonymous, 'localhost', '/theme', { theme: 'dark', back: '/' })
  assert.equal(themed.status(), 403)
  await anonymous.waitForSelector('.error-card')
  assert.equal(await anonymous.evaluate(() => document.querySelector('.error-card h1')?.textContent), 'Request refused', 'the demo\'s own refusal looks the same')
  const api = await page.request.get(`${demo}/no-such-page`, { headers: { accept: 'application/json' } })
  assert.equal(api.status(), 404)
  assert.equal((await api.json() as { statusCode: number }).statusCode, 404)
})

/**
 * Whether the page fits its width: nothing scrolls sideways, and no element in a card reaches past
 * the card. Returns what does not fit (empty when all fits).
 */
async function overflow (page: Page): Promise<string[]> {
  return await page.evaluate(() => {
    const out: string[] = []
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page is ${document.documentElement.scrollWidth} px wide in ${window.innerWidth}`)
    for (const card of document.querySelectorAll('.card')) {
      const edge = card.getBoundingClientRect().right
      for (const el of card.querySelectorAll('*')) {
        const right = el.getBoundingClientRect().right
        if (right > edge + 0.5) out.push(`${el.tagName.toLowerCase()}${el.id === '' ? '' : '#' + el.id}.${el.className} ends at ${Math.round(right)} past its card at ${Math.round(edge)}`)
      }
    }
    return out
  })
}

browserTest('layout: at 390 px and 1280 px, light and dark, the sign-in, account and error pages fit the width; inputs take the theme; screenshots saved', async (visitor) => {
  const name = fresh('layout')
  await account(name)
  const other = await visitor('layout-other', { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/140.0' })
  await signIn(other.page, name)
  for (const width of [390, 1280]) {
    const { page } = await visitor(`layout-${width}`, { viewport: { width, height: 844 } })
    /** Checks the page as it is and saves its screenshot as layout-<label>-<width>-<theme>.png. */
    const check = async (label: string, theme: 'light' | 'dark'): Promise<void> => {
      assert.equal(await page.getAttribute('body', 'class'), theme, `${label}: the theme`)
      assert.deepEqual(await overflow(page), [], `${label} at ${width} px (${theme})`)
      // Inputs follow the theme: a dark field in the dark theme, a light one in the light theme.
      const field = await page.evaluate(() => {
        const input = document.querySelector('main input:not([type=hidden])')
        if (input === null) return undefined
        const rgb = getComputedStyle(input).backgroundColor.match(/\d+/g)?.map(Number) ?? [0, 0, 0]
        return (0.2126 * (rgb[0] ?? 0) + 0.7152 * (rgb[1] ?? 0) + 0.0722 * (rgb[2] ?? 0)) / 255
      })
      if (field !== undefined) assert.ok(theme === 'dark' ? field < 0.25 : field > 0.85, `${label}: an input's background luminance ${field.toFixed(2)} in the ${theme} theme`)
      await page.screenshot({ path: new URL(`layout-${label}-${width}-${theme}.png`, OUTPUT).pathname, fullPage: true })
    }
    await page.goto(`${demo}/`)
    await check('sign-in', 'light')
    await submit(page, '/theme', () => page.click('#theme'))
    await check('sign-in', 'dark')
    await signIn(page, name) // the theme is kept through sign-in
    assert.equal(page.url(), `${demo}/account`)
    for (const theme of ['dark', 'light'] as const) {
      await check('account', theme)
      if (width === 390) {
        // On a phone the devices list is one card per device: each sign-out button is on screen.
        const button = await page.locator('#devices tbody tr:not(.this-device) button').first().boundingBox()
        assert.ok(button !== null && button.x + button.width <= width, 'the row\'s button is within the screen')
      }
      await page.goto(`${demo}/no-such-page`)
      await check('error-404', theme)
      await page.goto(`${demo}/account`)
      if (theme === 'dark') await submit(page, '/theme', () => page.click('#theme'))
    }
  }
})
