/**
 * The embedded store's group commit, as a writer sees it: a write to an idle store is committed at once (no window
 * to wait out), while writes that come in fast share one commit per window — the bound on commits a second that
 * makes the store's CPU cost flat under load.
 */
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Duration, Effect, Layer } from "effect"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { StoreWriter } from "../src/sqlite/StoreWriter.js"
import * as TempDir from "./support/TempDir.js"

const WINDOW_MS = 400

/**
 * A writer over a fresh store with the given window. Each write records when its group was committed and which
 * writes had run by then: callbacks run after the commit, so a write's group is exactly the writes that ran before
 * its `committed` callback and after the previous group's.
 */
const writerOn = (window: Duration.DurationInput) =>
  Effect.gen(function* () {
    const dataDir = yield* TempDir.scoped("writer-")
    const context = yield* Layer.build(
      StoreWriter.layer({ window }).pipe(Layer.provideMerge(SqliteStore.layer({ dataDir })))
    )
    const sql = Context.get(context, SqlClient.SqlClient)
    const writer = Context.get(context, StoreWriter)
    const ran: Array<string> = []
    const write = (key: string) =>
      Effect.suspend(() => {
        let committedAt = 0
        let ranByCommit: ReadonlyArray<string> = []
        return writer
          .write("test", {
            run: sql`INSERT INTO meta (key, value) VALUES (${key}, ${Date.now()})`.pipe(
              Effect.zipRight(sql<{ n: number }>`SELECT count(*) AS n FROM meta`),
              Effect.map((rows) => rows[0]!.n),
              Effect.tap(() => Effect.sync(() => ran.push(key)))
            ),
            committed: () => {
              committedAt = performance.now()
              ranByCommit = [...ran]
            }
          })
          .pipe(Effect.map((rowsSeen) => ({ rowsSeen, committedAt, ranByCommit })))
      })
    return { write }
  })

describe("the store's group commit", () => {
  it.scopedLive("a write to an idle store is committed at once; fast writes share one commit per window", () =>
    Effect.gen(function* () {
      const { write } = yield* writerOn(Duration.millis(WINDOW_MS))
      const start = performance.now()
      const first = yield* write("a")
      // Idle: no window to wait out.
      expect(first.committedAt - start).toBeLessThan(WINDOW_MS / 2)

      // Right after a commit: these wait for the window since the last group's start, and go in one group.
      const burst = yield* Effect.all(
        ["b", "c", "d", "e"].map((key) => write(key)),
        { concurrency: "unbounded" }
      )
      for (const one of burst) {
        expect(one.committedAt - start).toBeGreaterThanOrEqual(WINDOW_MS - 50)
        // One group: all four had run when the first of them was committed.
        expect(one.ranByCommit).toEqual(["a", "b", "c", "d", "e"])
      }
      expect(burst.map((one) => one.rowsSeen)).toEqual([2, 3, 4, 5])

      // Idle again for longer than the window: at once again.
      yield* Effect.sleep(Duration.millis(WINDOW_MS + 100))
      const later = performance.now()
      const last = yield* write("f")
      expect(last.committedAt - later).toBeLessThan(WINDOW_MS / 2)
      expect(last.rowsSeen).toBe(6)
    })
  )

  it.scopedLive("with no window, writes of one event-loop turn share a group and a later write never waits", () =>
    Effect.gen(function* () {
      const { write } = yield* writerOn(0)
      const together = yield* Effect.all([write("a"), write("b")], { concurrency: "unbounded" })
      for (const one of together) expect(one.ranByCommit).toEqual(["a", "b"])
      const asked = performance.now()
      const next = yield* write("c")
      expect(next.committedAt - asked).toBeLessThan(WINDOW_MS / 2)
      expect(next.rowsSeen).toBe(3)
    })
  )
})
