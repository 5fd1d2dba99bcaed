/**
 * Server CPU per request and Redis commands per operation, bare Fastify against this plugin,
 * interleaved in one run (steadier than req/s on a shared machine):
 *
 *   npx tsx benchmarks/profile-hotpath.ts [--node /path/to/node] [--rounds 3] [--requests 40000] [--only read,write]
 *
 * Each round starts a fresh server per variant (pinned to CPU 0 when taskset exists), loads it
 * with a fixed number of requests from this process (autocannon, 20 connections) and reads the
 * server's user+system CPU time from /proc before and after; Redis's own CPU and
 * `INFO commandstats` (sent commands and commands run inside scripts) come from the same
 * redis-server, started here on a free loopback port. Paths: `read` (cached authenticated
 * GET /me), `write` (POST /write, one field), `ewrite` (the same with `encryption.fields: '*'`),
 * `cycle` (POST /login, then POST /logout with its cookie), `miss` (a read after the local cache
 * was dropped; commands only).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, request as httpRequest, Agent } from 'node:http'
import { createConnection } from 'node:net'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const { values } = parseArgs({
  options: {
    node: { type: 'string' },
    rounds: { type: 'string' },
    requests: { type: 'string' },
    only: { type: 'string' },
    cycles: { type: 'string' },
    prof: { type: 'string' },
  },
})
const node = values.node ?? process.execPath
const rounds = Number(values.rounds ?? 3)
const requests = Number(values.requests ?? 40000)
const cycles = Number(values.cycles ?? 4000)
const only = new Set((values.only ?? 'read,write,ewrite,cycle').split(','))
const CLK = 100 // USER_HZ
const hasTaskset = (() => { try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true } catch { return false } })()

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function cpuTicks (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** One RESP command to the bench Redis, on a fresh connection (admin only). */
async function redisCommand (port: number, ...args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1')
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk.toString()
      const m = /^\$(\d+)\r\n/.exec(data)
      if (data.startsWith('+') || data.startsWith(':') || data.startsWith('-')) {
        if (data.endsWith('\r\n')) { socket.end(); resolve(data) }
      } else if (m !== null && Buffer.byteLength(data) >= m[0].length + Number(m[1]) + 2) {
        socket.end()
        resolve(data.slice(m[0].length, m[0].length + Number(m[1])))
      }
    })
    socket.on('error', reject)
    socket.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
  })
}

async function redisStats (port: number): Promise<{ calls: Map<string, number>, cpu: number }> {
  const text = await redisCommand(port, 'INFO', 'commandstats')
  const calls = new Map<string, number>()
  for (const m of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls.set(m[1] as string, Number(m[2]))
  const cpuText = await redisCommand(port, 'INFO', 'cpu')
  const cpu = Number(/used_cpu_user:([\d.]+)/.exec(cpuText)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpuText)?.[1])
  return { calls, cpu }
}

function diff (a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0 && k !== 'info') out[k] = v - (a.get(k) ?? 0)
  return out
}

async function startRedis (): Promise<{ port: number, proc: ChildProcess }> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const proc = hasTaskset ? spawn('taskset', ['-c', '1', 'redis-server', ...args], { stdio: 'ignore' }) : spawn('redis-server', args, { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    try { await redisCommand(port, 'PING'); return { port, proc } } catch { await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  throw new Error('redis-server did not start')
}

interface Server { port: number, proc: ChildProcess, pid: number }

async function startServer (script: string, extra: string[]): Promise<Server> {
  const prof = values.prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values.prof}/${script.replace('.ts', '')}${extra.includes('--encryption') ? '-enc' : ''}`]
  const args = [...prof, '--import', 'tsx', new URL(`./servers/${script}`, import.meta.url).pathname, ...extra]
  const proc = hasTaskset ? spawn('taskset', ['-c', '0', node, ...args], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(node, args, { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /LISTENING (\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    proc.on('exit', (code) => reject(new Error(`${script} exited ${code}`)))
  })
  // taskset execs node: the pid is the server's.
  return { port, proc, pid: proc.pid as number }
}

async function stop (s: { proc: ChildProcess }): Promise<void> {
  await new Promise((resolve) => { s.proc.once('exit', resolve); s.proc.kill('SIGTERM') })
}

const agent = new Agent({ keepAlive: true, maxSockets: 20 })
async function send (port: number, method: string, path: string, cookie?: string): Promise<{ status: number, cookie: string | undefined }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: cookie === undefined ? {} : { cookie } }, (res) => {
      res.resume()
      res.on('end', () => {
        const set = res.headers['set-cookie']?.find((c) => c.startsWith('__Host-sid='))
        resolve({ status: res.statusCode ?? 0, cookie: set?.split(';')[0] })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function load (port: number, method: 'GET' | 'POST', path: string, cookie: string | undefined, amount: number): Promise<{ rps: number, non2xx: number }> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}${path}`, method, connections: 20, amount, headers: cookie === undefined ? {} : { cookie } })
  return { rps: result.requests.average, non2xx: result.non2xx }
}

async function cycleLoad (port: number, n: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next++ < n) {
      const login = await send(port, 'POST', '/login')
      if (login.status !== 200 || login.cookie === undefined) throw new Error(`login ${login.status}`)
      const logout = await send(port, 'POST', '/logout', login.cookie)
      if (logout.status !== 200) throw new Error(`logout ${logout.status}`)
    }
  }
  await Promise.all(Array.from({ length: 20 }, worker))
}

/** Non-2xx answers under load (a store call past its deadline on a starved machine): reported, not fatal. */
let failures = 0
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

const redis = await startRedis()
const url = `redis://127.0.0.1:${redis.port}`
const results = new Map<string, { cpu: number[], rps: number[], redisCpu: number[], calls: Record<string, number>[] }>()
const record = (name: string, cpu: number, rps: number, redisCpu: number, calls: Record<string, number>): void => {
  let r = results.get(name)
  if (r === undefined) results.set(name, r = { cpu: [], rps: [], redisCpu: [], calls: [] })
  r.cpu.push(cpu)
  r.rps.push(rps)
  r.redisCpu.push(redisCpu)
  r.calls.push(calls)
}

async function measure (name: string, server: Server, run: () => Promise<number>, count: number): Promise<void> {
  const before = cpuTicks(server.pid)
  const rb = await redisStats(redis.port)
  const t0 = performance.now()
  await run()
  const seconds = (performance.now() - t0) / 1000
  const ra = await redisStats(redis.port)
  const ticks = cpuTicks(server.pid) - before
  const calls = diff(rb.calls, ra.calls)
  for (const k of Object.keys(calls)) calls[k] = Number(((calls[k] as number) / count).toFixed(3))
  record(name, ticks / CLK * 1e6 / count, count / seconds, (ra.cpu - rb.cpu) * 1e6 / count, calls)
}

try {
  for (let round = 0; round < rounds; round++) {
    // bare
    {
      const s = await startServer('bare.ts', [])
      await load(s.port, 'GET', '/me', undefined, 5000)
      if (only.has('read')) await measure('bare read', s, async () => (await load(s.port, 'GET', '/me', undefined, requests)).rps, requests)
      if (only.has('write') || only.has('ewrite')) await measure('bare write', s, async () => (await load(s.port, 'POST', '/write', undefined, requests)).rps, requests)
      await stop(s)
    }
    for (const enc of [false, true]) {
      if (enc && !only.has('ewrite')) continue
      if (!enc && !only.has('read') && !only.has('write') && !only.has('cycle')) continue
      const s = await startServer('hardened.ts', ['--redis-url', url, ...(enc ? ['--encryption'] : [])])
      const tag = enc ? 'hardened(enc)' : 'hardened'
      const { cookie } = await send(s.port, 'POST', '/login')
      if (cookie === undefined) throw new Error('no cookie')
      if (!enc && only.has('read')) {
        await load(s.port, 'GET', '/me', cookie, 5000)
        await measure(`${tag} read`, s, async () => {
          const r = await load(s.port, 'GET', '/me', cookie, requests)
          failures += r.non2xx
          return r.rps
        }, requests)
      }
      if ((enc && only.has('ewrite')) || (!enc && only.has('write'))) {
        await load(s.port, 'POST', '/write', cookie, 2000)
        await measure(`${tag} write`, s, async () => {
          const r = await load(s.port, 'POST', '/write', cookie, requests / 2)
          failures += r.non2xx
          return r.rps
        }, requests / 2)
      }
      if (!enc && only.has('cycle')) {
        await cycleLoad(s.port, 200)
        await measure(`${tag} login+logout`, s, async () => { await cycleLoad(s.port, cycles); return 0 }, cycles)
      }
      if (!enc && only.has('miss')) {
        // A second server: its cache never held the session.
        const m = await startServer('hardened.ts', ['--redis-url', url])
        const login = await Promise.all(Array.from({ length: 200 }, () => send(s.port, 'POST', '/login')))
        await measure(`${tag} miss`, m, async () => {
          for (const l of login) if ((await send(m.port, 'GET', '/me', l.cookie)).status !== 200) throw new Error('miss read failed')
          return 0
        }, login.length)
        await stop(m)
      }
      await stop(s)
    }
  }
} finally {
  await stop(redis)
  agent.destroy()
}

if (values.prof !== undefined) {
  const { summariseProfile } = await import('./harness/cpuprofile.ts')
  const { readdirSync } = await import('node:fs')
  for (const dir of readdirSync(values.prof)) {
    for (const file of readdirSync(`${values.prof}/${dir}`)) {
      const summary = summariseProfile(`${values.prof}/${dir}/${file}`)
      console.log(`--- ${dir}/${file}: ${summary.total.toFixed(0)} ms busy`)
      for (const p of summary.places.slice(0, 12)) console.log(`  ${p.where.padEnd(28)} ${p.ms.toFixed(0).padStart(6)} ms ${p.pct.toFixed(1)}%`)
      for (const f of summary.functions.slice(0, 30)) console.log(`    ${f.name.slice(0, 40).padEnd(40)} ${f.where.slice(0, 40).padEnd(40)} ${f.ms.toFixed(0).padStart(6)} ms ${f.pct.toFixed(1)}%`)
    }
  }
}
console.log(`node ${execFileSync(node, ['--version']).toString().trim()}, ${rounds} rounds, ${failures} non-2xx answers, medians (server CPU µs/request from /proc; Redis CPU µs/op from INFO cpu)`)
for (const [name, r] of results) {
  const calls = r.calls[r.calls.length - 1]
  console.log(`${name.padEnd(24)} cpu ${median(r.cpu).toFixed(1).padStart(6)} µs  rps ${Math.round(median(r.rps)).toString().padStart(6)}  redis ${median(r.redisCpu).toFixed(1).padStart(5)} µs  cmds/op ${JSON.stringify(calls)}  [cpu ${r.cpu.map((c) => c.toFixed(1)).join(' ')}]`)
}
