/**
 * A dependency-free SVG chart of the results: one row per variant, req/s bars on the left and
 * p99 latency bars on the right, each panel on its own linear scale from zero.
 */
import type { Summary } from './stats.ts'

const COLORS: Readonly<Record<string, string>> = {
  baseline: '#8a8f98',
  plugin: '#1f8a70',
  alternative: '#d9822b',
  against: '#9b9fd6',
}

function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A "nice" axis maximum and step (1, 2 or 5 × 10^k) with about `ticks` steps. */
export function niceScale (max: number, ticks = 4): { max: number, step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 }
  const raw = max / ticks
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10) * power
  return { max: Math.ceil(max / step) * step, step }
}

function compact (n: number): string {
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 1 ? 2 : 1)
}

export function renderSvg (summaries: readonly Summary[], title: string, subtitle: string): string {
  const labelW = 380
  const panelW = 270
  const gap = 60
  const rowH = 26
  const top = 78
  const left1 = labelW
  const left2 = labelW + panelW + gap
  const width = left2 + panelW + 70
  const height = top + summaries.length * rowH + 44
  const rps = niceScale(Math.max(0, ...summaries.map((s) => s.rps ?? 0)))
  const p99 = niceScale(Math.max(0, ...summaries.map((s) => s.p99Ms ?? 0)))
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="24" font-size="16" font-weight="600" fill="#111">${esc(title)}</text>`)
  out.push(`<text x="16" y="42" fill="#555">${esc(subtitle)}</text>`)

  const panel = (x0: number, scale: { max: number, step: number }, heading: string): void => {
    out.push(`<text x="${x0}" y="${top - 14}" font-weight="600" fill="#222">${esc(heading)}</text>`)
    for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
      const x = x0 + (v / scale.max) * panelW
      out.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${top + summaries.length * rowH}" stroke="#e3e5e8"/>`)
      out.push(`<text x="${x.toFixed(1)}" y="${top + summaries.length * rowH + 16}" text-anchor="middle" fill="#666">${compact(v)}</text>`)
    }
  }
  panel(left1, rps, 'requests / s (median; higher is better)')
  panel(left2, p99, 'p99 latency, ms (median; lower is better)')

  summaries.forEach((s, i) => {
    const y = top + i * rowH
    const color = COLORS[s.group] ?? '#3b6fb6'
    out.push(`<text x="${labelW - 10}" y="${y + rowH / 2 + 4}" text-anchor="end" fill="#222">${esc(s.label)}</text>`)
    if (s.status !== 'ok' || s.rps === undefined) {
      out.push(`<text x="${left1 + 4}" y="${y + rowH / 2 + 4}" fill="#c0392b" font-weight="600">FAILED</text>`)
      return
    }
    const w1 = (s.rps / rps.max) * panelW
    const ratio = s.ratioToBaseline === undefined ? '' : ` (${s.ratioToBaseline.toFixed(2)}×)`
    out.push(`<rect x="${left1}" y="${y + 5}" width="${w1.toFixed(1)}" height="${rowH - 10}" fill="${color}" rx="2"/>`)
    out.push(`<text x="${(left1 + w1 + 4).toFixed(1)}" y="${y + rowH / 2 + 4}" fill="#333">${compact(Math.round(s.rps))}${ratio}</text>`)
    if (s.p99Ms !== undefined) {
      const w2 = (s.p99Ms / p99.max) * panelW
      out.push(`<rect x="${left2}" y="${y + 5}" width="${w2.toFixed(1)}" height="${rowH - 10}" fill="${color}" fill-opacity="0.75" rx="2"/>`)
      out.push(`<text x="${(left2 + w2 + 4).toFixed(1)}" y="${y + rowH / 2 + 4}" fill="#333">${s.p99Ms.toFixed(2)}</text>`)
    }
  })

  const legendY = height - 10
  let lx = 16
  for (const [group, name] of [['baseline', 'bare Fastify'], ['plugin', 'fastify-hardened-session'], ['alternative', 'alternatives'], ['against', 'this plugin, other checkout']] as const) {
    if (!summaries.some((s) => s.group === group)) continue
    out.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[group]}" rx="2"/>`)
    out.push(`<text x="${lx + 17}" y="${legendY}" fill="#333">${esc(name)}</text>`)
    lx += 30 + name.length * 7
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
