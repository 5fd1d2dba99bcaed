/**
 * A bounded map with approximate LRU eviction in O(1): two generations of `Map`. Lookups that
 * hit the old generation promote the entry; when the young generation holds half the entries
 * or half the bytes allowed, it becomes the old one and the previous old generation is dropped.
 * Cheaper per hit than re-inserting into a single ordered Map, which matters on the per-request
 * path. Bounded by entries and, when callers give each value's size, by bytes.
 */
interface Slot<V> { readonly value: V, readonly bytes: number }

export class BoundedCache<K, V> {
  #young = new Map<K, Slot<V>>()
  #old = new Map<K, Slot<V>>()
  #youngBytes = 0
  #oldBytes = 0
  readonly #half: number
  readonly #halfBytes: number

  constructor (maxEntries: number, maxBytes = Number.POSITIVE_INFINITY) {
    this.#half = Math.max(1, Math.ceil(maxEntries / 2))
    this.#halfBytes = maxBytes / 2
  }

  get (key: K): V | undefined {
    const hit = this.#young.get(key)
    if (hit !== undefined) return hit.value
    const old = this.#old.get(key)
    if (old === undefined) return undefined
    this.#old.delete(key)
    this.#oldBytes -= old.bytes
    this.#insert(key, old)
    return old.value
  }

  set (key: K, value: V, bytes = 0): void {
    this.delete(key)
    // A value larger than a whole generation is not kept at all.
    if (bytes > this.#halfBytes) return
    this.#insert(key, { value, bytes })
  }

  delete (key: K): void {
    const young = this.#young.get(key)
    if (young !== undefined) {
      this.#young.delete(key)
      this.#youngBytes -= young.bytes
    }
    const old = this.#old.get(key)
    if (old !== undefined) {
      this.#old.delete(key)
      this.#oldBytes -= old.bytes
    }
  }

  clear (): void {
    this.#young.clear()
    this.#old.clear()
    this.#youngBytes = 0
    this.#oldBytes = 0
  }

  get size (): number {
    return this.#young.size + this.#old.size
  }

  /** Sum of the sizes given to `set` for the entries held. */
  get bytes (): number {
    return this.#youngBytes + this.#oldBytes
  }

  #insert (key: K, slot: Slot<V>): void {
    if (this.#young.size >= this.#half || this.#youngBytes + slot.bytes > this.#halfBytes) {
      this.#old = this.#young
      this.#oldBytes = this.#youngBytes
      this.#young = new Map()
      this.#youngBytes = 0
    }
    this.#young.set(key, slot)
    this.#youngBytes += slot.bytes
  }
}
