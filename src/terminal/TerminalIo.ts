/**
 * The terminal client's input and output. On a TTY it keeps an input prompt that incoming lines never garble: each
 * is printed above the prompt (clear the row, print, redraw the prompt with the partly typed input and the cursor
 * where they were). Piped, it reads lines until end of input and prints plain lines, without a prompt or colour.
 */
import { Config, Deferred, Effect, Option, Queue } from "effect"
import * as Readline from "node:readline"

export interface TerminalIo {
  /** Both input and output are terminals: a prompt is shown and lines typed are echoed by readline. */
  readonly interactive: boolean
  /** Output is a terminal and NO_COLOR is not set. */
  readonly color: boolean
  /** Input lines in order; `None` at end of input. */
  readonly lines: Queue.Dequeue<Option.Option<string>>
  /** The line being typed, after each key pressed on an interactive terminal (never when piped). */
  readonly typed: Queue.Dequeue<string>
  /** Completed by Ctrl-C on an interactive terminal: leave now, whatever is under way. */
  readonly interrupted: Deferred.Deferred<void>
  readonly print: (line: string) => Effect.Effect<void>
  /** Shows `prompt` (interactive only), keeping what has been typed so far. */
  readonly setPrompt: (prompt: string) => Effect.Effect<void>
  /** Stops reading and prints a last line, if any, where the prompt was. */
  readonly finish: (line?: string) => Effect.Effect<void>
}

type Input = NodeJS.ReadableStream & { readonly isTTY?: boolean }
type Output = NodeJS.WritableStream & { readonly isTTY?: boolean }

/** Reads `input` and writes `output` until the scope closes. */
export const make = (input: Input = process.stdin, output: Output = process.stdout) =>
  Effect.gen(function* () {
    const noColor = yield* Config.string("NO_COLOR").pipe(
      Config.withDefault(""),
      Effect.orElseSucceed(() => "")
    )
    const interactive = input.isTTY === true && output.isTTY === true
    const color = output.isTTY === true && noColor === ""
    const lines = yield* Queue.unbounded<Option.Option<string>>()
    // Only the latest state of the line matters to whoever watches it.
    const typed = yield* Queue.sliding<string>(1)
    const interrupted = yield* Deferred.make<void>()

    const rl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Readline.createInterface({
          input,
          ...(interactive ? { output, terminal: true } : { terminal: false }),
          crlfDelay: Infinity
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )
    let closed = false
    rl.on("line", (line) => {
      lines.unsafeOffer(Option.some(line))
      if (interactive && !closed) rl.prompt()
    })
    rl.on("close", () => {
      closed = true
      lines.unsafeOffer(Option.none())
    })
    rl.on("SIGINT", () => Deferred.unsafeDone(interrupted, Effect.void))
    if (interactive) {
      // readline listens for keypresses on its input too, and was first: `rl.line` already holds this key.
      const onKey = () => void typed.unsafeOffer(rl.line)
      input.on("keypress", onKey)
      yield* Effect.addFinalizer(() => Effect.sync(() => input.removeListener("keypress", onKey)))
    }

    const clearRow = () => {
      Readline.cursorTo(output, 0)
      Readline.clearLine(output, 0)
    }
    const print = (line: string) =>
      Effect.sync(() => {
        if (!interactive || closed) return void output.write(`${line}\n`)
        clearRow()
        output.write(`${line}\n`)
        rl.prompt(true)
      })
    const setPrompt = (prompt: string) =>
      Effect.sync(() => {
        rl.setPrompt(prompt)
        if (interactive && !closed) {
          clearRow()
          rl.prompt(true)
        }
      })
    const finish = (line?: string) =>
      Effect.sync(() => {
        if (interactive && !closed) clearRow()
        closed = true
        rl.close()
        if (line !== undefined) output.write(`${line}\n`)
      })

    return { interactive, color, lines, typed, interrupted, print, setPrompt, finish } satisfies TerminalIo
  })
