/**
 * The subset of HTTP Structured Field Values (RFC 9651, formerly RFC 8941) that the device-bound
 * session headers use: lists of items and inner lists with parameters; bare items that are
 * strings, tokens, integers and booleans. Pure, no I/O.
 *
 * Protects against: a header value built by string concatenation that a browser parses
 * differently (a quote or backslash in a value would end the string early), and a parser of
 * untrusted input that throws or loops: `parseList` returns `undefined` for anything that is not
 * a well-formed list (RFC 9651 §4.2: a parse failure discards the whole field), never an error.
 */
import { sessionError } from '../errors.ts'

export type BareItem = string | Token | number | boolean
export type Params = ReadonlyMap<string, BareItem>

/** An sf-token (RFC 9651 §3.3.4), told apart from an sf-string. */
export class Token {
  constructor (readonly value: string) {}
}

export interface Item {
  readonly value: BareItem
  readonly params: Params
}

export interface InnerList {
  readonly items: readonly Item[]
  readonly params: Params
}

export type Member = Item | InnerList

export function isInnerList (member: Member): member is InnerList {
  return 'items' in member
}

const TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/
const KEY = /^[a-z*][a-z0-9_\-.*]*$/
/** RFC 9651 §3.3.3: a string holds printable ASCII only. */
const PRINTABLE = /^[\x20-\x7e]*$/

/** RFC 9651 §4.1.6: a string, quoted, with `"` and `\` escaped; undefined for non-printable text. */
export function serializeString (value: string): string | undefined {
  if (!PRINTABLE.test(value)) return undefined
  return '"' + value.replace(/[\\"]/g, '\\$&') + '"'
}

function notSf (): Error {
  return sessionError('FST_SESSION_INVALID_ARGUMENT', 'a device-bound session header value outside RFC 9651')
}

function serializeBare (value: BareItem): string {
  if (value instanceof Token) {
    if (!TOKEN.test(value.value)) throw notSf()
    return value.value
  }
  if (typeof value === 'boolean') return value ? '?1' : '?0'
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || Math.abs(value) > 999_999_999_999_999) throw notSf()
    return String(value)
  }
  const text = serializeString(value)
  if (text === undefined) throw notSf()
  return text
}

function serializeParams (params: Params): string {
  let out = ''
  for (const [key, value] of params) {
    if (!KEY.test(key)) throw notSf()
    out += value === true ? `;${key}` : `;${key}=${serializeBare(value)}`
  }
  return out
}

/**
 * RFC 9651 §4.1.1: a list. Values come from this plugin (paths from options, random challenges),
 * never from a request; a value outside the grammar is a programming error.
 */
export function serializeList (members: readonly Member[]): string {
  return members.map((m) => isInnerList(m)
    ? '(' + m.items.map((i) => serializeBare(i.value) + serializeParams(i.params)).join(' ') + ')' +
      serializeParams(m.params)
    : serializeBare(m.value) + serializeParams(m.params)).join(', ')
}

/** RFC 9651 §4.2 parser state over one field value. */
class Input {
  pos = 0
  constructor (readonly text: string) {}
  get done (): boolean { return this.pos >= this.text.length }
  peek (): string { return this.text.charAt(this.pos) }
  skipSp (): void { while (this.text.charAt(this.pos) === ' ') this.pos++ }
  skipOws (): void { while (this.text.charAt(this.pos) === ' ' || this.text.charAt(this.pos) === '\t') this.pos++ }
}

/** Thrown inside the parser only; callers get `undefined`. */
const FAIL = Symbol('sf-fail')

function fail (): never {
  throw FAIL
}

function parseKey (input: Input): string {
  const m = /^[a-z*][a-z0-9_\-.*]*/.exec(input.text.slice(input.pos))
  if (m === null) fail()
  input.pos += m[0].length
  return m[0]
}

function parseBare (input: Input): BareItem {
  const c = input.peek()
  if (c === '"') {
    input.pos++
    let out = ''
    for (;;) {
      if (input.done) fail()
      const ch = input.text.charAt(input.pos++)
      if (ch === '\\') {
        const next = input.text.charAt(input.pos++)
        if (next !== '"' && next !== '\\') fail()
        out += next
      } else if (ch === '"') {
        return out
      } else {
        if (ch < ' ' || ch > '~') fail()
        out += ch
      }
    }
  }
  if (c === '?') {
    const v = input.text.charAt(input.pos + 1)
    if (v !== '0' && v !== '1') fail()
    input.pos += 2
    return v === '1'
  }
  if (c === '-' || (c >= '0' && c <= '9')) {
    const m = /^-?[0-9]{1,15}(?![0-9.])/.exec(input.text.slice(input.pos))
    if (m === null) fail() // decimals are not used by these headers
    input.pos += m[0].length
    return Number(m[0])
  }
  const m = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(input.text.slice(input.pos))
  if (m === null) fail()
  input.pos += m[0].length
  return new Token(m[0])
}

function parseParams (input: Input): Params {
  const params = new Map<string, BareItem>()
  while (input.peek() === ';') {
    input.pos++
    input.skipSp()
    const key = parseKey(input)
    let value: BareItem = true
    if (input.peek() === '=') {
      input.pos++
      value = parseBare(input)
    }
    // RFC 9651 §4.2.3.2: a repeated key overwrites, keeping its first position.
    params.set(key, value)
  }
  return params
}

function parseMember (input: Input): Member {
  if (input.peek() !== '(') {
    const value = parseBare(input)
    return { value, params: parseParams(input) }
  }
  input.pos++
  const items: Item[] = []
  for (;;) {
    input.skipSp()
    if (input.peek() === ')') {
      input.pos++
      return { items, params: parseParams(input) }
    }
    const value = parseBare(input)
    items.push({ value, params: parseParams(input) })
    const next = input.peek()
    if (next !== ' ' && next !== ')') fail()
  }
}

/** A list header (several header lines are joined with ", " first, RFC 9110 §5.3). */
export function parseList (value: string | readonly string[] | undefined): Member[] | undefined {
  if (value === undefined) return undefined
  const input = new Input((typeof value === 'string' ? value : value.join(', ')).replace(/^[ \t]+|[ \t]+$/g, ''))
  if (input.text.length > 16 * 1024) return undefined
  const out: Member[] = []
  try {
    while (!input.done) {
      out.push(parseMember(input))
      input.skipOws()
      if (input.done) break
      if (input.peek() !== ',') fail()
      input.pos++
      input.skipOws()
      if (input.done) fail() // a trailing comma
    }
  } catch (err) {
    if (err === FAIL) return undefined
    throw err
  }
  return out
}

/** An item header whose value must be an sf-string (`Secure-Session-Response`, `Sec-Secure-Session-Id`). */
export function parseStringItem (value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value !== 'string') return undefined
  const list = parseList(value)
  if (list === undefined || list.length !== 1) return undefined
  const item = list[0] as Member
  return !isInnerList(item) && typeof item.value === 'string' ? item.value : undefined
}

const BARE_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
const BARE_ID = /^[A-Za-z0-9_-]{1,128}$/

/**
 * `Secure-Session-Response` and `Sec-Secure-Session-Id`: the draft makes both sf-strings, and
 * Chromium (156) sends them bare (the JWT, the identifier, unquoted). Both forms are read; a bare
 * value must be exactly a compact JWS or a base64url identifier.
 */
export function parseProofHeader (value: string | readonly string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  return text.startsWith('"') ? parseStringItem(text) : BARE_JWT.test(text) ? text : undefined
}

export function parseIdHeader (value: string | readonly string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  return text.startsWith('"') ? parseStringItem(text) : BARE_ID.test(text) ? text : undefined
}
