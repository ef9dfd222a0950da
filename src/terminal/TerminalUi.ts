/**
 * The terminal chat: two loops, as in the Ktor client. One prints every event of the `ChatClient` above the
 * prompt; the other runs the lines typed (or piped) in, in order. Lines said in a room are queued at once and their
 * acknowledgements awaited in the background, so typing never waits for the network; commands that change where
 * the next line goes (`/join`, `/leave`) are awaited before the next line is read.
 */
import { Duration, Effect, FiberSet, Option, Queue, Stream } from "effect"
import { ChatClient, ChatClientError, type ChatEvent } from "../client/ChatClient.js"
import { ClientCommand, HELP, parse } from "./ClientCommand.js"
import * as TerminalFormat from "./TerminalFormat.js"
import * as TerminalIo from "./TerminalIo.js"

export interface TerminalUiOptions {
  /** The room lines go to at first; default: the first room of the session. */
  readonly room?: string | undefined
  /** How long an interactive quit waits for unacknowledged lines. Piped input waits for all of them. */
  readonly quitGrace?: Duration.DurationInput | undefined
}

export const GOODBYE = "Connection closed. Goodbye!"

/**
 * Runs the chat on stdin/stdout until `/quit`, `exit`, end of input or Ctrl-C (then closes with 1000 and says
 * goodbye). Fails with `Closed` when the server ends the session.
 */
export const run = (options: TerminalUiOptions = {}): Effect.Effect<void, ChatClientError, ChatClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const client = yield* ChatClient
      const io = yield* TerminalIo.make()
      const session = yield* client.session
      let room = options.room ?? session.rooms[0]
      const view = (): TerminalFormat.View => ({ room, color: io.color })
      const showRoom = () => io.setPrompt(`${room ?? "(no room)"}> `)
      const print = (lines: ReadonlyArray<string>) => Effect.forEach(lines, io.print, { discard: true })
      const printError = (error: ChatClientError) =>
        io.print(TerminalFormat.formatError(view(), error.code ?? error.reason.toLowerCase(), error.message))

      let closedBy: Extract<ChatEvent, { type: "closed" }> | undefined
      const onEvent = (event: ChatEvent) =>
        Effect.gen(function* () {
          if (event.type === "closed") closedBy = event
          if (event.type === "connected" && (room === undefined || !event.welcome.rooms.includes(room))) {
            room = event.welcome.rooms[0]
            yield* showRoom()
          }
          yield* print(TerminalFormat.formatEvent(view(), event))
        })
      const printer = yield* Effect.forkScoped(Stream.runForEach(client.events, onEvent))
      yield* showRoom()

      const sends = yield* FiberSet.make()
      const execute = (command: ClientCommand): Effect.Effect<void, ChatClientError> =>
        ClientCommand.$match(command, {
          Empty: () => Effect.void,
          Quit: () => Effect.void,
          Help: () => print(HELP),
          Invalid: ({ message }) => io.print(message),
          Say: ({ text }) =>
            inRoom((room) =>
              Effect.flatMap(client.submit(room, text), (ack) => FiberSet.run(sends, Effect.catchAll(ack, printError)))
            ),
          Join: ({ room: target }) =>
            Effect.tap(client.join(target), () => {
              room = target
              return showRoom()
            }),
          Leave: ({ room: target = room }) =>
            target === undefined
              ? io.print("You are in no room.")
              : Effect.tap(client.leave(target), () =>
                  Effect.gen(function* () {
                    if (target !== room) return
                    room = (yield* client.session).rooms[0]
                    yield* showRoom()
                  })
                ),
          Nick: ({ name }) => client.nick(name),
          Who: () =>
            inRoom((room) =>
              Effect.flatMap(client.who(room), (names) =>
                print(TerminalFormat.formatEvent(view(), { type: "members", room, names }))
              )
            ),
          Msg: ({ text, to }) => client.direct(to, text),
          History: ({ limit }) =>
            inRoom((room) =>
              Effect.flatMap(client.history(room, { limit }), (history) =>
                history.messages.length === 0
                  ? io.print(`No messages in #${room}.`)
                  : print(history.messages.map((message) => TerminalFormat.formatMessage(view(), message)))
              )
            )
        })
      const inRoom = (f: (room: string) => Effect.Effect<void, ChatClientError>) =>
        room === undefined ? io.print("You are in no room: /join one first.") : f(room)

      const readLines = Effect.gen(function* () {
        while (true) {
          const line = yield* Queue.take(io.lines)
          if (Option.isNone(line)) return
          const command = parse(line.value)
          if (command._tag === "Quit") return
          yield* Effect.catchAll(execute(command), printError)
        }
      })

      // The printer ends only with the `closed` event: the server ended the session.
      const outcome = yield* Effect.raceFirst(
        Effect.as(readLines, "quit" as const),
        Effect.raceFirst(Effect.as(printer.await, "ended" as const), Effect.as(io.interrupted, "quit" as const))
      )
      if (outcome === "quit") yield* awaitSends(io, sends, options.quitGrace ?? "3 seconds")
      if (closedBy === undefined) {
        yield* client.close
        return yield* io.finish(GOODBYE)
      }
      yield* io.finish()
      const message = `Connection closed by the server: ${TerminalFormat.describeClose(closedBy.code, closedBy.reason)}.`
      return yield* Effect.fail(new ChatClientError({ reason: "Closed", message, closeCode: closedBy.code }))
    })
  )

/** Lines typed are delivered before leaving: piped input waits for every ack, a person waits a few seconds. */
const awaitSends = (io: TerminalIo.TerminalIo, sends: FiberSet.FiberSet, grace: Duration.DurationInput) =>
  Effect.gen(function* () {
    if (!io.interactive) return yield* FiberSet.awaitEmpty(sends)
    const done = yield* Effect.timeout(FiberSet.awaitEmpty(sends), grace).pipe(Effect.option)
    if (Option.isNone(done)) {
      yield* io.print(`${yield* FiberSet.size(sends)} line(s) were not acknowledged and may not have been delivered.`)
    }
  })
