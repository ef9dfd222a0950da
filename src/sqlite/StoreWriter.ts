/**
 * Group commit: every write of the embedded store (messages, sessions, retention) joins the next transaction, and
 * its caller resumes once that transaction is committed — so an ack means the message is on disk, while a burst of
 * a thousand sends costs a handful of commits rather than a thousand fsyncs.
 *
 * Groups start at most once per window (the embedded store's default: 20 ms), one at a time. A write to a store
 * that has not started a group for that long starts one as soon as the event loop comes round (`setImmediate`), so
 * a quiet room pays no wait; under load, writes gather until the window since the last start has passed, so a
 * burst of any rate costs at most one commit per window. That bound is what matters: each commit costs the server
 * about a millisecond of CPU on the machine measured (the statement, the fsync, the wake-up), far more than a
 * message adds.
 * After the commit, each job's `committed` callback runs synchronously and in submission order (the hub fans
 * messages out there, in id order) before any caller resumes.
 * If the transaction fails (disk full, I/O error), every job of the group gets a `BackendError` — the request that
 * needed it answers `unavailable` — its `rolledBack` callback runs, and the next group tries again: the store
 * recovers by itself once writes work. The first failure is logged, and the first success after it.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlClient from "@effect/sql/SqlClient"
import { Cause, Context, Duration, Effect, Exit, Layer, Runtime } from "effect"
import { BackendError } from "../backend/BackendError.js"

export interface WriteJob<A> {
  /** What to write, inside the group's transaction. */
  readonly run: Effect.Effect<A, SqlError>
  /** Runs after the commit, before the caller resumes, in the order the jobs were submitted. */
  readonly committed?: ((value: A) => void) | undefined
  /** Runs when the group's transaction failed. */
  readonly rolledBack?: (() => void) | undefined
  /**
   * The job writes with one statement (reads aside), which SQLite applies whole or not at all: a group of this job
   * alone needs no `BEGIN`/`COMMIT` around it — two statements fewer, the costliest part of a small group.
   */
  readonly atomic?: boolean | undefined
}

export interface StoreWriterService {
  /** Runs `job` in the next group's transaction; succeeds once it is committed. */
  readonly write: <A>(operation: string, job: WriteJob<A>) => Effect.Effect<A, BackendError>
  /**
   * `write` without an Effect around it, for a caller that batches its own work into one job per group (the hub:
   * one multi-row insert for every message of the group): `done` gets the outcome after the callbacks ran.
   */
  readonly submit: <A>(operation: string, job: WriteJob<A>, done: (outcome: Exit.Exit<A, BackendError>) => void) => void
  /** Whether the last group committed (after a failure, a probe write answers). */
  readonly healthy: Effect.Effect<boolean>
}

export interface StoreWriterOptions {
  /**
   * The least time between the starts of two groups (default 0: a group per event-loop turn). Under load a write
   * waits at most this long for its group to start; a write to an idle store does not wait.
   */
  readonly window?: Duration.DurationInput | undefined
}

export class StoreWriter extends Context.Tag("effect-chat/StoreWriter")<StoreWriter, StoreWriterService>() {
  static layer = (options: StoreWriterOptions = {}) => Layer.scoped(StoreWriter, make(options))
}

interface Pending {
  readonly operation: string
  readonly job: WriteJob<any>
  readonly resume: (outcome: Exit.Exit<any, BackendError>) => void
  value?: unknown
}

const make = (options: StoreWriterOptions) =>
  Effect.gen(function* () {
    const windowMs = Duration.toMillis(Duration.decode(options.window ?? 0))
    const sql = yield* SqlClient.SqlClient
    const runtime = yield* Effect.runtime<never>()
    let pending: Array<Pending> = []
    let scheduled = false
    let running = false
    let failing = false
    let closed = false
    /** When the last group started (ms, monotonic); the next starts no sooner than `windowMs` after it. */
    let lastStart = -Infinity
    const idle: Array<() => void> = []

    /** What made the group fail: after SQLITE_FULL, SQLite has rolled back and the ROLLBACK's own error hides it. */
    let firstError: unknown
    // No tracer spans per statement: at thousands of statements a second they cost more than SQLite does.
    const group = (batch: ReadonlyArray<Pending>) => {
      const jobs = Effect.forEach(
        batch,
        (entry) =>
          entry.job.run.pipe(
            Effect.map((value) => void (entry.value = value)),
            Effect.tapError((error) => Effect.sync(() => (firstError = error)))
          ),
        { discard: true }
      )
      const alone = batch.length === 1 && batch[0]!.job.atomic === true
      return (alone ? jobs : sql.withTransaction(jobs)).pipe(Effect.withTracerEnabled(false))
    }

    /** One job's callback that throws (a bug) must not cost the rest of the group its commit or its answer. */
    const guarded = (callback: () => void) => {
      try {
        callback()
      } catch (defect) {
        Runtime.runFork(runtime)(Effect.logError("store: a write's callback failed", Cause.die(defect)))
      }
    }

    const settle = (batch: ReadonlyArray<Pending>, exit: Exit.Exit<void, SqlError>) => {
      if (Exit.isSuccess(exit)) {
        if (failing) {
          failing = false
          Runtime.runFork(runtime)(Effect.logInfo("store: writes work again"))
        }
        for (const entry of batch) guarded(() => entry.job.committed?.(entry.value))
        for (const entry of batch) guarded(() => entry.resume(Exit.succeed(entry.value)))
        return
      }
      const cause = Exit.isFailure(exit) ? exit.cause : undefined
      if (!failing) {
        failing = true
        Runtime.runFork(runtime)(
          Effect.logError("store: a write failed; requests that write answer unavailable until writes work").pipe(
            Effect.annotateLogs(
              "reason",
              firstError !== undefined ? reasonOf(firstError) : cause === undefined ? "unknown" : reasonsOf(cause)
            )
          )
        )
      }
      for (const entry of batch) guarded(() => entry.job.rolledBack?.())
      for (const entry of batch) {
        guarded(() =>
          entry.resume(Exit.fail(new BackendError({ reason: "Unavailable", operation: entry.operation, cause })))
        )
      }
    }

    const flush = () => {
      scheduled = false
      if (running || pending.length === 0) return
      const batch = pending
      pending = []
      running = true
      lastStart = performance.now()
      firstError = undefined
      Runtime.runCallback(runtime)(group(batch), {
        onExit: (exit) => {
          running = false
          try {
            settle(batch, exit)
          } finally {
            if (pending.length > 0) schedule()
            else for (const done of idle.splice(0)) done()
          }
        }
      })
    }

    const schedule = () => {
      if (scheduled) return
      scheduled = true
      const wait = closed ? 0 : lastStart + windowMs - performance.now()
      if (wait > 0) setTimeout(flush, wait)
      else setImmediate(flush)
    }

    const submit: StoreWriterService["submit"] = (operation, job, done) => {
      if (closed) return done(Exit.fail(new BackendError({ reason: "Unavailable", operation })))
      pending.push({ operation, job, resume: done })
      if (!running) schedule()
    }

    const write: StoreWriterService["write"] = (operation, job) =>
      Effect.async((resume) => submit(operation, job, resume))

    // A write, not a read: a full disk still answers reads.
    const probe = Effect.suspend(() =>
      write("probe", {
        run: sql`INSERT INTO meta (key, value) VALUES ('probe', ${Date.now()})
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`.pipe(Effect.asVoid)
      })
    )

    // What is queued when the store closes is still written: the chat core's last writes (sessions held at shutdown)
    // come after its sockets are closed.
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        closed = true
        if (!running && pending.length === 0) return resume(Effect.void)
        idle.push(() => resume(Effect.void))
        schedule()
      })
    )

    return StoreWriter.of({
      write,
      submit,
      healthy: Effect.suspend(() =>
        failing ? Effect.as(probe, true).pipe(Effect.orElseSucceed(() => false)) : Effect.succeed(true)
      )
    })
  })

/** The driver's own words (`database or disk is full (SQLITE_FULL)`), not a stack trace. */
export const reasonOf = (error: unknown): string => {
  const inner = (error as { cause?: unknown })?.cause ?? error
  const message = inner instanceof Error ? inner.message : String(inner)
  const code = (inner as { code?: unknown })?.code
  return typeof code === "string" ? `${message} (${code})` : message
}

/** Every error in `cause`, failures and defects alike: SQLite's ROLLBACK after SQLITE_FULL fails too. */
const reasonsOf = (cause: Cause.Cause<unknown>): string =>
  Array.from(new Set([...Cause.failures(cause), ...Cause.defects(cause)].map(reasonOf))).join("; ")
