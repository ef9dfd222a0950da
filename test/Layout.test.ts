/**
 * The layout's promises, checked on the source: no import cycles, and dependencies pointing one way — protocol ←
 * backend contracts ← core ← dialects ← transport ← composition ← mains — with Redis kept out of the library's root.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const SRC = Path.resolve(import.meta.dirname, "..", "src")

const sourceFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith(".ts") ? [path] : []
  })

/** Relative imports of a file (type-only ones included: a cycle of types is still a cycle to a reader). */
const importsOf = (file: string): Array<string> => {
  const text = Fs.readFileSync(file, "utf8")
  const found: Array<string> = []
  for (const match of text.matchAll(
    /(?:import|export)\s[^"']*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g
  )) {
    const target = match[1] ?? match[2]!
    found.push(Path.resolve(Path.dirname(file), target.replace(/\.js$/, ".ts")))
  }
  return found
}

const files = sourceFiles(SRC)
const graph = new Map(files.map((file) => [file, importsOf(file)]))
const part = (file: string) => Path.relative(SRC, file).split(Path.sep)[0]!
const rel = (file: string) => Path.relative(SRC, file)

describe("source layout", () => {
  it("every relative import names a file that exists", () => {
    for (const [file, imports] of graph) {
      for (const target of imports) expect(files, `${rel(file)} imports ${rel(target)}`).toContain(target)
    }
  })

  it("has no import cycles", () => {
    const state = new Map<string, "visiting" | "done">()
    const cycles: Array<string> = []
    const visit = (file: string, path: Array<string>) => {
      if (state.get(file) === "done") return
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].map(rel).join(" → "))
        return
      }
      state.set(file, "visiting")
      for (const target of graph.get(file) ?? []) visit(target, [...path, file])
      state.set(file, "done")
    }
    for (const file of files) visit(file, [])
    expect(cycles).toEqual([])
  })

  // What each part may import besides itself. Mains and index.ts (files directly in src/) compose everything.
  const allowed: Record<string, ReadonlyArray<string>> = {
    protocol: [],
    // Metric definitions only: what every part may count into.
    metrics: [],
    backend: ["protocol"],
    redis: ["protocol", "backend"],
    sqlite: ["protocol", "backend"],
    server: ["protocol", "backend", "metrics"],
    dialect: ["protocol", "backend", "server", "metrics"],
    transport: ["protocol", "backend", "server", "dialect", "metrics"],
    api: ["protocol", "backend", "server", "metrics"],
    http: ["protocol", "backend", "server", "dialect", "transport", "metrics", "api"],
    auth: ["protocol", "server"],
    client: ["protocol"],
    terminal: ["protocol", "client"]
  }

  it("dependencies point one way: protocol ← backend ← server ← dialect ← transport ← http ← mains", () => {
    const wrong: Array<string> = []
    for (const [file, imports] of graph) {
      const from = part(file)
      if (from.endsWith(".ts")) continue
      for (const target of imports) {
        const to = part(target)
        if (to !== from && !(allowed[from] ?? []).includes(to)) wrong.push(`${rel(file)} → ${rel(target)}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it("the library's root export does not load redis, the embedded store or OpenTelemetry", () => {
    const reachable = new Set<string>()
    const walk = (file: string) => {
      if (reachable.has(file)) return
      reachable.add(file)
      for (const target of graph.get(file) ?? []) walk(target)
    }
    walk(Path.join(SRC, "index.ts"))
    expect([...reachable].map(rel).filter((file) => file.startsWith("redis") || file.startsWith("sqlite"))).toEqual([])
    for (const file of reachable) {
      expect(Fs.readFileSync(file, "utf8"), rel(file)).not.toMatch(
        /from "(redis|better-sqlite3|@effect\/sql[^"]*|@opentelemetry\/[^"]*|@effect\/opentelemetry[^"]*)"/
      )
    }
  })

  it("no module outside dialect/ asks which dialect a connection speaks", () => {
    for (const file of files) {
      if (part(file) === "dialect") continue
      expect(Fs.readFileSync(file, "utf8"), rel(file)).not.toMatch(/dialect\s*===\s*["']/)
    }
  })
})
