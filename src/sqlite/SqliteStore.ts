/**
 * The embedded store's database: one SQLite file, `effect-chat.db`, in the data directory, opened through
 * `@effect/sql-sqlite-node` (better-sqlite3) in WAL mode, checked to be ours, locked against a second server and
 * migrated to the current schema. Everything that can go wrong here is a `StoreError` with a line an operator can
 * act on; nothing is created over a file we did not write.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Cause, Context, Effect, Layer, Option } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Migrations from "./Migrations.js"
import { StoreError } from "./StoreError.js"

export const FILE_NAME = "effect-chat.db"

/**
 * `full`: every commit is on disk before its ack (survives a power loss; each group commit waits for an fsync).
 * `normal`: every commit is in the operating system before its ack (survives the server being killed, not a power
 * loss). See the README for the measured cost.
 */
export type Synchronous = "full" | "normal"

export interface SqliteStoreOptions {
  /** Created if missing. */
  readonly dataDir: string
  readonly synchronous?: Synchronous | undefined
  /** The migrations to apply (default all): an upgrade test opens a directory as an older version would. */
  readonly migrations?: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> | undefined
}

/** Where the store's file is, for logs and `/healthz`. */
export class StoreFile extends Context.Tag("effect-chat/StoreFile")<StoreFile, string>() {}

const describe = (cause: unknown): string => {
  const error = (cause as { cause?: unknown })?.cause ?? cause
  const code = (error as { code?: unknown })?.code
  const message = error instanceof Error ? error.message : String(error)
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message
}

const failureOf = (cause: Cause.Cause<unknown>): unknown =>
  Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause))

const createDirectory = (dir: string) =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(dir, { recursive: true })
      Fs.accessSync(dir, Fs.constants.W_OK)
      // Root may write where `access` says no one can; a probe file answers for certain.
      const probe = Path.join(dir, `.write-probe-${process.pid}`)
      Fs.writeFileSync(probe, "")
      Fs.rmSync(probe)
    },
    catch: (cause) => new StoreError({ message: `data directory ${dir} cannot be used: ${describe(cause)}`, cause })
  })

/** The file is empty (new), or ours: anything else is refused before a single byte is written to it. */
const checkOwnership = (file: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [app] = yield* sql<{ application_id: number }>`PRAGMA application_id`
    const [tables] = yield* sql<{ count: number }>`SELECT count(*) AS count FROM sqlite_master`
    const id = app?.application_id ?? 0
    if (id === Migrations.APPLICATION_ID || (id === 0 && (tables?.count ?? 0) === 0)) return
    return yield* new StoreError({
      message: `${file} is a SQLite database of another application (application_id ${id}); refusing to touch it`
    })
  })

const configure = (synchronous: Synchronous) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // A second server on the same directory would hand out the same ids: the first write takes the file for good.
    yield* sql.unsafe("PRAGMA busy_timeout = 3000")
    // Only now that the file is known to be ours (or new): journal_mode rewrites the file's header.
    yield* sql.unsafe("PRAGMA journal_mode = WAL")
    yield* sql.unsafe("PRAGMA locking_mode = EXCLUSIVE")
    yield* sql.unsafe(`PRAGMA synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`)
    yield* sql.unsafe("PRAGMA foreign_keys = ON")
    yield* sql.unsafe("BEGIN IMMEDIATE")
    yield* sql.unsafe("COMMIT")
  })

const migrate = Migrator.make({})

export const layer = (options: SqliteStoreOptions): Layer.Layer<SqlClient.SqlClient | StoreFile, StoreError> => {
  const file = Path.resolve(options.dataDir, FILE_NAME)
  const opened = Layer.scopedContext(
    Effect.gen(function* () {
      yield* createDirectory(Path.dirname(file))
      const client = yield* SqliteClient.make({ filename: file, disableWAL: true }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.catchAllCause((cause) => new StoreError({ message: openMessage(file, failureOf(cause)), cause }))
      )
      return Context.make(SqlClient.SqlClient, client).pipe(Context.add(StoreFile, file))
    })
  )
  const ready = Layer.effectDiscard(
    Effect.gen(function* () {
      yield* checkOwnership(file)
      yield* configure(options.synchronous ?? "full")
      yield* migrate({ loader: Migrator.fromRecord(options.migrations ?? Migrations.all) })
    }).pipe(
      Effect.catchAllCause((cause) => {
        const failure = failureOf(cause)
        return failure instanceof StoreError ? failure : new StoreError({ message: openMessage(file, failure), cause })
      })
    )
  )
  return Layer.provideMerge(ready, opened)
}

const openMessage = (file: string, cause: unknown): string => {
  const text = describe(cause)
  if (/SQLITE_NOTADB|not a database/i.test(text))
    return `${file} is not an effect-chat database (${text}); refusing to touch it`
  if (/SQLITE_BUSY|database is locked/i.test(text)) return `${file} is in use by another effect-chat server (${text})`
  return `cannot open ${file}: ${text}`
}
