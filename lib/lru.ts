/**
 * A bounded map with approximate LRU eviction in O(1): two generations of `Map`. Lookups that
 * hit the old generation promote the entry; when the young generation is full it becomes the
 * old one and the previous old generation is dropped. Cheaper per hit than re-inserting into a
 * single ordered Map, which matters on the per-request path.
 */
export class BoundedCache<K, V> {
  #young = new Map<K, V>()
  #old = new Map<K, V>()
  readonly #half: number

  constructor (maxEntries: number) {
    this.#half = Math.max(1, Math.ceil(maxEntries / 2))
  }

  get (key: K): V | undefined {
    const hit = this.#young.get(key)
    if (hit !== undefined) return hit
    const old = this.#old.get(key)
    if (old !== undefined) {
      this.#old.delete(key)
      this.#insert(key, old)
    }
    return old
  }

  set (key: K, value: V): void {
    this.#old.delete(key)
    if (this.#young.has(key)) this.#young.set(key, value)
    else this.#insert(key, value)
  }

  delete (key: K): void {
    this.#young.delete(key)
    this.#old.delete(key)
  }

  clear (): void {
    this.#young.clear()
    this.#old.clear()
  }

  get size (): number {
    return this.#young.size + this.#old.size
  }

  #insert (key: K, value: V): void {
    if (this.#young.size >= this.#half) {
      this.#old = this.#young
      this.#young = new Map()
    }
    this.#young.set(key, value)
  }
}
