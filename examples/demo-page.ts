/**
 * The demo's HTML, rendered on the server: every page shows the state of its session (user,
 * theme, devices) on the first paint, and every form works without script. The only script,
 * `/demo.js`, and the stylesheet are separate files, so the page runs under a CSP without
 * 'unsafe-inline' (demo-app.ts sends it).
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

function layout (title: string, theme: Theme, main: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · fastify-hardened-session demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/demo.css"><script src="/demo.js" defer></script>
</head><body class="${theme}">
<main>
${main}
</main>
</body></html>
`
}

function notice (n: Notice | undefined): string {
  if (n === undefined) return ''
  const countdown = n.retryAfter === undefined ? '' : ` data-retry-after="${n.retryAfter}"`
  return `<p id="notice" class="notice ${n.kind}" role="${n.kind === 'error' ? 'alert' : 'status'}"${countdown}>${esc(n.text)}</p>\n`
}

function themeForm (theme: Theme, back: '/' | '/account'): string {
  const next: Theme = theme === 'dark' ? 'light' : 'dark'
  return `<form method="post" action="/theme" class="inline"><input type="hidden" name="back" value="${back}">` +
    `<button id="theme" name="theme" value="${next}">${next === 'dark' ? 'Dark' : 'Light'} theme</button></form>`
}

const COOKIE_NOTE = '<p class="hint">The session cookie is <code>__Host-sid</code> (HttpOnly, Secure, SameSite=Lax). ' +
  'This page\'s script reads <code>document.cookie</code> as <code id="script-cookies" data-script-cookies>(script not run)</code>.</p>'

export function signInPage (theme: Theme, options: { username?: string, notice?: Notice } = {}): string {
  const username = options.username === undefined ? '' : ` value="${esc(options.username)}"`
  return layout('Sign in', theme, `<h1>fastify-hardened-session demo</h1>
${notice(options.notice)}<form method="post" action="/login" id="sign-in">
<label>Username <input name="username" autocomplete="username" required maxlength="64"${username}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label>
<button type="submit" id="login">Log in</button>
<button type="submit" id="register" formaction="/register">Register</button>
</form>
<p class="hint">Enter logs in. Register gives the same answer whether or not the name is taken, after the same work,
so it does not tell who has an account here; then sign in with the new name.</p>
<p>${themeForm(theme, '/')} <span class="hint">(kept in this browser's session, and through sign-in)</span></p>
${COOKIE_NOTE}`)
}

/** `HeadlessChrome 156 on Linux` from a User-Agent string; the full string is in the row's title. */
function deviceName (userAgent: string | undefined): string {
  if (userAgent === undefined || userAgent === '') return 'unknown browser'
  const browser = /(Firefox|Edg|OPR|HeadlessChrome|Chrome|Safari)\/(\d+)/.exec(userAgent)
  const os = /(Windows|Android|iPhone|iPad|Mac OS X|CrOS|Linux)/.exec(userAgent)
  const name = browser === null ? userAgent.slice(0, 40) : `${browser[1] === 'Edg' ? 'Edge' : browser[1]} ${browser[2]}`
  return os === null ? name : `${name} on ${os[1] === 'Mac OS X' ? 'macOS' : os[1]}`
}

function when (date: Date | undefined): string {
  return date === undefined ? '–' : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

function deviceRow (info: SessionInfo, thisRef: string): string {
  const mine = info.ref === thisRef
  // This device signs out through /logout (Clear-Site-Data, cookie expired); another through revokeSession.
  const action = mine
    ? '<form method="post" action="/logout" class="inline"><button>Sign out</button></form>'
    : `<form method="post" action="/devices/sign-out" class="inline"><input type="hidden" name="ref" value="${esc(info.ref)}"><button>Sign out</button></form>`
  return `<tr data-ref="${esc(info.ref)}"${mine ? ' class="this-device"' : ''}>` +
    `<td title="${esc(info.userAgent ?? '')}">${esc(deviceName(info.userAgent))}${mine ? ' <strong class="badge">this device</strong>' : ''}</td>` +
    `<td>${esc(info.ip ?? '–')}</td><td>${when(info.authenticatedAt)}</td><td>${when(info.lastSeenAt)}</td><td>${action}</td></tr>`
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
  return layout(view.user, view.theme, `<header><h1>Signed in as <span id="user">${esc(view.user)}</span></h1>
<form method="post" action="/logout" class="inline"><button id="logout">Log out</button></form> ${themeForm(view.theme, '/account')}</header>
${notice(view.notice)}<section><h2>Your devices</h2>
<table id="devices"><thead><tr><th>Device</th><th>IP</th><th>Signed in</th><th>Last seen</th><th></th></tr></thead>
<tbody>${view.devices.map((d) => deviceRow(d, view.thisRef)).join('\n')}</tbody></table>
<form method="post" action="/devices/sign-out-others"><button id="sign-out-others"${others === 0 ? ' disabled' : ''}>Sign out other devices</button></form>
</section>
<section><h2>Switch user</h2>
<p class="hint">Signs this device out (logout: its session ends, <code>Clear-Site-Data</code>), then in as another account, in one request.</p>
<form method="post" action="/switch-user" id="switch-user">
<label>Username <input name="username" autocomplete="off" required maxlength="64"></label>
<label>Password <input name="password" type="password" autocomplete="off" required maxlength="1024"></label>
<button type="submit">Sign out and sign in as this user</button>
</form></section>
<section><h2>This session</h2>
<p><button type="button" id="whoami">Who am I? (GET /me)</button></p><pre id="me" hidden></pre>
${COOKIE_NOTE}</section>`)
}

export function errorPage (theme: Theme, status: number, code: string | undefined, text: string): string {
  return layout(`${status}`, theme, `<h1>${status}${code === undefined ? '' : ` <code>${esc(code)}</code>`}</h1>
<p id="notice" class="notice error" role="alert">${esc(text)}</p>
<p><a href="/">Back to the demo</a></p>`)
}
