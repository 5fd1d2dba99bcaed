/**
 * One request for the correctness checks (not for load), with `fetch`: the status, body, and
 * the cookies the response sets or clears.
 */
export interface RequestSpec {
  readonly method: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

export interface Response {
  readonly status: number
  readonly body: string
  /** `name=value` of each Set-Cookie that sets a non-empty value (clearing cookies excluded). */
  readonly cookies: readonly string[]
  /** True if some Set-Cookie clears a cookie (empty value or Max-Age=0). */
  readonly clears: boolean
}

export function json (response: Response): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(response.body)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : {}
  } catch {
    return {}
  }
}

export async function send (origin: string, spec: RequestSpec, cookie?: string, timeoutMs = 10_000): Promise<Response> {
  const headers: Record<string, string> = { ...spec.headers }
  if (cookie !== undefined && cookie !== '') headers['cookie'] = cookie
  const res = await fetch(new URL(spec.path, origin), { method: spec.method, headers, body: spec.body, signal: AbortSignal.timeout(timeoutMs) })
  const body = await res.text()
  const cookies: string[] = []
  let clears = false
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(';', 1)[0]?.trim() ?? ''
    const value = pair.slice(pair.indexOf('=') + 1)
    if (value === '' || /;\s*max-age=0\b/i.test(line)) clears = true
    else cookies.push(pair)
  }
  return { status: res.status, body, cookies, clears }
}

/** Merges cookies a response set into a Cookie header (later values replace earlier ones). */
export function mergeCookies (header: string | undefined, set: readonly string[]): string | undefined {
  const jar = new Map<string, string>()
  for (const pair of [...(header === undefined ? [] : header.split(/;\s*/)), ...set]) {
    const eq = pair.indexOf('=')
    if (eq > 0) jar.set(pair.slice(0, eq), pair)
  }
  return jar.size === 0 ? undefined : [...jar.values()].join('; ')
}
