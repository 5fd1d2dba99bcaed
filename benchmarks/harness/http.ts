/**
 * A small HTTP/1.1 client for the correctness checks (not for load): one request, the status,
 * headers, body, and the cookies the response sets.
 */
import { request as httpRequest } from 'node:http'

export interface RequestSpec {
  readonly method: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

export interface Response {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
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

export async function send (origin: string, spec: RequestSpec, cookie?: string): Promise<Response> {
  const headers: Record<string, string> = { ...spec.headers }
  if (cookie !== undefined && cookie !== '') headers['cookie'] = cookie
  if (spec.body !== undefined) headers['content-length'] = String(Buffer.byteLength(spec.body))
  return await new Promise((resolve, reject) => {
    const req = httpRequest(new URL(spec.path, origin), { method: spec.method, headers, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        const setCookies = res.headers['set-cookie'] ?? []
        const cookies: string[] = []
        let clears = false
        for (const line of setCookies) {
          const pair = line.split(';', 1)[0]?.trim() ?? ''
          const value = pair.slice(pair.indexOf('=') + 1)
          if (value === '' || /;\s*max-age=0\b/i.test(line)) clears = true
          else cookies.push(pair)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, cookies, clears })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${spec.method} ${spec.path} timed out`)))
    req.on('error', reject)
    req.end(spec.body)
  })
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
