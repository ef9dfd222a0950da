/**
 * The live chart: polled numbers over the last minutes as SVG polylines, one per series, each scaled to its own peak
 * (connections and messages per second differ by orders of magnitude). Built from elements and attributes only —
 * no markup strings, no inline styles (CSP) — and redrawn whole on each poll, which at 150 points is nothing.
 */

const SVG = "http://www.w3.org/2000/svg"
const WIDTH = 600
const HEIGHT = 200
const PAD = { left: 8, right: 70, top: 10, bottom: 20 }

export interface Sample {
  readonly at: number
  readonly connections: number
  readonly users: number
  readonly rate: number
}

export type Series = "connections" | "users" | "rate"
const SERIES: ReadonlyArray<Series> = ["connections", "users", "rate"]

const node = (tag: string, attributes: Record<string, string | number>, text?: string): SVGElement => {
  const element = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value))
  if (text !== undefined) element.textContent = text
  return element
}

const format = (value: number) =>
  value >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(1)

/** Draws `samples` (oldest first) spanning the last `windowMs` into `svg`. */
export const draw = (svg: SVGSVGElement, samples: ReadonlyArray<Sample>, windowMs: number, now: number): void => {
  const parts: Array<SVGElement> = []
  const plotWidth = WIDTH - PAD.left - PAD.right
  const plotHeight = HEIGHT - PAD.top - PAD.bottom
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + (plotHeight * i) / 4
    parts.push(node("line", { class: "grid", x1: PAD.left, x2: PAD.left + plotWidth, y1: y, y2: y }))
  }
  const minutes = Math.round(windowMs / 60_000)
  parts.push(node("text", { x: PAD.left, y: HEIGHT - 4 }, `-${minutes} min`))
  parts.push(node("text", { x: PAD.left + plotWidth - 24, y: HEIGHT - 4 }, "now"))
  const x = (at: number) => PAD.left + plotWidth * (1 - Math.min(1, Math.max(0, (now - at) / windowMs)))
  SERIES.forEach((series, index) => {
    if (samples.length === 0) return
    const peak = Math.max(1, ...samples.map((sample) => sample[series]))
    const y = (value: number) => PAD.top + plotHeight * (1 - value / peak)
    const points = samples.map((sample) => `${x(sample.at).toFixed(1)},${y(sample[series]).toFixed(1)}`).join(" ")
    parts.push(node("polyline", { class: series, points }))
    const last = samples[samples.length - 1]!
    parts.push(
      node(
        "text",
        { class: series, x: PAD.left + plotWidth + 6, y: PAD.top + 14 + index * 16 },
        `${format(last[series])} / ${format(peak)}`
      )
    )
  })
  svg.replaceChildren(...parts)
}
