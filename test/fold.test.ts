/**
 * The account fold (lib/defences/fold.ts): which typed names count as one account for login throttling.
 * Known look-alikes, and properties over arbitrary strings (fast-check): folding is idempotent,
 * and case, compatibility forms, invisible characters, surrounding whitespace and trailing dots
 * never make a name count apart.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { foldAccount } from '../lib/defences/fold.ts'

test('fold: the look-alikes of alice@example.com fold to it', () => {
  const variants = [
    'alice@example.com', 'Alice@Example.COM', 'ALICE@EXAMPLE.COM', ' alice@example.com', 'alice@example.com ',
    '\talice@example.com\n', '\u00a0alice@example.com\u3000', 'alice@example.com.', 'alice@example.com..', 'alice@example.com. ',
    'alice@example.com\u3002', 'alice@example.com\uff61', 'ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ', 'al\u200bice@example.com',
    'al\u00adice@example.com', '\u202ealice@example.com\u202c', '\u2066alice\u2069@example.com', 'alice\ufeff@example.com',
    'a\u200dlice@exam\u200cple.com', 'alice@exa\u0000mple.com', 'alic\u0065\ufe0f@example.com', '\u200ealice@example.com\u200f',
  ]
  for (const v of variants) assert.equal(foldAccount(v), 'alice@example.com', JSON.stringify(v))
})

test('fold: inner whitespace runs are one space; Unicode case folding (ß, final sigma, Kelvin sign); names that differ otherwise stay apart', () => {
  assert.equal(foldAccount('Alice   Smith'), 'alice smith')
  assert.equal(foldAccount('alice\t \u2003smith'), 'alice smith')
  assert.equal(foldAccount('STRASSE'), foldAccount('straße'))
  assert.equal(foldAccount('ΟΔΟΣ'), foldAccount('οδοσ'))
  assert.equal(foldAccount('\u212a'), 'k', 'KELVIN SIGN')
  assert.equal(foldAccount('ﬁle'), 'file')
  for (const [a, b] of [['alice', 'alicia'], ['alice smith', 'alicesmith'], ['.alice', 'alice'], ['alice', 'аlice'], ['a.lice', 'alice']] as Array<[string, string]>) {
    assert.notEqual(foldAccount(a), foldAccount(b), `${a} / ${b}`)
  }
})

const INVISIBLE = ['\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2060', '\u2066', '\u2067', '\u2068', '\u2069', '\ufeff', '\u00ad', '\u034f', '\u061c', '\ufe0f', '\u0000', '\u001b', '\u007f']
const SPACE = [' ', '\t', '\n', '\r', '\u00a0', '\u2000', '\u2009', '\u202f', '\u3000', '\u0085', '\u2028']

test('fold: idempotent, and blind to case, NFKC/NFD form, invisible characters, surrounding whitespace and trailing dots (property)', () => {
  const name = fc.string({ unit: 'grapheme', maxLength: 24 })
  fc.assert(fc.property(name, (s) => foldAccount(foldAccount(s)) === foldAccount(s)))
  fc.assert(fc.property(name, (s) => foldAccount(s.toUpperCase()) === foldAccount(s.toLowerCase())))
  fc.assert(fc.property(name, (s) => foldAccount(s.normalize('NFD')) === foldAccount(s.normalize('NFKC'))))
  fc.assert(fc.property(name, fc.nat(), fc.constantFrom(...INVISIBLE), (s, at, c) => {
    const i = at % (s.length + 1)
    fc.pre(!/[\ud800-\udfff]/.test(s.slice(Math.max(0, i - 1), i + 1))) // not inside a surrogate pair
    return foldAccount(s.slice(0, i) + c + s.slice(i)) === foldAccount(s)
  }))
  fc.assert(fc.property(name, fc.array(fc.constantFrom(...SPACE, '.'), { maxLength: 4 }), fc.array(fc.constantFrom(...SPACE), { maxLength: 4 }), (s, tail, head) => {
    return foldAccount(head.join('') + s + tail.join('')) === foldAccount(s)
  }))
})

// Fixed defect (found by the property test above): ẞ folded to ß, and ß to ss, so STRAẞE and
// STRASSE were two accounts for the throttle, and folding a folded name changed it.
test('fold: the capital sharp S (ẞ), ß and ss fold alike, and folding a folded name changes nothing', () => {
  const forms = ['STRAẞE', 'straße', 'STRASSE', 'strasse', 'Straße']
  assert.deepEqual(new Set(forms.map(foldAccount)).size, 1, forms.map(foldAccount).join(' / '))
  for (const form of forms) assert.equal(foldAccount(foldAccount(form)), foldAccount(form))
})
