/**
 * Starts a real, throw-away Redis Cluster (by default 3 masters with 1 replica each) on free
 * loopback ports, each node in its own temp dir, and stops it by pid. Built on `startRedis`, so
 * the binary comes from `REDIS_SERVER_BIN` or `PATH`; `redis-cli` (for `--cluster create`) from
 * `REDIS_CLI_BIN` or `PATH`. Helpers to kill a master, wait for its replica to take over, and
 * restart a node; every wait polls the nodes themselves with a deadline.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, rawCommand, startRedis, type RedisServer } from './redis-server.ts'
import { keySlot } from '../../lib/store/cluster.ts'

export const SLOTS = 16384

export interface ClusterNode {
  readonly port: number
  /** The cluster bus port (`--cluster-port`). */
  readonly busPort: number
  /** The current process id (changes after `restart`). */
  readonly pid: number
  /** The node's temp dir (holds `nodes-<port>.conf`). */
  readonly dir: string
  /** The cluster node id (40 hex characters). */
  readonly id: string
  /** The role as last observed: after start, `waitForFailover`, `restart` or `refresh`. */
  readonly role: 'master' | 'replica'
  /** For a replica, the port of its master as last observed. */
  readonly masterPort: number | undefined
  /** False between `killMaster` and `restart`. */
  readonly alive: boolean
}

export interface StartClusterOptions {
  masters?: number
  replicasPerMaster?: number
  /** `--cluster-node-timeout` in ms (default 1000): a master is failed over a little after this. */
  nodeTimeout?: number
  /** Extra redis-server arguments for every node. */
  extraArgs?: string[]
  /** How long start-up may take before it fails (default 30 s). */
  timeoutMs?: number
}

export interface FailoverResult {
  /** The replica that was promoted in place of the old master. */
  newMaster: ClusterNode
  /** From `killMaster` to a healthy cluster with the replica promoted, as seen by the poll. */
  msSinceKill: number
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[]
  /** Every node as a root node for node-redis `createCluster({ rootNodes })`. */
  readonly rootNodes: Array<{ url: string }>
  /** Masters as last observed (alive ones only). */
  masters (): ClusterNode[]
  /** The node with this port; throws for an unknown port. */
  node (port: number): ClusterNode
  /** The master that owns the key's slot, asked of a live node (`CLUSTER SLOTS`). */
  masterForKey (key: string): Promise<ClusterNode>
  /** SIGKILLs a master (throws if the node is not a master right now) and waits for it to exit. */
  killMaster (port: number): Promise<void>
  /**
   * Polls until a replica of the killed master is a master, every live node agrees on the
   * topology, every live replica is in sync, and `cluster_state:ok` holds on every live node.
   */
  waitForFailover (oldMasterPort: number, timeoutMs?: number): Promise<FailoverResult>
  /** Starts a killed node again on its port with its nodes.conf, and waits until it has rejoined. */
  restart (port: number, timeoutMs?: number): Promise<void>
  /** Waits until the cluster is healthy (see `waitForFailover`) and updates roles. */
  refresh (timeoutMs?: number): Promise<void>
  /** One command over a fresh connection to that node; the raw RESP2 reply. */
  command (port: number, ...args: string[]): Promise<string>
  /** Kills every node (SIGKILL) and removes the temp dirs. Safe to call twice. */
  stop (): Promise<void>
}

// Key slots: the plugin's own implementation (lib/store/cluster.ts), which
// test/helpers/redis-cluster.test.ts checks against the specification and CLUSTER KEYSLOT.
export { crc16, keySlot } from '../../lib/store/cluster.ts'

// ---------------------------------------------------------------------------------------------
// RESP2 replies as values

export class RespError extends Error {}
export type RespValue = string | number | null | RespError | RespValue[]

/** Parses one RESP2 reply as returned by `rawCommand` (ASCII bulk strings only). */
export function parseReply (raw: string): RespValue {
  const [value, end] = parseAt(raw, 0)
  if (end !== raw.length) throw new Error(`trailing data after a RESP reply: ${JSON.stringify(raw.slice(end, end + 40))}`)
  return value
}

function parseAt (raw: string, pos: number): [RespValue, number] {
  const lineEnd = raw.indexOf('\r\n', pos)
  if (lineEnd === -1) throw new Error('incomplete RESP reply')
  const head = raw.slice(pos + 1, lineEnd)
  switch (raw[pos]) {
    case '+': return [head, lineEnd + 2]
    case '-': return [new RespError(head), lineEnd + 2]
    case ':': return [Number(head), lineEnd + 2]
    case '$': {
      const len = Number(head)
      if (len < 0) return [null, lineEnd + 2]
      const start = lineEnd + 2
      return [raw.slice(start, start + len), start + len + 2]
    }
    case '*': {
      const n = Number(head)
      if (n < 0) return [null, lineEnd + 2]
      const items: RespValue[] = []
      let p = lineEnd + 2
      for (let i = 0; i < n; i++) {
        const [item, next] = parseAt(raw, p)
        items.push(item)
        p = next
      }
      return [items, p]
    }
    default: throw new Error(`unknown RESP type ${JSON.stringify(raw[pos])}`)
  }
}

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES

interface NodeLine {
  id: string
  port: number
  flags: string[]
  masterId: string | undefined
  linkState: string
  slots: string[]
}

function parseClusterNodes (text: string): NodeLine[] {
  const lines: NodeLine[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const [id, address, flags, master, , , , linkState, ...slots] = line.trim().split(' ')
    const port = Number(/:(\d+)@/.exec(address ?? '')?.[1])
    if (id === undefined || flags === undefined || linkState === undefined || !Number.isInteger(port)) {
      throw new Error(`cannot parse CLUSTER NODES line: ${line}`)
    }
    lines.push({ id, port, flags: flags.split(','), masterId: master === '-' ? undefined : master, linkState, slots })
  }
  return lines
}

// ---------------------------------------------------------------------------------------------

interface NodeRecord {
  server: RedisServer
  port: number
  busPort: number
  dir: string
  id: string
  role: 'master' | 'replica'
  masterPort: number | undefined
  alive: boolean
  killedAt: number | undefined
}

const CLI_HINT = 'redis-cli was not found. The cluster tests need the real Redis 7 command line client ' +
  '(it ships with redis-server, e.g. `sudo apt-get install redis-tools` or `brew install redis`), ' +
  'or point REDIS_CLI_BIN at the binary.'

function redisCliBinary (): string {
  const bin = process.env.REDIS_CLI_BIN ?? 'redis-cli'
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) throw new Error(CLI_HINT)
  return bin
}

function run (bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Free ports, distinct from each other (a free port is not reserved, so `freePort` may repeat). */
async function distinctFreePorts (count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

export async function startCluster (options: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicasPerMaster = options.replicasPerMaster ?? 1
  const nodeTimeout = options.nodeTimeout ?? 1000
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters')
  const cli = redisCliBinary()
  const total = masters * (1 + replicasPerMaster)
  const records: NodeRecord[] = []

  // Any exit of the test process (a failed assertion, an uncaught error) kills what is left.
  const killOnExit = (): void => {
    for (const r of records) {
      try { process.kill(r.server.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
  process.on('exit', killOnExit)

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await Promise.all(records.map((r) => r.server.kill()))
    await Promise.all(records.map((r) => rm(r.dir, { recursive: true, force: true })))
    process.off('exit', killOnExit)
  }

  const byPort = (port: number): NodeRecord => {
    const record = records.find((r) => r.port === port)
    if (record === undefined) throw new Error(`no cluster node on port ${port}`)
    return record
  }

  /** Null when the cluster is healthy (then roles are updated from the view), else what is not. */
  const healthProblem = async (): Promise<string | null> => {
    const alive = records.filter((r) => r.alive)
    let agreed: string | undefined
    let view: NodeLine[] = []
    for (const r of alive) {
      const info = await rawCommand(r.port, ['CLUSTER', 'INFO'])
      if (!info.includes('cluster_state:ok\r\n')) return `node ${r.port}: ${/cluster_state:\w+/.exec(info)?.[0] ?? info}`
      const lines = parseClusterNodes(parseReply(await rawCommand(r.port, ['CLUSTER', 'NODES'])) as string)
      if (lines.length !== records.length) return `node ${r.port} knows ${lines.length} of ${records.length} nodes`
      for (const line of lines) {
        const other = byPort(line.port)
        if (other.alive) {
          const bad = line.flags.find((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr')
          if (bad !== undefined) return `node ${r.port} flags node ${line.port} ${bad}`
          if (!line.flags.includes('myself') && line.linkState !== 'connected') return `node ${r.port} is not connected to ${line.port}`
        } else if (!line.flags.includes('fail')) {
          return `node ${r.port} does not yet flag dead node ${line.port} as failed`
        }
      }
      const summary = lines
        .filter((l) => byPort(l.port).alive)
        .map((l) => `${l.id} ${l.flags.includes('master') ? 'master' : 'replica'} ${l.masterId ?? '-'} ${l.slots.join(' ')}`)
        .sort()
        .join('\n')
      if (agreed === undefined) {
        agreed = summary
        view = lines
      } else if (summary !== agreed) {
        return `nodes ${alive[0]?.port} and ${r.port} disagree about the topology`
      }
    }
    const idToPort = new Map(view.map((l) => [l.id, l.port]))
    for (const line of view) {
      const r = byPort(line.port)
      if (!r.alive) continue
      r.id = line.id
      r.role = line.flags.includes('master') ? 'master' : 'replica'
      r.masterPort = r.role === 'replica' && line.masterId !== undefined ? idToPort.get(line.masterId) : undefined
    }
    for (const r of alive) {
      if (r.role !== 'replica') continue
      if (r.masterPort === undefined || !byPort(r.masterPort).alive) return `replica ${r.port} has no live master`
      const replication = await rawCommand(r.port, ['INFO', 'replication'])
      if (!replication.includes('master_link_status:up\r\n')) return `replica ${r.port} is not in sync with ${r.masterPort}`
    }
    return null
  }

  const waitHealthy = async (timeoutMs: number, extra: () => string | null = () => null): Promise<number> => {
    const started = Date.now()
    let problem: string | null = 'not checked yet'
    for (;;) {
      try {
        problem = (await healthProblem()) ?? extra()
      } catch (err) {
        problem = String(err)
      }
      if (problem === null) return Date.now() - started
      if (Date.now() - started > timeoutMs) throw new Error(`redis cluster not healthy within ${timeoutMs} ms: ${problem}`)
      await sleep(50)
    }
  }

  const view = (r: NodeRecord): ClusterNode => ({
    port: r.port,
    busPort: r.busPort,
    get pid () { return r.server.pid },
    dir: r.dir,
    get id () { return r.id },
    get role () { return r.role },
    get masterPort () { return r.masterPort },
    get alive () { return r.alive },
  })

  try {
    const ports = await distinctFreePorts(total * 2)
    const started = await Promise.allSettled(Array.from({ length: total }, async (_, i) => {
      const port = ports[2 * i] as number
      const busPort = ports[2 * i + 1] as number
      const dir = await mkdtemp(join(tmpdir(), `redis-cluster-${port}-`))
      const server = await startRedis([
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(nodeTimeout),
        '--dir', dir,
        // Replicas sync at once instead of waiting 5 s for more replicas to share a diskless sync.
        '--repl-diskless-sync-delay', '0',
        ...(options.extraArgs ?? []),
      ], { port }).catch(async (err: unknown) => {
        await rm(dir, { recursive: true, force: true })
        throw err
      })
      records.push({ server, port, busPort, dir, id: '', role: 'master', masterPort: undefined, alive: true, killedAt: undefined })
    }))
    const failed = started.find((s) => s.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    // redis-cli makes the first `masters` addresses masters and the rest their replicas.
    records.sort((a, b) => ports.indexOf(a.port) - ports.indexOf(b.port))
    await run(cli, [
      '--cluster', 'create', ...records.map((r) => `127.0.0.1:${r.port}`),
      '--cluster-replicas', String(replicasPerMaster), '--cluster-yes',
    ], options.timeoutMs ?? 30_000)
    await waitHealthy(options.timeoutMs ?? 30_000, () => {
      const ms = records.filter((r) => r.role === 'master')
      if (ms.length !== masters) return `${ms.length} masters instead of ${masters}`
      for (const m of ms) {
        const n = records.filter((r) => r.masterPort === m.port).length
        if (n !== replicasPerMaster) return `master ${m.port} has ${n} replicas instead of ${replicasPerMaster}`
      }
      return null
    })
  } catch (err) {
    await stop()
    throw err
  }

  const nodes = records.map(view)
  const nodeFor = (port: number): ClusterNode => {
    const i = records.indexOf(byPort(port))
    return nodes[i] as ClusterNode
  }

  return {
    nodes,
    rootNodes: records.map((r) => ({ url: `redis://127.0.0.1:${r.port}` })),
    masters: () => nodes.filter((n) => n.alive && n.role === 'master'),
    node: nodeFor,
    async masterForKey (key) {
      const slot = keySlot(key)
      const asked = records.find((r) => r.alive)
      if (asked === undefined) throw new Error('no live cluster node')
      const ranges = parseReply(await rawCommand(asked.port, ['CLUSTER', 'SLOTS'])) as RespValue[]
      for (const range of ranges) {
        const [start, end, master] = range as [number, number, [string, number, string]]
        if (slot >= start && slot <= end) return nodeFor(master[1])
      }
      throw new Error(`node ${asked.port} reports no owner for slot ${slot} (key ${key})`)
    },
    async killMaster (port) {
      const r = byPort(port)
      const role = parseReply(await rawCommand(port, ['ROLE'])) as RespValue[]
      if (role[0] !== 'master') throw new Error(`node ${port} is a ${String(role[0])}, not a master`)
      await r.server.kill()
      r.alive = false
      r.killedAt = Date.now()
    },
    async waitForFailover (oldMasterPort, timeoutMs = 20_000) {
      const old = byPort(oldMasterPort)
      if (old.alive) throw new Error(`node ${oldMasterPort} is alive: kill it with killMaster first`)
      const candidates = records.filter((r) => r.masterPort === oldMasterPort)
      if (candidates.length === 0) throw new Error(`node ${oldMasterPort} had no replica to promote`)
      let promoted: NodeRecord | undefined
      await waitHealthy(timeoutMs, () => {
        promoted = candidates.find((r) => r.alive && r.role === 'master')
        return promoted === undefined ? `no replica of ${oldMasterPort} promoted yet` : null
      })
      const newMaster = promoted as NodeRecord
      return { newMaster: nodeFor(newMaster.port), msSinceKill: Date.now() - (old.killedAt as number) }
    },
    async restart (port, timeoutMs = 20_000) {
      const r = byPort(port)
      if (r.alive) throw new Error(`node ${port} is running`)
      await r.server.restart()
      r.alive = true
      r.killedAt = undefined
      await waitHealthy(timeoutMs)
    },
    async refresh (timeoutMs = 20_000) { await waitHealthy(timeoutMs) },
    command: (port, ...args) => rawCommand(port, args),
    stop,
  }
}
