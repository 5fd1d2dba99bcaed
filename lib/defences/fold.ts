/**
 * The account fold: which typed account names are one account for login throttling.
 *
 * Protects the per-account limit against names that look the same, or that an application's
 * lookup treats as the same, yet would each get a counter of their own. Two names fold alike
 * when they differ only by:
 *   - Unicode compatibility forms (NFKC, UAX #15): full-width `ａｌｉｃｅ`, ligatures, super-
 *     and subscripts;
 *   - case, full folding approximated by upper- then lower-casing (`ß`/`SS`, `ς`/`Σ`);
 *   - invisible characters anywhere: zero-width spaces and joiners, bidi controls, the BOM, soft
 *     hyphens, variation selectors (Unicode Default_Ignorable_Code_Point), other format (Cf)
 *     and control (Cc) characters;
 *   - whitespace: any Unicode White_Space (tab, no-break, ideographic space…); leading and
 *     trailing removed, each inner run read as one space;
 *   - trailing dots (`alice.`, a mail domain written as a fully qualified name), the ideographic
 *     full stop `。` read as a dot.
 * Confusable letters of other scripts (Cyrillic `а` for Latin `a`) and application rules (dots
 * in a Gmail address) are not folded: a guess can only succeed against the hash the application
 * looked up, and defences/throttle.ts also counts per user id, which covers what the application merges.
 * Folding more than the application's lookup only makes look-alike names share a lock-out.
 */

const WHITESPACE = /\p{White_Space}+/gu
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}]/gu
const IDEOGRAPHIC_STOP = /\u3002/g
const SPACES = / {2,}/g
const EDGES = /^ +|[ .]+$/g

/** The form under which `name` is counted (see the module comment for what folds together). */
export function foldAccount (name: string): string {
  return name
    .normalize('NFKC')
    // Whitespace first: tab, line feed and NEL are both White_Space and Cc.
    .replace(WHITESPACE, ' ')
    .replace(INVISIBLE, '')
    // Lower, upper, lower: one pass either way is not stable (ẞ lowers to ß, which uppers to SS).
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC')
    .replace(IDEOGRAPHIC_STOP, '.')
    .replace(SPACES, ' ')
    .replace(EDGES, '')
}
