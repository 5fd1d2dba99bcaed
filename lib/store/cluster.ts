/**
 * The Redis store on a Redis Cluster: one link per master (node-link.ts), commands routed by key
 * through node-redis (which follows MOVED/ASK). The plugin's own cluster client, for the `redis`
 * option `{ cluster: { rootNodes } }`, is made in open-cluster.ts.
 *
 * Protects against serving a stale session when the cluster changes under the cache:
 *   - every master connection tracks keys with broadcasting (tracking.ts), so a change of any
 *     key on a node the process is connected to is pushed to it, whatever the node;
 *   - a node connection that errors, closes or stalls may have lost invalidations: the whole
 *     local cache is dropped at that moment, and the node's keys fail fast (no `storeTimeout`
 *     wait per request) until its client is ready again — or until a topology refresh hands its
 *     slots to another node (a failover), whose connection tracks from its first command;
 *   - any change of the slot map (MOVED, failover, topology refresh) drops the whole cache too,
 *     and a reply to a command sent before it is not cached.
 * Each node's outage is reported once (one log line per node per outage, store-deadline.ts).
 */
import { invalidations, listen, type Backend, type BackendHooks } from './backend.ts'
import { NodeLink, nodeUnavailable, type LinkTiming } from './node-link.ts'

// ---------------------------------------------------------------------------------------------
// Key slots (Redis Cluster specification, "Key distribution model": CRC16-XMODEM of the key, or
// of its hash tag, modulo 16384)

export const SLOTS = 16384

const CRC16_TABLE = ((): Uint16Array => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

/** CRC16 as Redis Cluster uses it (XMODEM: poly 0x1021, init 0, no reflection), of `bytes[from, to)`. */
export function crc16 (bytes: Uint8Array, from = 0, to = bytes.length): number {
  let crc = 0
  for (let i = from; i < to; i++) {
    crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number)
  }
  return crc
}

/**
 * The hash slot of a key. When the key holds a `{`, and a `}` after it with at least one byte
 * between them, only the bytes between the first `{` and the first `}` after it are hashed.
 */
export function keySlot (key: string | Uint8Array): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOTS
  }
  return crc16(bytes) % SLOTS
}

let slotTags: string[] | undefined

/**
 * A short string whose hash slot is `slot`: `{tag}` in a key name puts the key in that slot.
 * The table (every slot's smallest base-36 number) is built once, on first use (~0.2 M CRCs).
 */
export function slotTag (slot: number): string {
  if (slotTags === undefined) {
    const table: string[] = new Array<string>(SLOTS)
    let found = 0
    for (let i = 0; found < SLOTS; i++) {
      const tag = i.toString(36)
      const s = crc16(Buffer.from(tag)) % SLOTS
      if (table[s] === undefined) {
        table[s] = tag
        found++
      }
    }
    slotTags = table
  }
  return slotTags[slot] as string
}

// ---------------------------------------------------------------------------------------------

/** The part of a node-redis cluster node this store uses. */
interface ShardNode {
  readonly address: string
  readonly client?: {
    readonly isReady: boolean
    readonly options?: { readonly socket?: { readonly host?: string, readonly port?: number } } | undefined
    sendCommand (args: string[]): Promise<unknown>
  } | undefined
}

/** The subset of a node-redis cluster client the cluster backend uses. */
export interface ClusterConnection {
  readonly isReady: boolean
  readonly clientSideCache?: {
    on (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
    off (event: 'invalidate', listener: (key: Buffer | string | null) => void): unknown
  }
  readonly slots: ReadonlyArray<{ readonly master: ShardNode, readonly replicas?: readonly ShardNode[] } | undefined>
  readonly masters: readonly ShardNode[]
  readonly nodeByAddress: ReadonlyMap<string, ShardNode>
  on (event: string, listener: (...args: any[]) => void): unknown
  off (event: string, listener: (...args: any[]) => void): unknown
  sendCommand (firstKey: string, isReadonly: boolean, args: string[]): Promise<unknown>
}

export function isCluster (conn: object): conn is ClusterConnection {
  return 'masters' in conn && 'slots' in conn
}

interface NodeInfo { host: string, port: number }

export class ClusterBackend implements Backend {
  readonly tracking: boolean
  readonly #conn: ClusterConnection
  readonly #timing: LinkTiming
  readonly #hooks: BackendHooks
  readonly #links = new Map<string, NodeLink>()
  readonly #detach: Array<() => void> = []
  /** The slot table last seen: node-redis replaces the array at every topology discovery. */
  #slots: ClusterConnection['slots'] | undefined

  constructor (conn: ClusterConnection, timing: LinkTiming, hooks: BackendHooks) {
    this.#conn = conn
    this.#timing = timing
    this.#hooks = hooks
    const detach = invalidations(conn.clientSideCache, hooks)
    this.tracking = detach !== undefined
    if (detach !== undefined) this.#detach.push(detach)
    const address = (info: NodeInfo): string => this.#addressOf(info)
    this.#detach.push(
      listen(conn, 'node-ready', (info: NodeInfo) => { this.#link(address(info)).ready() }),
      listen(conn, 'node-error', (err: unknown, info: NodeInfo) => {
        const at = address(info)
        this.#link(at).error(err, conn.nodeByAddress.get(at)?.client?.isReady === true)
      }),
      listen(conn, 'node-reconnecting', (info: NodeInfo) => { this.#links.get(address(info))?.closed() }),
      listen(conn, 'node-disconnect', (info: NodeInfo) => { this.#links.get(address(info))?.closed() })
    )
  }

  /**
   * The cluster's name for the node an event is about. Events carry the address the client
   * connected to, which differs from the cluster's when `nodeAddressMap` translates it.
   */
  #addressOf (info: NodeInfo): string {
    const direct = `${info.host}:${info.port}`
    if (this.#conn.nodeByAddress.has(direct)) return direct
    for (const [address, node] of this.#conn.nodeByAddress) {
      const socket = node.client?.options?.socket
      if (socket?.host === info.host && socket.port === info.port) return address
    }
    return direct
  }

  /** The link of a master, made on first use: up unless its client exists and is not ready. */
  #link (address: string): NodeLink {
    let link = this.#links.get(address)
    if (link === undefined) {
      const client = (): ShardNode['client'] => this.#conn.nodeByAddress.get(address)?.client
      // No client yet (node-redis connects lazily): nothing to probe, and nothing cached from it.
      const ping = (): Promise<unknown> => client()?.sendCommand(['PING']) ?? Promise.resolve()
      link = new NodeLink(address, client()?.isReady !== false, this.#timing, ping, this.#hooks)
      this.#links.set(address, link)
    }
    return link
  }

  /**
   * Notices a new slot map: drops the local cache (and, through the flights' sequence numbers,
   * every reply to a command sent before), and retires the links of nodes that are no longer
   * masters — their slots are served by others now, so their outage is over for the store.
   */
  #topology (): void {
    const slots = this.#conn.slots
    if (slots === this.#slots) return
    this.#slots = slots
    this.#hooks.reset()
    const masters = new Set(this.#conn.masters.map((m) => m.address))
    for (const [address, link] of this.#links) {
      if (masters.has(address)) continue
      link.close()
      this.#links.delete(address)
      if (!link.serving) this.#hooks.status(true, undefined, address)
    }
  }

  get serving (): boolean {
    this.#topology()
    return this.#conn.isReady
  }

  send (key: string, args: string[]): Promise<unknown> {
    this.#topology()
    const node = this.#conn.slots[keySlot(key)]?.master
    if (node === undefined) return Promise.reject(nodeUnavailable())
    return this.#link(node.address).send(() => this.#conn.sendCommand(key, false, args))
  }

  nodeOf (key: string): string | undefined {
    this.#topology()
    return this.#conn.slots[keySlot(key)]?.master.address
  }

  /** The replicas the cluster lists for the key's shard (CLUSTER SLOTS omits failed ones). */
  async replicasOf (key: string): Promise<number | undefined> {
    return this.#conn.slots[keySlot(key)]?.replicas?.length ?? 0
  }

  suspect (): boolean {
    let stalled = false
    for (const link of this.#links.values()) if (link.suspect()) stalled = true
    return stalled
  }

  close (): void {
    for (const link of this.#links.values()) link.close()
    this.#links.clear()
    for (const detach of this.#detach) detach()
  }
}
