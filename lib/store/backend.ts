/**
 * How the Redis store reaches Redis: a `Backend` sends commands addressed by key and tells the
 * store when invalidations may have been lost. Two backends: one node-redis client (here) and
 * a Redis Cluster (cluster.ts), which is a set of `NodeLink`s (node-link.ts), one per master.
 *
 * Protects against two failure modes of a local cache kept coherent by pushed invalidations:
 *   - a connection that closes or stalls stops delivering invalidations: the moment the client
 *     reports it (or a probe or a call gets no answer, health.ts), everything held locally is
 *     dropped (`reset`), and nothing is cached again until the link answers;
 *   - requests for a node that is known to be down would each wait `storeTimeout`: they fail
 *     at once instead. Every failure is reported against its link (the guard logs once per
 *     outage, per node on a cluster) and reaches the guard as the coded 503 error, which it
 *     does not log again.
 */
import { NodeLink, type LinkTiming } from './node-link.ts'

/** What the store hears from its backend. */
export interface BackendHooks {
  /** A key was changed elsewhere (`null`: everything, e.g. FLUSHALL). */
  invalidate (key: string | null): void
  /** Invalidations may have been missed: drop everything held locally. */
  reset (): void
  /** A link went down (`up` false) or answered again; `node` names a cluster node. */
  status (up: boolean, err: unknown, node: string | undefined): void
  /** Something the operator should know once (a refused command that weakens a guarantee). */
  notice? (message: string): void
}

export interface Backend {
  /** Whether invalidations arrive at all (the connection tracks keys): without them nothing may be cached. */
  readonly tracking: boolean
  /** Whether what is held locally may be served right now. */
  readonly serving: boolean
  /** A raw command routed by `key`; fails at once when the key's node is known down. */
  send (key: string, args: string[]): Promise<unknown>
  /** Which master holds `key` ('' on a single connection); undefined when no master serves it now. */
  nodeOf (key: string): string | undefined
  /**
   * How many replicas the master holding `key` has; undefined when that cannot be known (ROLE
   * refused). `fresh`: asked now, not as last probed.
   */
  replicasOf (key: string, fresh?: boolean): Promise<number | undefined>
  /** A store call got no answer within `storeTimeout`; true when a link was marked stalled (and reported). */
  suspect (): boolean
  close (): void
}

/** The subset of a node-redis client the single-connection backend uses. */
export interface ClientConnection {
  readonly isReady?: boolean
  readonly clientSideCache?: {
    on (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
    off (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
  }
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
  sendCommand (args: string[]): Promise<unknown>
}

/** Subscribes `listener` to `event` and returns how to unsubscribe. */
export function listen (
  emitter: Pick<ClientConnection, 'on' | 'off'>, event: string, listener: (...args: any[]) => void
): () => void {
  emitter.on(event, listener)
  return () => { emitter.off(event, listener) }
}

/** Invalidation pushes as node-redis reports them (keys as Buffers, `null` for a flush). */
export function invalidations (
  cache: ClientConnection['clientSideCache'], hooks: BackendHooks
): (() => void) | undefined {
  if (cache === undefined) return undefined
  const onInvalidate = (key: Buffer | string | null): void => {
    hooks.invalidate(key === null ? null : typeof key === 'string' ? key : key.toString())
  }
  cache.on('invalidate', onInvalidate)
  return () => { cache.off('invalidate', onInvalidate) }
}

/** The number of replicas in a ROLE reply of a master (0 for anything else). */
export function replicasIn (reply: unknown): number {
  return Array.isArray(reply) && String(reply[0]) === 'master' && Array.isArray(reply[2]) ? reply[2].length : 0
}

function denied (err: unknown): boolean {
  return err instanceof Error && /^NOPERM|no permissions/i.test(err.message)
}

/** One node-redis client: one link. */
export class ClientBackend implements Backend {
  readonly tracking: boolean
  readonly #conn: ClientConnection
  readonly #link: NodeLink
  readonly #hooks: BackendHooks
  readonly #detach: Array<() => void> = []
  /** Replicas of the master, from ROLE (the liveness probe asks it); undefined until known, or when refused. */
  #replicas: number | undefined
  #roleRefused = false

  /** `role`: probe with ROLE (revocations wait for replicas, `durability: 'replica'`), else PING. */
  constructor (conn: ClientConnection, timing: LinkTiming, hooks: BackendHooks, role = false) {
    this.#conn = conn
    this.#hooks = hooks
    const send = conn.sendCommand.bind(conn)
    // The probe is ROLE, which also says how many replicas a revocation waits for (`durable`);
    // PING where the ACL refuses ROLE.
    this.#roleRefused = !role
    const probe = (): Promise<unknown> => this.#roleRefused ? send(['PING']) : this.#role()
    this.#link = new NodeLink(undefined, conn.isReady !== false, timing, probe, hooks)
    const detach = invalidations(conn.clientSideCache, hooks)
    this.tracking = detach !== undefined
    if (detach !== undefined) this.#detach.push(detach)
    const link = this.#link
    this.#detach.push(
      listen(conn, 'error', (err: unknown) => { link.error(err, conn.isReady === true) }),
      listen(conn, 'end', () => { link.closed() }),
      listen(conn, 'reconnecting', () => { link.closed() }),
      listen(conn, 'ready', () => { link.ready() })
    )
  }

  get serving (): boolean {
    return this.#link.serving
  }

  send (_key: string, args: string[]): Promise<unknown> {
    return this.#link.send(() => this.#conn.sendCommand(args))
  }

  async #role (): Promise<unknown> {
    try {
      const reply = await this.#conn.sendCommand(['ROLE'])
      this.#replicas = replicasIn(reply)
      return reply
    } catch (err) {
      if (!denied(err)) throw err
      this.#roleRefused = true
      this.#replicas = undefined
      this.#hooks.notice?.('session store: ROLE is not permitted to this Redis user, so revocations cannot wait ' +
        'for a replica (durability \'replica\' acts as \'primary\'); add +role to its ACL line ' +
        '(docs/redis-hardening.md)')
      return await this.#conn.sendCommand(['PING'])
    }
  }

  nodeOf (): string {
    return ''
  }

  async replicasOf (_key?: string, fresh = false): Promise<number | undefined> {
    if ((fresh || this.#replicas === undefined) && !this.#roleRefused) await this.#link.send(() => this.#role())
    return this.#replicas
  }

  suspect (): boolean {
    return this.#link.suspect()
  }

  close (): void {
    this.#link.close()
    for (const detach of this.#detach) detach()
  }
}
