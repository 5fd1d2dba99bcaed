/* global document, fetch, setInterval, clearInterval, FormData, URLSearchParams, DOMParser */
// The demo page's only script, served as /demo.js (the page's CSP allows no inline script).
// Enhancements only: every form of the demo works without it.
'use strict'

// What a script can read of this page's cookies. The session cookie is HttpOnly: it is not here.
for (const el of document.querySelectorAll('[data-script-cookies]')) el.textContent = JSON.stringify(document.cookie)

// A throttled login (429) says how long to wait (Retry-After, in seconds): count it down.
const throttled = document.querySelector('[data-retry-after]')
if (throttled !== null) {
  const text = throttled.textContent
  const until = Date.now() + Number(throttled.dataset.retryAfter) * 1000
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000))
    const clock = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`
    throttled.textContent = left === 0 ? 'You can try again now.' : `${text} (${clock} left)`
    if (left === 0) clearInterval(timer)
  }
  const timer = setInterval(tick, 1000)
  tick()
}

// "Who am I?": the browser attaches the cookie to this same-origin request by itself.
const whoami = document.getElementById('whoami')
if (whoami !== null) {
  whoami.addEventListener('click', async () => {
    const out = document.getElementById('me')
    const res = await fetch('/me', { headers: { accept: 'application/json' } })
    out.textContent = `${res.status} ${JSON.stringify(await res.json(), null, 2)}`
    out.hidden = false
  })
}

// "Create account" without leaving the page: the answer replaces the notice, and the name and
// password stay in their fields, so Enter (Log in) signs in with them. Without script the form
// posts as usual and the answer page asks for the password again.
const register = document.getElementById('register')
if (register !== null) {
  register.addEventListener('click', async (event) => {
    const form = register.form
    if (!form.reportValidity()) return
    event.preventDefault()
    register.disabled = true
    try {
      const res = await fetch('/register', {
        method: 'POST',
        body: new URLSearchParams(new FormData(form)),
        headers: { accept: 'text/html', 'x-demo-in-place': '1' },
      })
      const answer = new DOMParser().parseFromString(await res.text(), 'text/html').getElementById('notice')
      const current = document.getElementById('notice')
      if (answer !== null) {
        const shown = document.importNode(answer, true)
        if (current !== null) current.replaceWith(shown)
        else form.before(shown)
      }
      form.elements.password.focus()
    } finally {
      register.disabled = false
    }
  })
}
