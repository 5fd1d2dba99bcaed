/**
 * A protocol-level DBSC browser for `app.inject`: a cookie jar, a device key, and the draft's
 * registration and refresh steps (what Chrome does, without the scheduling).
 */
import assert from 'node:assert/strict'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { deviceKey, parseChallenge, parseRegistration, refreshProof, registrationProof, sfString, type Alg, type DeviceKey } from './dbsc-client.ts'

export const REGISTER = '/.well-known/device-bound-sessions/register'
export const REFRESH = '/.well-known/device-bound-sessions/refresh'
export const BOUND = '__Host-sid-bound'

export class Browser {
  readonly jar = new Map<string, string>()
  key!: DeviceKey
  /** The DBSC session identifier from the last registration. */
  dbscId: string | undefined
  /** The last `Secure-Session-Registration` seen. */
  registration: { algs: string[], path: string, challenge: string } | undefined
  /** Every proof this browser sent (an attacker's transcript). */
  readonly sent: string[] = []

  private constructor (readonly app: FastifyInstance) {}

  static async open (app: FastifyInstance, alg: Alg = 'ES256'): Promise<Browser> {
    const b = new Browser(app)
    b.key = await deviceKey(alg)
    return b
  }

  get cookie (): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  /** Stores the response's cookies (an empty value or Max-Age=0 deletes). */
  take (res: LightMyRequestResponse): LightMyRequestResponse {
    const header = res.headers['set-cookie']
    for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const [pair = '', ...attrs] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at).trim()
      const value = pair.slice(at + 1).trim()
      if (value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.jar.delete(name)
      else this.jar.set(name, value)
    }
    const reg = parseRegistration(res.headers['secure-session-registration'])
    if (reg !== undefined) this.registration = reg
    return res
  }

  async request (options: { method?: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: object }): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({ method: options.method ?? 'GET', url: options.url, headers: { ...(this.jar.size > 0 ? { cookie: this.cookie } : {}), ...options.headers }, ...(options.payload === undefined ? {} : { payload: options.payload }) })
    return this.take(res)
  }

  async login (user = 'user-1'): Promise<LightMyRequestResponse> {
    const res = await this.request({ method: 'POST', url: '/login', payload: { user } })
    assert.equal(res.statusCode, 200, res.body)
    return res
  }

  /** Answers the last registration request with a proof over its challenge. */
  async register (proof?: string): Promise<LightMyRequestResponse> {
    assert.ok(this.registration !== undefined, 'a registration was asked for')
    const jwt = proof ?? await registrationProof(this.key, this.registration.challenge)
    this.sent.push(jwt)
    const res = await this.request({ method: 'POST', url: this.registration.path, headers: { 'secure-session-response': sfString(jwt) } })
    if (res.statusCode === 200) this.dbscId = (res.json() as { session_identifier: string }).session_identifier
    return res
  }

  /** The draft's refresh: ask, get 403 and a challenge, answer with a proof. Returns the last response. */
  async refresh (key: DeviceKey = this.key): Promise<LightMyRequestResponse> {
    assert.ok(this.dbscId !== undefined)
    const ask = await this.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(this.dbscId) } })
    if (ask.statusCode !== 403) return ask
    const challenge = parseChallenge(ask.headers['secure-session-challenge'])
    assert.ok(challenge !== undefined, 'a 403 carries a challenge')
    assert.equal(challenge.id, this.dbscId)
    return await this.answer(challenge.challenge, key)
  }

  async answer (challenge: string, key: DeviceKey = this.key): Promise<LightMyRequestResponse> {
    const jwt = await refreshProof(key, challenge)
    this.sent.push(jwt)
    return await this.send(jwt)
  }

  /** Sends a refresh with this exact proof. */
  async send (jwt: string): Promise<LightMyRequestResponse> {
    assert.ok(this.dbscId !== undefined)
    return await this.request({ method: 'POST', url: REFRESH, headers: { 'sec-secure-session-id': sfString(this.dbscId), 'secure-session-response': sfString(jwt) } })
  }

  /** Who the app says this browser is (`null`: no session). */
  async user (): Promise<string | null> {
    return (await this.request({ url: '/me' })).json().user
  }

  /** A copy of this browser's cookie jar and DBSC identifier, with a key of its own (an infostealer's loot: the device key does not leave the device). */
  async stolen (): Promise<Browser> {
    const copy = await Browser.open(this.app, this.key.alg)
    for (const [k, v] of this.jar) copy.jar.set(k, v)
    copy.dbscId = this.dbscId
    return copy
  }
}
