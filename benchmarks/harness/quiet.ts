/**
 * `--wait-quiet S`: before each timed variant, wait (up to S seconds) until other processes on
 * the machine use less than QUIET_PCT of a CPU, so a neighbour's test run does not end up in
 * the numbers. Measured from /proc/stat minus this harness's own processes.
 */
import { selfAndReapedChildrenUs, systemBusyUs } from './cpu.ts'

export const QUIET_PCT = 10

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Other processes' CPU use over `ms`, in % of one CPU (undefined without /proc). */
export async function foreignLoad (ms: number, ownExtraUs: () => number | undefined): Promise<number | undefined> {
  const busy0 = systemBusyUs()
  const own0 = selfAndReapedChildrenUs()
  const extra0 = ownExtraUs()
  const t0 = performance.now()
  await sleep(ms)
  const busy1 = systemBusyUs()
  const own1 = selfAndReapedChildrenUs()
  const extra1 = ownExtraUs()
  if (busy0 === undefined || busy1 === undefined || own0 === undefined || own1 === undefined) return undefined
  const ours = (own1 - own0) + (extra0 !== undefined && extra1 !== undefined ? extra1 - extra0 : 0)
  return Math.max(0, ((busy1 - busy0 - ours) / ((performance.now() - t0) * 1000)) * 100)
}

/** Waits until the machine is quiet or `maxWaitS` has passed; returns the last reading. */
export async function waitForQuiet (maxWaitS: number, ownExtraUs: () => number | undefined, log: (line: string) => void): Promise<number | undefined> {
  const deadline = Date.now() + maxWaitS * 1000
  let load = await foreignLoad(500, ownExtraUs)
  let told = false
  while (load !== undefined && load > QUIET_PCT && Date.now() < deadline) {
    if (!told) log(`  waiting for the machine to be quiet (other processes use ${load.toFixed(0)} % of a CPU)…`)
    told = true
    await sleep(1000)
    load = await foreignLoad(500, ownExtraUs)
  }
  if (told) log(`  … ${load !== undefined && load <= QUIET_PCT ? 'quiet' : `still ${load?.toFixed(0) ?? '?'} % busy, going on`}`)
  return load
}
