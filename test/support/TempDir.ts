/** Temporary data directories for tests: never `./data`, always removed when the scope closes. */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export const make = (prefix = "effect-chat-"): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))

export const remove = (dir: string) => Fs.rmSync(dir, { recursive: true, force: true })

export const scoped = (prefix?: string) =>
  Effect.acquireRelease(
    Effect.sync(() => make(prefix)),
    (dir) => Effect.sync(() => remove(dir))
  )
