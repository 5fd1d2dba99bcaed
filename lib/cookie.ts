/**
 * Finds the values of the session cookie in a `Cookie` header, for when `@fastify/cookie` has
 * not parsed the request (or kept only one of several cookies of that name). Values are never
 * decoded or trusted here: the signer decides.
 */

/**
 * The first `max` values of cookie `name` in `header`, in order (usually one; more if a name is
 * shadowed). Bounded so that a header stuffed with forged cookies costs a few HMACs, not hundreds.
 */
export function cookieValues (header: string, name: string, max: number): string[] {
  const out: string[] = []
  const needle = name + '='
  let from = 0
  for (;;) {
    const at = header.indexOf(needle, from)
    if (at === -1 || out.length === max) return out
    from = at + needle.length
    // Must start a cookie-pair: at the start, or after ';' and optional spaces.
    let before = at - 1
    while (before >= 0 && header.charCodeAt(before) === 32) before--
    if (before >= 0 && header.charCodeAt(before) !== 59 /* ; */) continue
    const end = header.indexOf(';', from)
    out.push((end === -1 ? header.slice(from) : header.slice(from, end)).trim())
  }
}
