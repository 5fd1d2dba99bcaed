import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, sign as nodeSign } from 'node:crypto'
import fc from 'fast-check'
import { BoundCookies } from '../lib/dbsc/bound-cookie.ts'
import { decodeBinding, encodeBinding, newBinding } from '../lib/dbsc/binding.ts'
import { Challenges } from '../lib/dbsc/challenge.ts'
import { decodeProof, keyOf, publicJwk, thumbprint, verifyProof, type PublicJwk } from '../lib/dbsc/proof.ts'
import { challengeHeader, cookieAttributes, instructions, registrationHeader } from '../lib/dbsc/protocol.ts'
import { isInnerList, parseIdHeader, parseList, parseProofHeader, parseStringItem, serializeString, Token } from '../lib/dbsc/sf.ts'
import { Events } from '../lib/events.ts'
import { Guard } from '../lib/store-deadline.ts'
import { createMemoryStore } from '../lib/index.ts'
import { deviceKey, parseChallenge, parseRegistration, registrationProof, refreshProof, sfString } from './helpers/dbsc-client.ts'
import { manualClock } from './helpers/app.ts'
import type { FastifyBaseLogger } from 'fastify'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const SECRET = Buffer.from('dbsc-test-secret-0123456789-abcdefghijkl')
const OLD_SECRET = Buffer.from('dbsc-old-secret-0123456789-abcdefghijklm')

// --- structured fields -------------------------------------------------------------------------

test('dbsc sf: the registration header is an RFC 9651 list of one inner list of algorithm tokens with path and challenge strings', () => {
  const value = registrationHeader('/.well-known/device-bound-sessions/register', 'abc_DEF-123')
  assert.equal(value, '(ES256 RS256);path="/.well-known/device-bound-sessions/register";challenge="abc_DEF-123"')
  const list = parseList(value)
  assert.ok(list !== undefined && list.length === 1)
  const member = list[0]
  assert.ok(member !== undefined && isInnerList(member))
  assert.deepEqual(member.items.map((i) => i.value instanceof Token ? i.value.value : null), ['ES256', 'RS256'])
  assert.equal(member.params.get('path'), '/.well-known/device-bound-sessions/register')
  assert.equal(member.params.get('challenge'), 'abc_DEF-123')
})

test('dbsc sf: the challenge header is an sf-string with an id parameter; quotes and backslashes are escaped', () => {
  assert.equal(challengeHeader('c1', 'sid'), '"c1";id="sid"')
  assert.equal(serializeString('a"b\\c'), '"a\\"b\\\\c"')
  assert.deepEqual(parseChallenge(challengeHeader('x"y', 'i\\d')), { challenge: 'x"y', id: 'i\\d' })
  assert.equal(serializeString('tab\there'), undefined, 'non-printable text is no sf-string')
})

test('dbsc sf: parseStringItem takes one sf-string item and nothing else', () => {
  assert.equal(parseStringItem('"eyJ.a.b"'), 'eyJ.a.b')
  assert.equal(parseStringItem(' "x" '), 'x')
  assert.equal(parseStringItem('"x";p=1'), 'x')
  for (const bad of ['eyJ.a.b', '"x", "y"', '("x")', '"unterminated', '"bad\\escape"', '', '"x" junk', '"x",', '?1']) {
    assert.equal(parseStringItem(bad), undefined, bad)
  }
  assert.equal(parseStringItem(undefined), undefined)
  assert.equal(parseStringItem(['"a"', '"b"']), undefined)
})

test('dbsc sf: parseList never throws on arbitrary input, and round-trips printable strings (property)', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
    const out = parseList(text)
    assert.ok(out === undefined || Array.isArray(out))
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~'.split('')), maxLength: 80 }), (text) => {
    assert.equal(parseStringItem(serializeString(text)), text)
  }), { numRuns: 1000 })
})

test('dbsc sf: the spec\'s examples parse (several registrations joined, parameters on items)', () => {
  const list = parseList(['(ES256);path="reg1";challenge="cv1";authorization="a"', '(RS256);path="reg2";challenge="cv2";authorization="b"'])
  assert.equal(list?.length, 2)
  assert.deepEqual(parseRegistration('(ES256 RS256);path="reg";challenge="cv"'), { algs: ['ES256', 'RS256'], path: 'reg', challenge: 'cv' })
  assert.deepEqual(parseList('"c1";id="session 1", "c2";id="session 2"')?.map((m) => isInnerList(m) ? null : m.params.get('id')), ['session 1', 'session 2'])
})

// --- proofs ------------------------------------------------------------------------------------

test('dbsc proof: RFC 7638 thumbprint known answer (the RFC\'s RSA example key)', () => {
  const jwk = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29',
  }
  const pub = publicJwk(jwk, 'RS256')
  assert.ok(pub !== undefined)
  assert.equal(thumbprint(pub), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
})

for (const alg of ['ES256', 'RS256'] as const) {
  test(`dbsc proof: a WebCrypto ${alg} registration proof decodes and verifies; a refresh proof verifies under the registered key`, async () => {
    const key = await deviceKey(alg)
    const decoded = decodeProof(await registrationProof(key, 'challenge-1', { authorization: 'ac' }), true)
    assert.ok(decoded.ok)
    assert.equal(decoded.proof.alg, alg)
    assert.equal(decoded.proof.jti, 'challenge-1')
    assert.equal(decoded.proof.authorization, 'ac')
    const pub = decoded.proof.jwk as PublicJwk
    const publicKey = keyOf(pub)
    assert.ok(publicKey !== undefined && verifyProof(decoded.proof, publicKey))
    const refresh = decodeProof(await refreshProof(key, 'challenge-2'), false)
    assert.ok(refresh.ok && refresh.proof.jwk === undefined && verifyProof(refresh.proof, publicKey))
    assert.equal(decodeProof(await refreshProof(key, 'challenge-2'), true).ok, false, 'a registration needs the key in the header')
  })
}

test('dbsc proof: a proof signed by another key, or with its payload changed, does not verify', async () => {
  const key = await deviceKey('ES256')
  const other = await deviceKey('ES256')
  const jwt = await registrationProof(key, 'c')
  const decoded = decodeProof(jwt, true)
  assert.ok(decoded.ok)
  assert.equal(verifyProof(decoded.proof, keyOf(other.jwk as PublicJwk)!), false)
  const [h, , s] = jwt.split('.')
  const changed = decodeProof(`${h}.${b64({ jti: 'another' })}.${s}`, true)
  assert.ok(changed.ok)
  assert.equal(verifyProof(changed.proof, keyOf(decoded.proof.jwk!)!), false)
})

test('dbsc proof: alg none, HMAC algorithms, a missing or wrong typ, crit, and a key unfit for the algorithm are refused before any verification', async () => {
  const key = await deviceKey('ES256')
  const payload = b64({ jti: 'c' })
  const sig = Buffer.alloc(64).toString('base64url')
  const expect = (header: Record<string, unknown>, reason: string): void => {
    const out = decodeProof(`${b64(header)}.${payload}.${sig}`, true)
    assert.deepEqual(out, { ok: false, reason }, JSON.stringify(header))
  }
  expect({ alg: 'none', typ: 'dbsc+jwt', jwk: key.jwk }, 'alg')
  expect({ alg: 'HS256', typ: 'dbsc+jwt', jwk: key.jwk }, 'alg')
  expect({ alg: 'ES384', typ: 'dbsc+jwt', jwk: key.jwk }, 'alg')
  expect({ alg: 'ES256', jwk: key.jwk }, 'typ')
  expect({ alg: 'ES256', typ: 'JWT', jwk: key.jwk }, 'typ')
  expect({ alg: 'ES256', typ: 'dbsc+jwt', jwk: key.jwk, crit: ['b64'] }, 'malformed')
  expect({ alg: 'RS256', typ: 'dbsc+jwt', jwk: key.jwk }, 'jwk')
  expect({ alg: 'ES256', typ: 'dbsc+jwt', jwk: { ...key.jwk, crv: 'P-384' } }, 'jwk')
  expect({ alg: 'ES256', typ: 'dbsc+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } }, 'jwk')
  // A private key where the public one belongs: refused, never turned into its public half.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  expect({ alg: 'ES256', typ: 'dbsc+jwt', jwk: privateKey.export({ format: 'jwk' }) }, 'jwk')
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
  expect({ alg: 'RS256', typ: 'dbsc+jwt', jwk: small }, 'jwk')
})

test('dbsc proof: malformed tokens are refused with a reason, never an exception', () => {
  for (const jwt of ['', 'a.b', 'a.b.c.d', '!!!.b.c', `${b64([1])}.${b64({ jti: 'c' })}.AA`, `${b64({ alg: 'ES256', typ: 'dbsc+jwt' })}.${b64({})}.AA`,
    `${b64({ alg: 'ES256', typ: 'dbsc+jwt' })}.${b64({ jti: 5 })}.AA`, `${b64({ alg: 'ES256', typ: 'dbsc+jwt' })}.${Buffer.from([0xff, 0xfe]).toString('base64url')}.AA`, 'x'.repeat(9000)]) {
    const out = decodeProof(jwt, false)
    assert.equal(out.ok, false, jwt.slice(0, 40))
  }
})

test('dbsc proof: an ES256 signature in DER (not the JWS r||s encoding) is refused', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const input = `${b64({ alg: 'ES256', typ: 'dbsc+jwt' })}.${b64({ jti: 'c' })}`
  const der = nodeSign('sha256', Buffer.from(input), privateKey).toString('base64url')
  const p1363 = nodeSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  const decodedDer = decodeProof(`${input}.${der}`, false)
  const decodedRaw = decodeProof(`${input}.${p1363}`, false)
  assert.ok(decodedDer.ok && decodedRaw.ok)
  assert.equal(verifyProof(decodedDer.proof, publicKey), false)
  assert.equal(verifyProof(decodedRaw.proof, publicKey), true)
})

// --- binding -----------------------------------------------------------------------------------

test('dbsc binding: encodes and decodes the public key, identifier and thumbprint; tampered values decode to nothing', async () => {
  const key = await deviceKey('ES256')
  const binding = newBinding('ES256', publicJwk(key.jwk, 'ES256')!)
  assert.match(binding.id, /^[A-Za-z0-9_-]{22}$/)
  const open = decodeBinding(encodeBinding(binding))
  assert.ok(open !== undefined)
  assert.deepEqual({ id: open.id, alg: open.alg, jwk: open.jwk, thumb: open.thumb }, binding)
  assert.equal(decodeBinding('{"v":1}'), undefined)
  assert.equal(decodeBinding('not json'), undefined)
  assert.equal(decodeBinding(encodeBinding(binding).replace('"ES256"', '"RS256"')), undefined)
})

// --- bound cookie ------------------------------------------------------------------------------

test('dbsc bound cookie: valid for its session, key and binding until its expiry, and nothing else', () => {
  const cookies = new BoundCookies([SECRET], 100)
  const binding = { id: 'A'.repeat(22), thumb: 'T'.repeat(43) }
  const now = 1_700_000_000_000
  const value = cookies.issue('hash-1', binding, now + 60_000)
  assert.equal(cookies.check(value, 'hash-1', binding, now), true)
  // The memo answers the same question the same way, and no other question differently.
  assert.equal(cookies.check(value, 'hash-1', binding, now + 59_999), true)
  assert.equal(cookies.check(value, 'hash-1', binding, now + 60_000), false, 'expired at its deadline')
  assert.equal(cookies.check(value, 'hash-2', binding, now), false, 'another session')
  assert.equal(cookies.check(value, 'hash-1', { ...binding, thumb: 'U'.repeat(43) }, now), false, 'another key')
  assert.equal(cookies.check(value, 'hash-1', { ...binding, id: 'B'.repeat(22) }, now), false, 'another binding')
  assert.equal(cookies.check(undefined, 'hash-1', binding, now), false)
  const fresh = new BoundCookies([SECRET], 100)
  const [exp, mac] = value.split('.') as [string, string]
  assert.equal(fresh.check(`${(parseInt(exp, 36) + 3_600_000).toString(36)}.${mac}`, 'hash-1', binding, now), false, 'an expiry pushed out breaks the MAC')
  assert.equal(fresh.check(`${exp}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, 'hash-1', binding, now), false, 'a forged MAC')
  assert.equal(fresh.check('garbage', 'hash-1', binding, now), false)
})

test('dbsc bound cookie: the first secret issues, every secret verifies (rotation)', () => {
  const binding = { id: 'A'.repeat(22), thumb: 'T'.repeat(43) }
  const old = new BoundCookies([OLD_SECRET], 10).issue('h', binding, 2_000)
  assert.equal(new BoundCookies([SECRET, OLD_SECRET], 10).check(old, 'h', binding, 1_000), true)
  assert.equal(new BoundCookies([SECRET], 10).check(old, 'h', binding, 1_000), false)
})

// --- challenges --------------------------------------------------------------------------------

function challenges (clock = manualClock()): { challenges: Challenges, clock: ReturnType<typeof manualClock>, store: ReturnType<typeof createMemoryStore> } {
  const log = { debug () {}, info () {}, warn () {}, error () {}, fatal () {}, trace () {}, child () { return log }, level: 'silent', silent () {} } as unknown as FastifyBaseLogger
  const store = createMemoryStore({ clock: clock.now })
  const guard = new Guard(1000, log, new Events(undefined, log))
  return { challenges: new Challenges({ store, guard, prefix: 'sess:', secrets: [SECRET], clock: clock.now, ttlMs: 60_000 }), clock, store }
}

test('dbsc challenge: single use — the first take succeeds, every later one fails', async () => {
  const { challenges: c } = challenges()
  const value = await c.issue('hash-1', 'register')
  assert.match(value, /^[A-Za-z0-9_-]{43}$/)
  assert.equal(await c.take(value, 'hash-1', 'register'), true)
  assert.equal(await c.take(value, 'hash-1', 'register'), false)
})

test('dbsc challenge: another session, another purpose or past its TTL is refused — and consumed all the same', async () => {
  const { challenges: c, clock } = challenges()
  const a = await c.issue('hash-1', 'register')
  assert.equal(await c.take(a, 'hash-2', 'register'), false)
  assert.equal(await c.take(a, 'hash-1', 'register'), false, 'consumed by the refused attempt')
  const b = await c.issue('hash-1', 'register')
  assert.equal(await c.take(b, 'hash-1', 'refresh'), false)
  const d = await c.issue('hash-1', 'refresh')
  clock.advance(60_000)
  assert.equal(await c.take(d, 'hash-1', 'refresh'), false)
  assert.equal(await c.take('not-a-challenge', 'hash-1', 'refresh'), false)
})

test('dbsc challenge: the store never holds the challenge itself, only a keyed name and a MAC', async () => {
  const { challenges: c, store } = challenges()
  const written: unknown[] = []
  const create = store.create.bind(store)
  store.create = async (key, record, ttl) => {
    written.push([key, record.ref, record.seal, [...record.fields]])
    await create(key, record, ttl)
  }
  const value = await c.issue('hash-1', 'register')
  assert.equal(written.length, 1)
  const text = JSON.stringify(written)
  assert.equal(text.includes(value), false, 'no raw challenge in a key name or value')
  assert.equal(text.includes(createHash('sha256').update(value).digest('base64url')), false, 'nor an unkeyed hash of it')
  assert.match((written[0] as [string])[0], /^sess:c:[A-Za-z0-9_-]{43}$/)
})

test('dbsc challenge: a refresh challenge is re-sent while more than half its life is left, then a new one is made', async () => {
  const { challenges: c, clock } = challenges()
  const first = await c.issue('hash-1', 'refresh')
  clock.advance(29_000)
  assert.equal(await c.issue('hash-1', 'refresh'), first)
  clock.advance(2_000)
  const second = await c.issue('hash-1', 'refresh')
  assert.notEqual(second, first)
  assert.equal(await c.take(first, 'hash-1', 'refresh'), true, 'the earlier one is still good until its TTL (a proof may be in flight)')
  assert.equal(await c.take(second, 'hash-1', 'refresh'), true)
  assert.notEqual(await c.issue('hash-1', 'refresh'), second, 'a used challenge is never re-sent')
})

// --- instructions ------------------------------------------------------------------------------

test('dbsc instructions: one bound cookie with the session cookie\'s attributes, origin scope, the endpoints excluded', () => {
  const cookie = { name: '__Host-sid-bound', path: '/', domain: undefined, secure: true, sameSite: 'lax' as const }
  assert.equal(cookieAttributes(cookie), 'Path=/; Secure; HttpOnly; SameSite=Lax')
  const out = instructions({ id: 'sid' }, { registrationPath: '/r', refreshPath: '/f' }, cookie)
  assert.deepEqual(out, {
    session_identifier: 'sid',
    refresh_url: '/f',
    continue: true,
    scope: { include_site: false, scope_specification: [{ type: 'exclude', path: '/r' }, { type: 'exclude', path: '/f' }] },
    credentials: [{ type: 'cookie', name: '__Host-sid-bound', attributes: 'Path=/; Secure; HttpOnly; SameSite=Lax' }],
    allowed_refresh_initiators: [],
  })
  assert.equal(sfString('a"b'), '"a\\"b"')
})

// --- real Chromium requests (test/fixtures/dbsc-chromium-156.json) ------------------------------

test('dbsc chromium fixture: Chromium 156\'s bare registration proof parses, names its challenge and verifies under the key it carries', async () => {
  const { readFile } = await import('node:fs/promises')
  const fx = JSON.parse(await readFile(new URL('./fixtures/dbsc-chromium-156.json', import.meta.url), 'utf8'))
  const registration = parseRegistration(fx.registrationHeader)
  const jwt = parseProofHeader(fx.registrationRequest.headers['secure-session-response'])
  assert.ok(registration !== undefined && jwt !== undefined, 'Chromium sends the JWT unquoted, not as an sf-string')
  const decoded = decodeProof(jwt, true)
  assert.ok(decoded.ok)
  assert.equal(decoded.proof.alg, 'ES256')
  assert.equal(decoded.proof.jti, registration.challenge)
  const key = keyOf(decoded.proof.jwk!)
  assert.ok(key !== undefined && verifyProof(decoded.proof, key))
  // Its refresh: no key in the header, the challenge of the 403, signed by the registered key.
  assert.equal(parseIdHeader(fx.refreshAsk.headers['sec-secure-session-id']), fx.refreshAsk.headers['sec-secure-session-id'])
  const challenge = parseChallenge(fx.challengeHeader)
  const answer = decodeProof(parseProofHeader(fx.refreshAnswer.headers['secure-session-response'])!, false)
  assert.ok(answer.ok && answer.proof.jwk === undefined)
  assert.equal(answer.proof.jti, challenge?.challenge)
  assert.equal(challenge?.id, fx.refreshAnswer.headers['sec-secure-session-id'])
  assert.ok(verifyProof(answer.proof, key))
  // One bit changed in Chromium's signature: refused.
  const sig = Buffer.from(jwt.split('.')[2] as string, 'base64url')
  sig[10] = (sig[10] as number) ^ 1
  const tampered = decodeProof(jwt.split('.').slice(0, 2).join('.') + '.' + sig.toString('base64url'), true)
  assert.ok(tampered.ok && !verifyProof(tampered.proof, key))
})

test('dbsc sf: proof and id headers are read as the draft\'s sf-strings or bare, as Chromium sends them; nothing else', () => {
  assert.equal(parseProofHeader('"a.b.c"'), 'a.b.c')
  assert.equal(parseProofHeader('a.b.c'), 'a.b.c')
  assert.equal(parseProofHeader('a.b.'), 'a.b.', 'an empty signature segment is left to the verifier to refuse')
  for (const bad of ['a.b', 'a b.c.d', 'a.b.c;x=1', '"a.b.c', undefined]) assert.equal(parseProofHeader(bad), undefined, String(bad))
  assert.equal(parseIdHeader('"abc"'), 'abc')
  assert.equal(parseIdHeader('abc_-1'), 'abc_-1')
  for (const bad of ['a b', 'a;b', '', undefined]) assert.equal(parseIdHeader(bad), undefined, String(bad))
})
