/**
 * What a session write costs Redis: Redis CPU (`INFO cpu`, user + system) per call of the write
 * script (`UPDATE`) and of what it is made of, on a redis-server of its own, one client keeping 50
 * calls in flight, on a 15-field session like the harness's (meta fields, `theme`, an
 * object-valued `profile` and `cart`). Medians over rounds; the cases interleave in each round.
 *
 *   npx tsx benchmarks/write-script.ts [--calls 30000] [--rounds 3] [--against DIR]
 *
 * `--against DIR`: also the `UPDATE` of another checkout (its lib/store/scripts.ts). Writes
 * benchmarks/results/write-script.md.
 */
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createClient } from 'redis'
import { UPDATE } from '../lib/store/scripts.ts'
import { startRedis } from '../test/helpers/redis-server.ts'
import { median } from './harness/stats.ts'

const { values } = parseArgs({ options: { calls: { type: 'string' }, rounds: { type: 'string' }, against: { type: 'string' } } })
const calls = Number(values.calls ?? 30_000)
const rounds = Number(values.rounds ?? 3)
const against = values.against === undefined ? undefined : resolve(values.against)

const server = await startRedis()
const client = createClient({ url: server.url })
await client.connect()
try {
  const key = 'bench:session'
  const session: Record<string, string> = {
    'm:c': '1765000000000',
    'm:a': '1765086400000',
    'm:i': '1765003600000',
    'm:r': 'abcdefghijkl',
    'm:g': 'g'.repeat(22),
    'm:s': 's'.repeat(43),
    'm:f': '[]',
    'm:u': 'u'.repeat(40),
    'm:k': 'k'.repeat(43),
    'm:t': '1765000000000',
    'm:ua': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
    'm:ip': '127.0.0.1',
    'd:theme': '"dark"',
    'd:profile': JSON.stringify({ name: 'User One', locale: 'en-GB', timeZone: 'Europe/Berlin', roles: ['reader', 'editor'] }),
    'd:cart': JSON.stringify({ items: [{ sku: 'a', qty: 1 }], total: 3 }),
  }
  await client.hSet(key, session)
  const load = async (source: string): Promise<string> => await client.scriptLoad(source)
  const update = (sha: string) => (i: number): string[] =>
    ['EVALSHA', sha, '1', key, '0', '65536', '1', '0', 'd:cart', JSON.stringify({ items: [{ sku: 'a', qty: i }], total: 3 })]
  const cases: Array<[string, (i: number) => string[]]> = [
    ['`EVALSHA` of `return 1` (same arguments as a write)', ((sha) => (i: number) => ['EVALSHA', sha, '1', key, '0', '65536', '1', '0', 'd:cart', String(i)])(await load('return 1'))],
    ['`HGETALL` of the session', () => ['HGETALL', key]],
    ['`HSET` of one field', (i) => ['HSET', key, 'd:cart', String(i)]],
    ['`EVALSHA` of a script that runs `HGETALL` and returns it', ((sha) => () => ['EVALSHA', sha, '1', key])(await load("return redis.call('HGETALL', KEYS[1])"))],
    ['`UPDATE` (this checkout), one field set', update(await load(UPDATE.source))],
  ]
  if (against !== undefined) {
    const other = await import(pathToFileURL(join(against, 'lib', 'store', 'scripts.ts')).href) as { UPDATE: { source: string } }
    cases.push([`\`UPDATE\` of ${against}, one field set`, update(await load(other.UPDATE.source))])
  }
  const cpu = async (): Promise<number> => {
    const info = await client.info('cpu')
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1])
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
    return (user + sys) * 1e6
  }
  const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, args] of cases) {
      const before = await cpu()
      for (let i = 0; i < calls; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => client.sendCommand(args(i + j))))
      }
      samples.get(name)?.push((await cpu() - before) / calls)
      await client.hSet(key, session)
    }
  }
  const rows = cases.map(([name]) => {
    const s = samples.get(name) ?? []
    return `| ${name} | ${(median(s) ?? Number.NaN).toFixed(1)} | ${s.map((x) => x.toFixed(1)).join(', ')} |`
  })
  const out = [
    `Redis CPU per call, ${calls} calls per case and round, ${rounds} rounds, 50 in flight (\`npx tsx benchmarks/write-script.ts${against === undefined ? '' : ' --against …'}\`; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}):`,
    '',
    '| call | Redis CPU µs (median) | per round |',
    '| --- | ---: | --- |',
    ...rows,
    '',
  ].join('\n')
  writeFileSync(new URL('./results/write-script.md', import.meta.url), out)
  console.log(out)
} finally {
  await client.close()
  await server.stop()
}
