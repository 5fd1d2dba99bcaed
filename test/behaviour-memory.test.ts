import { behaviourSuite } from './helpers/behaviour.ts'
import { lifecycleSuite } from './helpers/lifecycle.ts'
import { createMemoryStore, type SessionStore } from '../lib/index.ts'

let operations = 0

/** A real memory store whose every call is counted (instrumentation, not a stand-in). */
function countedMemoryStore (): SessionStore {
  const store = createMemoryStore()
  return new Proxy(store, {
    get (target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'stats') return value
      return (...args: unknown[]) => {
        operations++
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
}

behaviourSuite('memory store', {
  options: () => ({ store: countedMemoryStore() }),
  operations: async () => operations,
})

lifecycleSuite('memory store', {
  pair: () => {
    const store = createMemoryStore()
    return [{ store }, { store }]
  },
})
