#!/usr/bin/env node
/**
 * `effect-chat`: the terminal chat client.
 *
 *   node dist/client.js --url ws://HOST:8080/chat [--name NAME] [--room ROOM]
 *
 * A failure to connect at start, or the server ending the session, is one line on stderr and exit code 1.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Option } from "effect"
import { ChatClient } from "./client/ChatClient.js"
import * as TerminalUi from "./terminal/TerminalUi.js"

const url = Options.text("url").pipe(
  Options.withDefault("ws://localhost:8080/chat"),
  Options.withDescription("WebSocket URL of the chat endpoint")
)
const name = Options.text("name").pipe(Options.optional, Options.withDescription("the name to ask for"))
const room = Options.text("room").pipe(
  Options.optional,
  Options.withDescription("the room to start in (default lobby)")
)

const chat = Command.make("effect-chat", { url, name, room }, ({ name, room, url }) =>
  TerminalUi.run({ room: Option.getOrUndefined(room) }).pipe(
    Effect.provide(
      ChatClient.layer({
        url,
        name: Option.getOrUndefined(name),
        rooms: Option.match(room, { onNone: () => undefined, onSome: (room) => [room] })
      })
    ),
    Effect.catchTag("ChatClientError", (error) =>
      Console.error(error.message).pipe(Effect.zipRight(Effect.sync(() => void (process.exitCode = 1))))
    )
  )
).pipe(Command.withDescription("Chat on an effect-chat server from the terminal."))

const cli = Command.run(chat, { name: "effect-chat", version: "0.1.0" })

cli(process.argv).pipe(
  // @effect/cli has already printed what was wrong with the arguments.
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = 2))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
