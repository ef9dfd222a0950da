/**
 * A dependency-free SVG line chart for benchmark sweeps: one panel per measured figure, one line per server, the
 * message rate on a logarithmic x axis. Pure (data in, SVG text out) so the benchmark only writes the file.
 */

export interface Series {
  readonly label: string
  readonly color: string
  /** One point per swept rate; `undefined` where the figure was not measured. */
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number | undefined }>
}

export interface Panel {
  readonly title: string
  readonly unit: string
  readonly series: ReadonlyArray<Series>
}

const WIDTH = 440
const HEIGHT = 300
const MARGIN = { top: 40, right: 20, bottom: 50, left: 60 }

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Round tick steps (1, 2, 5 × 10ⁿ) so the y axis reads at a glance. */
const niceStep = (span: number, ticks: number): number => {
  const raw = span / ticks
  const power = 10 ** Math.floor(Math.log10(raw))
  const unit = raw / power
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power
}

const panel = (spec: Panel, offsetX: number, xLabel: string): string => {
  const plotW = WIDTH - MARGIN.left - MARGIN.right
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom
  const xs = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b)
  const ys = spec.series.flatMap((s) => s.points.flatMap((p) => (p.y === undefined ? [] : [p.y])))
  const yMax = ys.length === 0 ? 1 : Math.max(...ys) * 1.1
  const step = niceStep(yMax, 5)
  const top = Math.ceil(yMax / step) * step
  const [xMin, xMax] = [Math.log(xs[0] ?? 1), Math.log(xs[xs.length - 1] ?? 10)]
  const sx = (x: number) =>
    offsetX + MARGIN.left + (xMax === xMin ? plotW / 2 : ((Math.log(x) - xMin) / (xMax - xMin)) * plotW)
  const sy = (y: number) => MARGIN.top + plotH - (y / top) * plotH
  const out: Array<string> = []
  out.push(
    `<text x="${offsetX + WIDTH / 2}" y="22" text-anchor="middle" font-weight="bold">${escape(spec.title)}</text>`
  )
  for (let y = 0; y <= top + step / 2; y += step) {
    const py = sy(y).toFixed(1)
    out.push(
      `<line x1="${offsetX + MARGIN.left}" x2="${offsetX + WIDTH - MARGIN.right}" y1="${py}" y2="${py}" stroke="#ddd"/>`,
      `<text x="${offsetX + MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">` +
        `${Number(y.toPrecision(6))}</text>`
    )
  }
  for (const x of xs) {
    const px = sx(x).toFixed(1)
    out.push(
      `<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`,
      `<text x="${px}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${x}</text>`
    )
  }
  out.push(
    `<text x="${offsetX + MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escape(xLabel)}</text>`,
    `<text transform="translate(${offsetX + 16} ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">` +
      `${escape(spec.unit)}</text>`
  )
  spec.series.forEach((series, i) => {
    const known = series.points.filter((p): p is { x: number; y: number } => p.y !== undefined)
    const path = known.map((p, j) => `${j === 0 ? "M" : "L"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ")
    out.push(`<path d="${path}" fill="none" stroke="${series.color}" stroke-width="2"/>`)
    for (const p of known) {
      out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${series.color}"/>`)
    }
    const ly = MARGIN.top + 4 + i * 16
    const lx = offsetX + MARGIN.left + 10
    out.push(
      `<rect x="${lx}" y="${ly}" width="12" height="3" fill="${series.color}"/>`,
      `<text x="${lx + 18}" y="${ly + 3}" dominant-baseline="middle">${escape(series.label)}</text>`
    )
  })
  return out.join("\n")
}

/** Panels side by side in one SVG document, with a caption line under them. */
export const sweepChart = (panels: ReadonlyArray<Panel>, xLabel: string, caption: string): string => {
  const width = WIDTH * panels.length
  const height = HEIGHT + 24
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.map((p, i) => panel(p, i * WIDTH, xLabel)),
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${escape(caption)}</text>`,
    `</svg>`,
    ""
  ].join("\n")
}
