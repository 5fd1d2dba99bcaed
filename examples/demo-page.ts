/**
 * The demo's HTML, rendered on the server: every page shows the state of its session (user,
 * theme, devices) on the first paint, and every form works without script. The only script,
 * `/demo.js`, and the stylesheet are separate files, so the page runs under a CSP without
 * 'unsafe-inline' (demo-app.ts sends it). One layout for every page, errors included; it reads
 * on a 390 px phone as on a desktop (demo.css), in a light and a dark theme.
 *
 * Everything interpolated goes through `esc` (OWASP XSS Prevention Cheat Sheet, rule 1).
 */
import type { SessionInfo } from '../lib/index.ts'

export type Theme = 'light' | 'dark'

/** A line shown above the forms; `retryAfter` (seconds) drives the countdown of a throttled login. */
export interface Notice {
  kind: 'info' | 'error'
  text: string
  retryAfter?: number
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function esc (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

/** Inline icons (markup, not resources: the CSP's img-src is not involved), drawn in the text colour. */
const ICON = {
  dark: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M20 14.5A8 8 0 0 1 9.5 4a8 8 0 1 0 10.5 10.5z" fill="currentColor"/></svg>',
  light: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="4.5" fill="currentColor"/>' +
    '<path d="M12 1.5v3M12 19.5v3M1.5 12h3M19.5 12h3M4.6 4.6l2.1 2.1M17.3 17.3l2.1 2.1M4.6 19.4l2.1-2.1M17.3 6.7l2.1-2.1" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
}

function themeForm (theme: Theme, back: '/' | '/account'): string {
  const next: Theme = theme === 'dark' ? 'light' : 'dark'
  const label = `${next === 'dark' ? 'Dark' : 'Light'} theme`
  return `<form method="post" action="/theme"><input type="hidden" name="back" value="${back}">` +
    `<button id="theme" class="ghost" name="theme" value="${next}" title="${label} (kept in this browser's session, and through sign-in)">${ICON[next]}<span class="label">${label}</span></button></form>`
}

const COOKIE_NOTE = '<footer class="footnote">The session cookie is <code>__Host-sid</code> (HttpOnly, Secure, SameSite=Lax). ' +
  'This page\'s script reads <code>document.cookie</code> as <code id="script-cookies" data-script-cookies>(script not run)</code>.</footer>'

interface Layout {
  title: string
  theme: Theme
  /** Where the theme form comes back to. */
  back: '/' | '/account'
  signedIn: boolean
  main: string
}

function layout (page: Layout): string {
  const logout = page.signedIn ? '<form method="post" action="/logout"><button id="logout" class="ghost">Log out</button></form>' : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(page.title)} · fastify-hardened-session demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/demo.css"><script src="/demo.js" defer></script>
</head><body class="${page.theme}">
<header class="topbar"><a class="brand" href="/"><img src="/favicon.svg" alt="" width="28" height="28"><span>Hardened session <small>demo</small></span></a>
<nav>${themeForm(page.theme, page.back)}${logout}</nav></header>
<main>
${page.main}
</main>
${COOKIE_NOTE}
</body></html>
`
}

function notice (n: Notice | undefined): string {
  if (n === undefined) return ''
  const countdown = n.retryAfter === undefined ? '' : ` data-retry-after="${n.retryAfter}"`
  return `<p id="notice" class="notice ${n.kind}" role="${n.kind === 'error' ? 'alert' : 'status'}"${countdown}>${esc(n.text)}</p>\n`
}

export interface SignInView {
  username?: string
  notice?: Notice
  /** Put the cursor in the password field (the name is already there). */
  focusPassword?: boolean
}

export function signInPage (theme: Theme, options: SignInView = {}): string {
  const username = options.username === undefined ? '' : ` value="${esc(options.username)}"`
  const focus = options.focusPassword === true ? ' autofocus' : ''
  return layout({
    title: 'Sign in',
    theme,
    back: '/',
    signedIn: false,
    main: `<section class="card narrow">
<h1>Sign in</h1>
<p class="lead">Sessions in a signed <code>__Host-</code> cookie, served from Redis's client-side cache, ended everywhere at once.</p>
${notice(options.notice)}<form method="post" action="/login" id="sign-in" class="stack">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="64"${username}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"${focus}>
<div class="actions"><button type="submit" id="login" class="primary">Log in</button>
<button type="submit" id="register" class="secondary" formaction="/register">Create account</button></div>
</form>
<p class="hint">Enter logs in. “Create account” answers the same whether or not the name is taken, after the same work,
so it does not tell who has an account here; then log in with the new name.</p>
</section>`,
  })
}

/** `HeadlessChrome 156 on Linux` from a User-Agent string; the full string is in the row's title. */
function deviceName (userAgent: string | undefined): string {
  if (userAgent === undefined || userAgent === '') return 'unknown browser'
  const browser = /(Firefox|Edg|OPR|HeadlessChrome|Chrome|Safari)\/(\d+)/.exec(userAgent)
  const os = /(Windows|Android|iPhone|iPad|Mac OS X|CrOS|Linux)/.exec(userAgent)
  const name = browser === null ? userAgent.slice(0, 40) : `${browser[1] === 'Edg' ? 'Edge' : browser[1]} ${browser[2]}`
  return os === null ? name : `${name} on ${os[1] === 'Mac OS X' ? 'macOS' : os[1]}`
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** `7 Dec 2026, 17:20 UTC` (the server does not know the visitor's time zone). */
function when (date: Date | undefined): string {
  if (date === undefined) return '–'
  const hhmm = date.toISOString().slice(11, 16)
  return `<time datetime="${date.toISOString()}">${date.getUTCDate()} ${MONTHS[date.getUTCMonth()] as string} ${date.getUTCFullYear()}, ${hhmm} UTC</time>`
}

function deviceRow (info: SessionInfo, thisRef: string): string {
  const mine = info.ref === thisRef
  // This device signs out through /logout (Clear-Site-Data, cookie expired); another through revokeSession.
  const action = mine
    ? '<form method="post" action="/logout"><button class="secondary small">Sign out</button></form>'
    : `<form method="post" action="/devices/sign-out"><input type="hidden" name="ref" value="${esc(info.ref)}"><button class="secondary small">Sign out</button></form>`
  return `<tr data-ref="${esc(info.ref)}"${mine ? ' class="this-device"' : ''}>` +
    `<td class="device" title="${esc(info.userAgent ?? '')}">${esc(deviceName(info.userAgent))}${mine ? ' <strong class="badge">this device</strong>' : ''}` +
    `${info.deviceBound ? ' <span class="badge bound" title="Its cookie only works with a key that never leaves this device">device-bound</span>' : ''}</td>` +
    `<td data-label="IP">${esc(info.ip ?? '–')}</td><td class="date" data-label="Signed in">${when(info.authenticatedAt)}</td>` +
    `<td class="date" data-label="Last seen">${when(info.lastSeenAt)}</td><td class="action">${action}</td></tr>`
}

export interface AccountView {
  user: string
  theme: Theme
  thisRef: string
  devices: SessionInfo[]
  notice?: Notice
}

export function accountPage (view: AccountView): string {
  const others = view.devices.filter((d) => d.ref !== view.thisRef).length
  return layout({
    title: view.user,
    theme: view.theme,
    back: '/account',
    signedIn: true,
    main: `<section class="card">
<p class="eyebrow">Signed in as</p><h1 id="user">${esc(view.user)}</h1>
</section>
${notice(view.notice)}<section class="card">
<h2>Your devices</h2>
<p class="hint">Every browser signed in to this account. Signing one out ends its session at once, on every server.</p>
<table id="devices"><thead><tr><th>Device</th><th>IP</th><th>Signed in</th><th>Last seen</th><th><span class="sr-only">Action</span></th></tr></thead>
<tbody>${view.devices.map((d) => deviceRow(d, view.thisRef)).join('\n')}</tbody></table>
<form method="post" action="/devices/sign-out-others"><button id="sign-out-others" class="secondary"${others === 0 ? ' disabled' : ''}>Sign out all other devices</button></form>
</section>
<section class="card">
<h2>Switch user</h2>
<p class="hint">Signs this device out (logout: its session ends, <code>Clear-Site-Data</code>), then in as another account, in one request.</p>
<form method="post" action="/switch-user" id="switch-user" class="stack">
<label for="switch-username">Username</label>
<input id="switch-username" name="username" autocomplete="off" autocapitalize="none" spellcheck="false" required maxlength="64">
<label for="switch-password">Password</label>
<input id="switch-password" name="password" type="password" autocomplete="off" required maxlength="1024">
<div class="actions"><button type="submit" class="primary">Sign out and sign in as this user</button></div>
</form>
</section>
<section class="card">
<h2>This session</h2>
<p><button type="button" id="whoami" class="secondary">Who am I? (GET /me)</button></p><pre id="me" hidden></pre>
</section>`,
  })
}

/** What an error page says: a title for people, a sentence, and the code for whoever debugs. */
const ERROR_TEXT: Record<string, { title: string, text: string }> = {
  FST_SESSION_CSRF: { title: 'Request refused', text: 'This form was sent from another site, so it was refused to protect your account. Nothing was changed.' },
  FST_SESSION_STORE_UNAVAILABLE: { title: 'Temporarily unavailable', text: 'Sessions cannot be read right now. Try again in a moment.' },
  FST_SESSION_ENDED: { title: 'Session ended', text: 'Your session ended while this request ran (it was signed out on another device?). Nothing was saved.' },
}
const STATUS_TEXT: Record<number, { title: string, text: string }> = {
  400: { title: 'Bad request', text: 'The request could not be understood.' },
  403: { title: 'Request refused', text: 'This request was refused.' },
  404: { title: 'Page not found', text: 'There is nothing at this address.' },
  500: { title: 'Something went wrong', text: 'The demo could not answer this request. Try again.' },
}

/** The one error page of the demo (404, 403, 503, 500 …); `code` is a plugin error code, if any. */
export function errorPage (theme: Theme, status: number, code: string | undefined): string {
  const what = (code === undefined ? undefined : ERROR_TEXT[code]) ?? STATUS_TEXT[status] ?? STATUS_TEXT[status >= 500 ? 500 : 400] as { title: string, text: string }
  return layout({
    title: what.title,
    theme,
    back: '/',
    signedIn: false,
    main: `<section class="card narrow error-card">
<p class="status">${status}</p>
<h1>${esc(what.title)}</h1>
<p id="notice" class="notice error" role="alert">${esc(what.text)}</p>
${code === undefined ? '' : `<p class="hint">Error code <code>${esc(code)}</code></p>\n`}<p><a class="button primary" href="/">Back to the demo</a></p>
</section>`,
  })
}
