import { Effect, Layer, Context } from "effect"
import * as SqliteStore from "../dist/sqlite/SqliteStore.js"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Fs from "node:fs"
const dir = Fs.mkdtempSync("/tmp/prof/t-")
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const ctx = yield* Layer.build(SqliteStore.layer({ dataDir: dir, synchronous: "normal" }))
  const sql = Context.get(ctx, SqlClient.SqlClient)
  for (const [label, eff] of [["empty tx", sql.withTransaction(Effect.void)], ["tx+select", sql.withTransaction(sql`SELECT 1`)], ["select", sql`SELECT 1`], ["tx no tracer", sql.withTransaction(Effect.void).pipe(Effect.withTracerEnabled(false))]]) {
    for (let round = 0; round < 2; round++) {
      const N = 20000; const t0 = process.cpuUsage()
      for (let i = 0; i < N; i++) yield* eff
      const c = process.cpuUsage(t0); if (round) console.log(label, ((c.user + c.system) / N).toFixed(1), "µs")
    }
  }
})))
Fs.rmSync(dir, { recursive: true })
