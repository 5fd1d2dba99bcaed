/**
 * The deployment's one naming key (crypto/naming.ts), established at start and kept in step
 * with the store while the process runs.
 *
 * Protects against a split fleet: two naming keys in use at once would make each instance
 * reject the other's sessions and `revokeUser` miss sessions named under the other key. So:
 *   - a ring that the configured secrets do not open is refused (FST_SESSION_KEYRING_SECRETS,
 *     FST_SESSION_KEYRING_INVALID), never replaced by a second key;
 *   - a missing ring gets a new key only where no session can exist that it named — the main
 *     epoch copy, written before any session, is missing too (a first start; or a store that
 *     lost everything, whose sessions went with it). Otherwise the start waits for a running
 *     process to restore the ring, then fails closed (FST_SESSION_KEYRING_MISSING);
 *   - a running process reads the ring again whenever another client changed it or changes may
 *     have been missed (a restart without persistence, a flush, a failover): it restores a lost
 *     ring from its key, repairs its own entries, and — where another process made a ring first
 *     (a restart raced by a new instance) — adopts that key, so that every process converges on
 *     the one in the store. Sessions named under a key given up fail their check: closed.
 */
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { newNamingKey, openRing, wrappingsFor, type RingState } from './crypto/naming.ts'
import { sessionError } from './errors.ts'
import type { Guard } from './store-deadline.ts'
import { keyringKey, type KeyNames } from './key-names.ts'
import type { KeyringChange, KeyringMode, SessionStore } from './store/contract.ts'

/** How often a start that waits for a running process to restore the ring looks again. */
const POLL_MS = 100
/** How soon a running process tries again when the store did not answer its check. */
const RETRY_MS = 500
/** How often the ring is read when the store tells of no change made by others (no client-side caching). */
export const POLL_UNWATCHED_MS = 5000

export interface KeyringOptions {
  readonly store: SessionStore
  readonly guard: Guard
  readonly prefix: string
  readonly secrets: readonly Buffer[]
  /** The plugin may make the first key; the operations CLI never does. */
  readonly mayCreate: boolean
  /** How long a start waits for a running process to restore a lost ring. */
  readonly waitMs: number
}

function read (
  o: KeyringOptions, changes: readonly KeyringChange[] = [], mode: KeyringMode = 'set'
): Promise<Record<string, string>> {
  return o.guard.run(o.store.keyring(keyringKey(o.prefix), changes, mode))
}

function refused (state: RingState['kind']): never {
  if (state === 'altered') {
    throw sessionError('FST_SESSION_KEYRING_INVALID',
      'if an instance with these secrets is running it repairs the entry ' +
      'within about a second; otherwise restore <keyPrefix>keyring from a backup. ' +
      'Deleting the ring does not help: a new key would sign every user out')
  }
  throw sessionError('FST_SESSION_KEYRING_SECRETS', 'check SESSION_SECRETS / `secrets`: when rotating, ' +
    'keep the previous secret in the list until every instance runs the new list')
}

/** The naming key at start: opened, made where no session can exist, or waited for. */
export async function establishNamingKey (o: KeyringOptions): Promise<Buffer> {
  let fields = await read(o)
  const deadline = performance.now() + o.waitMs
  for (;;) {
    const state = openRing(fields, o.secrets)
    if (state.kind === 'open') {
      const missing = wrappingsFor(state.naming, o.secrets, fields)
      if (missing.length > 0) fields = await read(o, missing)
      // Our own entries might have lost a race to another writer: whatever the ring holds now decides.
      const after = openRing(fields, o.secrets)
      if (after.kind === 'open' && after.naming.equals(state.naming)) return state.naming
      continue
    }
    if (state.kind !== 'empty') refused(state.kind)
    if (!o.mayCreate) {
      throw sessionError('FST_SESSION_KEYRING_MISSING', 'check SESSION_KEY_PREFIX and the database in REDIS_URL; ' +
        'the ring is made by the application at its first start')
    }
    // Sessions (and with them names under a key) exist only after the main epoch copy does.
    if (!await o.guard.run(o.store.exists(o.prefix + 'epoch'))) {
      const naming = newNamingKey()
      fields = await read(o, wrappingsFor(naming, o.secrets, {}), 'create')
      continue
    }
    if (performance.now() >= deadline) {
      throw sessionError('FST_SESSION_KEYRING_MISSING',
        'it was lost (deleted, evicted, or a restart without persistence) ' +
        'while sessions named by it exist, and no running instance restored it; ' +
        'restore <keyPrefix>keyring from a backup, or start again once an instance that holds it runs')
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    fields = await read(o)
  }
}

/**
 * An operator starting over (`reset-keyring`): a new naming key, wrapped under `secrets` only.
 * Every logged-in session ends (its index name no longer matches); running processes whose
 * secrets open the new ring adopt it.
 */
export async function resetNamingKey (o: KeyringOptions): Promise<Buffer> {
  const naming = newNamingKey()
  await read(o, wrappingsFor(naming, o.secrets, {}), 'reset')
  return naming
}

function digest (naming: Buffer): string {
  return createHash('sha256').update(naming).digest('base64url')
}

/** Keeps a running process's naming key in step with the ring in the store. */
export class KeyringKeeper {
  readonly #o: KeyringOptions
  readonly #keys: KeyNames
  readonly #log: FastifyBaseLogger
  #naming: Buffer
  /** Keys this process gave up (by a hash): never adopted again (a saved ring put back to undo a reset). */
  readonly #retired = new Set<string>()
  #running = false
  #again = false
  #retry: NodeJS.Timeout | undefined
  #poll: NodeJS.Timeout | undefined
  #closed = false
  #stop: (() => void) | undefined

  constructor (o: KeyringOptions, keys: KeyNames, naming: Buffer, log: FastifyBaseLogger) {
    this.#o = o
    this.#keys = keys
    this.#naming = naming
    this.#log = log
  }

  watch (): void {
    const ring = keyringKey(this.#o.prefix)
    const store = this.#o.store
    this.#stop = store.watch?.((key) => {
      if (key === ring || key === null) this.check().catch(() => {})
    })
    // Without client-side caching, nothing tells of a DEL: look now and then.
    if (store.watch !== undefined && store.notifies !== true) {
      this.#poll = setInterval(() => { this.check().catch(() => {}) }, POLL_UNWATCHED_MS)
      this.#poll.unref()
    }
  }

  /** Reads the ring and puts it right; resolves when the ring holds this process's key (or it adopted another). */
  async check (): Promise<void> {
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    try {
      do {
        this.#again = false
        await this.#settle()
      } while (this.#again)
    } catch {
      // The store is unreachable (the guard reports it): try again soon, and at the reconnect.
      if (!this.#closed && this.#retry === undefined) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined
          this.check().catch(() => {})
        }, RETRY_MS)
        this.#retry.unref()
      }
    } finally {
      this.#running = false
    }
  }

  async #settle (): Promise<void> {
    const o = this.#o
    let fields = await read(o)
    for (let attempt = 0; attempt < 3; attempt++) {
      const state = openRing(fields, o.secrets)
      if (state.kind === 'empty') {
        fields = await read(o, wrappingsFor(this.#naming, o.secrets, {}), 'create')
        this.#log.warn('session naming key ring was missing from the store; restored it')
        continue
      }
      if (state.kind === 'foreign') {
        // Made under other secrets only (reset-keyring without this instance's secrets, or a
        // writer's planted ring): this instance can no longer prove its key is the deployment's.
        // Closed: it serves and writes nothing more, rather than keep sessions others ended or
        // fight the other instances over the epoch.
        this.#log.error('session naming key ring in the store was made with secrets this instance does not have: ' +
          'it serves no session (503) until restarted with the current secrets')
        o.store.fence?.('the naming key ring in the store was made with other secrets; ' +
          'restart this instance with the current secrets')
        this.close()
        return
      }
      if (state.kind === 'open' && !state.naming.equals(this.#naming)) {
        if (this.#retired.has(digest(state.naming))) {
          // A key given up before is back: a saved ring put back (to undo reset-keyring). Never again.
          this.#log.error('session naming key ring in the store holds a key this instance gave up; ' +
            'restoring the current one')
          fields = await read(o, wrappingsFor(this.#naming, o.secrets, {}), 'reset')
          continue
        }
        // Another process made the ring first (it found none), or an operator reset it: the store's
        // key is the deployment's.
        this.#retired.add(digest(this.#naming))
        this.#naming = state.naming
        this.#keys.rekey(state.naming)
        this.#log.warn('session naming key ring in the store holds another key; adopted it ' +
          '(sessions named under the old key end)')
      }
      const repairs = wrappingsFor(this.#naming, o.secrets, fields)
      if (repairs.length === 0) return
      if (state.kind === 'altered') this.#log.warn('session naming key ring entry did not decrypt; repaired it')
      fields = await read(o, repairs)
    }
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#retry)
    clearInterval(this.#poll)
    this.#stop?.()
  }
}
