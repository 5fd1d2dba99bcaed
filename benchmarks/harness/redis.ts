/**
 * The harness's own throw-away Redis (started with the tests' helpers, pinned to `--redis-cpu`):
 * one redis-server, or a Redis Cluster for the variants that need one. Command counts from
 * `INFO commandstats` (summed over every node of a cluster) and CPU time, for per-request costs.
 *
 * `INFO commandstats` counts a command a script runs (`redis.call`) as its own command, beside
 * the `EVALSHA` that was sent. Which commands were sent and which ran inside scripts is told
 * apart by `MONITOR`, whose lines name the origin: the client's address, or `lua`.
 */
import { createConnection, type Socket } from 'node:net'
import { startCluster } from '../../test/helpers/redis-cluster.ts'
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.ts'
import { cpuTimeUs } from './cpu.ts'
import type { Pinning } from './pinning.ts'
import { track, untrack } from './processes.ts'

export interface BenchRedis {
  readonly url: string
  /** Every root node's URL, comma-separated (a cluster), or `url`. */
  readonly urls: string
  /** Raw RESP reply of one command (for correctness checks); on a cluster, sent to the key's master. */
  command (...args: string[]): Promise<string>
  /** Calls per command so far (`INFO commandstats`; commands run inside scripts included), without `info` and `ping`. */
  calls (): Promise<Map<string, number>>
  cpuUs (): number | undefined
  /** Starts counting, by MONITOR, the commands clients send and those scripts run. */
  monitor (): Promise<Monitor>
  flush (): Promise<void>
  stop (): Promise<void>
}

/** Commands the harness (INFO, MONITOR) and the servers' idle probes send, and (on a cluster) the nodes' own traffic. */
const NOT_COUNTED = ['info', 'ping', 'cluster', 'replconf', 'monitor']

/** Commands seen by MONITOR until `stop()`: sent by clients, and run by scripts (`redis.call`). */
export interface Monitor {
  stop (): Promise<{ sent: Map<string, number>, inScripts: Map<string, number> }>
}

const MONITOR_LINE = /^\+\S+ \[\d+ ([^\]]+)\] "([^"]+)"/

async function monitorPort (port: number): Promise<Monitor> {
  const socket: Socket = createConnection({ host: '127.0.0.1', port })
  socket.setEncoding('latin1')
  const sent = new Map<string, number>()
  const inScripts = new Map<string, number>()
  let rest = ''
  let started = false
  let onStarted: () => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    onStarted = resolve
    socket.once('error', reject)
  })
  socket.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\r\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      if (!started) {
        if (line === '+OK') {
          started = true
          onStarted()
        }
        continue
      }
      const m = MONITOR_LINE.exec(line)
      if (m === null) continue
      const name = (m[2] as string).toLowerCase()
      if (NOT_COUNTED.includes(name)) continue
      const into = m[1] === 'lua' ? inScripts : sent
      into.set(name, (into.get(name) ?? 0) + 1)
    }
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write('MONITOR\r\n')
  await ready
  return {
    async stop () {
      // A PING through the monitored server marks the end: every line before it has arrived.
      const marker = `hardened-bench-end-${process.pid}-${Date.now()}`
      const seen = new Promise<void>((resolve) => {
        const check = (chunk: string): void => {
          if ((rest + chunk).includes(marker) || chunk.includes(marker)) {
            socket.off('data', check)
            resolve()
          }
        }
        socket.on('data', check)
      })
      const probe = createConnection({ host: '127.0.0.1', port })
      probe.on('error', () => {})
      probe.write(`PING ${marker}\r\n`)
      await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      probe.destroy()
      socket.destroy()
      return { sent, inScripts }
    },
  }
}

async function monitorAll (ports: readonly number[]): Promise<Monitor> {
  const monitors = await Promise.all(ports.map(monitorPort))
  return {
    async stop () {
      const sent = new Map<string, number>()
      const inScripts = new Map<string, number>()
      for (const m of monitors) {
        const r = await m.stop()
        for (const [k, v] of r.sent) sent.set(k, (sent.get(k) ?? 0) + v)
        for (const [k, v] of r.inScripts) inScripts.set(k, (inScripts.get(k) ?? 0) + v)
      }
      return { sent, inScripts }
    },
  }
}

function parseStats (text: string, into: Map<string, number>): void {
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1] as string
    if (!NOT_COUNTED.includes(name)) into.set(name, (into.get(name) ?? 0) + Number(m[2]))
  }
}

export async function startBenchRedis (pin: Pinning): Promise<BenchRedis> {
  const server: RedisServer = await startRedis()
  const pid = server.pid
  track(pid, 'redis-server')
  pin.pinRedisPid(pid)
  return {
    url: server.url,
    urls: server.url,
    command: (...args) => server.command(...args),
    async calls () {
      const stats = new Map<string, number>()
      parseStats(await server.command('INFO', 'commandstats'), stats)
      return stats
    },
    cpuUs: () => cpuTimeUs(pid),
    monitor: () => monitorAll([server.port]),
    async flush () {
      await server.command('FLUSHALL')
    },
    async stop () {
      await server.stop()
      untrack(pid)
    },
  }
}

/** A 3-master Redis Cluster without replicas (the benchmark measures throughput, not failover). */
export async function startBenchCluster (pin: Pinning): Promise<BenchRedis> {
  const cluster = await startCluster({ replicasPerMaster: 0 })
  const pids = cluster.nodes.map((n) => n.pid)
  for (const pid of pids) {
    track(pid, 'redis-server (cluster)')
    pin.pinRedisPid(pid)
  }
  return {
    url: cluster.rootNodes[0]?.url ?? '',
    urls: cluster.rootNodes.map((r) => r.url).join(','),
    async command (...args) {
      const key = args[1]
      const node = key === undefined ? cluster.masters()[0] : await cluster.masterForKey(key)
      return await cluster.command(node?.port ?? 0, ...args)
    },
    async calls () {
      const stats = new Map<string, number>()
      for (const node of cluster.nodes) parseStats(await cluster.command(node.port, 'INFO', 'commandstats'), stats)
      return stats
    },
    cpuUs () {
      let total = 0
      for (const pid of pids) {
        const us = cpuTimeUs(pid)
        if (us === undefined) return undefined
        total += us
      }
      return total
    },
    monitor: () => monitorAll(cluster.nodes.map((n) => n.port)),
    async flush () {
      for (const node of cluster.masters()) await cluster.command(node.port, 'FLUSHALL')
    },
    async stop () {
      await cluster.stop()
      for (const pid of pids) untrack(pid)
    },
  }
}
