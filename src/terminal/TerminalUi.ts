/**
 * The terminal chat: two loops, as in the Ktor client. One prints every event of the `ChatClient` above the
 * prompt; the other runs the lines typed (or piped) in, in order. Lines said in a room are queued at once and their
 * acknowledgements awaited in the background, so typing never waits for the network; commands that change where
 * the next line goes (`/join`, `/leave`) are awaited before the next line is read. Replies, edits, deletions and
 * reactions go the way of lines said. Beside them run the status line (who is typing, on the prompt), the typing
 * hints of the user's own keystrokes, and the read marker of the current room.
 */
import { Clock, Duration, Effect, FiberSet, Option, Queue, Schedule, Stream } from "effect"
import { ChatClient, ChatClientError, type ChatEvent } from "../client/ChatClient.js"
import { nameKey } from "../protocol/Rules.js"
import { ClientCommand, HELP, parse } from "./ClientCommand.js"
import * as TerminalFormat from "./TerminalFormat.js"
import * as TerminalIo from "./TerminalIo.js"
import * as Transcript from "./Transcript.js"
import * as Typing from "./Typing.js"
import * as Unread from "./Unread.js"

export interface TerminalUiOptions {
  /** The room lines go to at first; default: the first room of the session. */
  readonly room?: string | undefined
  /** How long an interactive quit waits for unacknowledged lines. Piped input waits for all of them. */
  readonly quitGrace?: Duration.DurationInput | undefined
  /** Messages start with their id; `/ids` toggles it. */
  readonly showIds?: boolean | undefined
}

/** How often the status line looks for typing hints that have run out. */
const STATUS_REFRESH = "250 millis"
/**
 * The read marker moves at most this often: every request costs a token of the server's rate limit, and a busy room
 * must not spend the user's (their lines would be refused, and repeated refusals close the connection).
 */
const READ_INTERVAL = "1 second"

/** A line being typed that is chat, not a command: it makes a typing hint (`//` and `/reply` lines are chat). */
export const isChatInput = (line: string): boolean => {
  const start = line.trimStart()
  return start !== "" && (!start.startsWith("/") || start.startsWith("//") || /^\/reply\s+\S+\s+\S/i.test(start))
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
      let showIds = options.showIds === true
      let me = session.name
      const transcript = Transcript.make(() => me)
      const unread = Unread.make()
      const typing = Typing.make()
      const view = (): TerminalFormat.View => ({ room, color: io.color, showIds, known: transcript.get })

      let prompt = ""
      const showRoom = () =>
        Effect.gen(function* () {
          const status =
            room === undefined ? undefined : Typing.describe(typing.who(room, yield* Clock.currentTimeMillis))
          const next = `${status === undefined ? "" : `(${TerminalFormat.sanitize(status)}) `}${room ?? "(no room)"}> `
          if (next === prompt) return
          prompt = next
          yield* io.setPrompt(next)
        })
      const print = (lines: ReadonlyArray<string>) => Effect.forEach(lines, io.print, { discard: true })
      const printError = (error: ChatClientError) =>
        io.print(TerminalFormat.formatError(view(), error.code ?? error.reason.toLowerCase(), error.message))
      const enabled = (feature: "typing" | "receipts") =>
        Effect.map(client.features, (features) => features.includes(feature))

      // The read marker follows the current room's newest message: one request at a time, for the newest id then,
      // at most one round a second.
      const wantRead = new Map<string, number>()
      const sentRead = new Map<string, number>()
      const readSignal = yield* Queue.sliding<void>(1)
      const readRoom = (target: string) => {
        const latest = unread.get(target).latest
        unread.read(target, latest)
        if (latest > (wantRead.get(target) ?? 0)) wantRead.set(target, latest)
        readSignal.unsafeOffer(undefined)
      }
      const markRead = Effect.gen(function* () {
        yield* Queue.take(readSignal)
        if (!(yield* enabled("receipts"))) return
        for (const [target, id] of wantRead) {
          if (id <= (sentRead.get(target) ?? 0)) continue
          sentRead.set(target, id)
          // A marker that does not move (the room was left meanwhile) is not worth a line: the next one will.
          yield* Effect.ignore(client.markRead(target, id))
        }
        yield* Effect.sleep(READ_INTERVAL)
      })
      yield* Effect.forkScoped(Effect.forever(markRead))

      /** What the transcript, the unread counts and the status line learn from an event, before it is printed. */
      const follow = (event: ChatEvent) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          switch (event.type) {
            case "message":
              unread.message(event, room)
              typing.stopped(event.room, event.from)
              if (event.room === room) readRoom(room)
              break
            case "history":
              unread.history(event.messages, room)
              if (event.room === room) readRoom(room)
              break
            case "unread":
              unread.unread(event)
              if (event.room === room) readRoom(room)
              break
            case "deleted":
              if (transcript.get(event.room, event.id)?.deleted !== true) unread.deleted(event.room, event.id)
              break
            case "typing":
              if (nameKey(event.name) !== nameKey(me)) typing.typing(event.room, event.name, now)
              break
            case "renamed":
              if (nameKey(event.from) === nameKey(me)) me = event.to
              break
            case "connected":
              me = event.welcome.name
              break
          }
          transcript.apply(event)
        })

      let closedBy: Extract<ChatEvent, { type: "closed" }> | undefined
      const onEvent = (event: ChatEvent) =>
        Effect.gen(function* () {
          if (event.type === "closed") closedBy = event
          if (event.type === "connected" && (room === undefined || !event.welcome.rooms.includes(room))) {
            room = event.welcome.rooms[0]
          }
          yield* follow(event)
          yield* showRoom()
          yield* print(TerminalFormat.formatEvent(view(), event))
        })
      const printer = yield* Effect.forkScoped(Stream.runForEach(client.events, onEvent))
      yield* showRoom()

      if (io.interactive) {
        // Typing hints expire on their own: the status line is redrawn when that changes it.
        yield* Effect.forkScoped(Effect.repeat(showRoom(), Schedule.spaced(STATUS_REFRESH)))
        // The client sends at most one hint a second per room; a server without the feature gets none.
        const hint = (line: string) =>
          room !== undefined && isChatInput(line)
            ? Effect.flatMap(enabled("typing"), (on) => (on ? Effect.ignore(client.typing(room!)) : Effect.void))
            : Effect.void
        yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(io.typed), hint)))
      }

      const sends = yield* FiberSet.make()
      /** Runs a request in the background, as a line said: typing goes on, and quitting waits for it. */
      const background = (effect: Effect.Effect<unknown, ChatClientError>) =>
        FiberSet.run(sends, Effect.catchAll(Effect.asVoid(effect), printError))
      const execute = (command: ClientCommand): Effect.Effect<void, ChatClientError> =>
        ClientCommand.$match(command, {
          Empty: () => Effect.void,
          Quit: () => Effect.void,
          Help: () => print(HELP),
          Invalid: ({ message }) => io.print(message),
          Say: ({ text }) => inRoom((room) => Effect.flatMap(client.submit(room, text), background)),
          Reply: ({ id, text }) =>
            inRoom((room) => Effect.flatMap(client.submit(room, text, { replyTo: id }), background)),
          Edit: ({ id, text }) => inRoom((room) => background(client.edit(room, id, text))),
          Delete: ({ id }) => inRoom((room) => background(client.delete(room, id))),
          React: ({ id, emoji }) =>
            inRoom((room) => {
              const on = !transcript.mine(room, id, emoji)
              // Taken as done at once, so a second /react before the answer toggles back; undone if refused.
              transcript.react(room, id, emoji, on)
              return background(
                client
                  .react(room, id, emoji, on)
                  .pipe(Effect.tapError(() => Effect.sync(() => transcript.react(room, id, emoji, !on))))
              )
            }),
          Ids: () => {
            showIds = !showIds
            return io.print(showIds ? "Message ids are shown (#12)." : "Message ids are hidden.")
          },
          Rooms: () =>
            Effect.flatMap(client.session, ({ rooms }) =>
              io.print(rooms.length === 0 ? "You are in no room." : `Your rooms: ${rooms.map(describeRoom).join(", ")}`)
            ),
          Join: ({ room: target }) =>
            Effect.tap(client.join(target), () => {
              room = target
              readRoom(target)
              return showRoom()
            }),
          Leave: ({ room: target = room }) =>
            target === undefined
              ? io.print("You are in no room.")
              : Effect.tap(client.leave(target), () =>
                  Effect.gen(function* () {
                    if (target !== room) return
                    room = (yield* client.session).rooms[0]
                    if (room !== undefined) readRoom(room)
                    yield* showRoom()
                  })
                ),
          Nick: ({ name }) =>
            Effect.tap(client.nick(name), () => {
              me = name
            }),
          Who: () =>
            inRoom((room) =>
              Effect.flatMap(client.who(room), (names) =>
                print(TerminalFormat.formatEvent(view(), { type: "members", room, names }))
              )
            ),
          Msg: ({ text, to }) => client.direct(to, text),
          History: ({ limit }) =>
            inRoom((room) =>
              Effect.flatMap(client.history(room, { limit }), (history) => {
                transcript.apply(history)
                return history.messages.length === 0
                  ? io.print(`No messages in #${room}.`)
                  : print(TerminalFormat.formatEvent(view(), history))
              })
            )
        })
      const inRoom = (f: (room: string) => Effect.Effect<unknown, ChatClientError>) =>
        room === undefined ? io.print("You are in no room: /join one first.") : Effect.asVoid(f(room))
      const describeRoom = (name: string) => {
        if (name === room) return `#${name} (here)`
        const { count } = unread.get(name)
        return count === 0 ? `#${name}` : `#${name} (${Unread.describeCount(count)} unread)`
      }

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
