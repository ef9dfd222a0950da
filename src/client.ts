#!/usr/bin/env node
/**
 * `effect-chat`: the terminal chat client, composed of its flags, a `ChatClient` layer and the terminal UI.
 *
 *   node dist/client.js [--url ws://HOST:8080/chat] [--name NAME] [--room ROOM] [--token JWT] [--show-ids]
 *
 * Each flag falls back to an environment variable: CHAT_URL, CHAT_NAME, CHAT_ROOM, CHAT_TOKEN (set but empty counts
 * as unset). Exit codes: 0 after /quit, end of input or Ctrl-C; 2 for wrong usage; 1 when the first connection
 * fails or the server ends the session; 3 when the server refuses the token or it expired (4001); 4 when the server
 * removed the user (4003). Every failure is one line on stderr.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, ConfigError, Console, Data, Effect, Either, Option, Redacted } from "effect"
import { ChatClient } from "./client/ChatClient.js"
import * as Protocol from "./protocol/Protocol.js"
import { NAME_RULE, ROOM_RULE } from "./terminal/ClientCommand.js"
import * as TerminalUi from "./terminal/TerminalUi.js"

/** A flag (or the environment variable behind it) that cannot work: exit code 2, before connecting. */
class UsageError extends Data.TaggedError("UsageError")<{
  readonly reason: "Url" | "Name" | "Room"
  readonly message: string
}> {}

/** The environment variable a flag falls back to; set but empty counts as unset, as with NO_COLOR. */
const env = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((value) =>
      value === "" ? Either.left(ConfigError.MissingData([name], `${name} is empty`)) : Either.right(value)
    )
  )

const DEFAULT_URL = "ws://localhost:8080/chat"

const url = Options.text("url").pipe(
  Options.withFallbackConfig(env("CHAT_URL")),
  Options.withDefault(DEFAULT_URL),
  Options.withPseudoName("URL"),
  Options.withDescription(
    `WebSocket URL of the chat endpoint (default ${DEFAULT_URL}). Environment variable: CHAT_URL.`
  )
)
const name = Options.text("name").pipe(
  Options.withFallbackConfig(env("CHAT_NAME")),
  Options.optional,
  Options.withPseudoName("NAME"),
  Options.withDescription(`The name to ask for. Environment variable: CHAT_NAME. Allowed: ${NAME_RULE}.`)
)
const room = Options.text("room").pipe(
  Options.withFallbackConfig(env("CHAT_ROOM")),
  Options.optional,
  Options.withPseudoName("ROOM"),
  Options.withDescription(
    `The room to start in (default lobby). Environment variable: CHAT_ROOM. Allowed: ${ROOM_RULE}`
  )
)

const token = Options.redacted("token").pipe(
  Options.withFallbackConfig(Config.redacted("CHAT_TOKEN")),
  Options.optional,
  Options.withPseudoName("JWT"),
  Options.withDescription(
    "A token for servers that sign users in (--auth). Environment variable: CHAT_TOKEN (preferred: flags show in ps)."
  )
)

const showIds = Options.boolean("show-ids").pipe(
  Options.withDescription("Start each message with its id (#12), for /reply, /edit, /delete and /react; /ids toggles.")
)

const usage = (reason: UsageError["reason"], message: string) =>
  Effect.fail(new UsageError({ reason, message: `${message}; see --help` }))

const checkUrl = (url: string) => {
  const protocol = URL.canParse(url) ? new URL(url).protocol : undefined
  // `ws` takes http(s) URLs for ws(s) ones.
  return protocol === "ws:" || protocol === "wss:" || protocol === "http:" || protocol === "https:"
    ? Effect.succeed(url)
    : usage("Url", `not a WebSocket URL: ${url} (for example ws://localhost:8080/chat)`)
}

const checkName = Option.match({
  onNone: () => Effect.succeed(undefined),
  onSome: (name: string) =>
    Protocol.isValidName(name) ? Effect.succeed(name) : usage("Name", `not a valid name: ${name} (${NAME_RULE})`)
})

const checkRoom = Option.match({
  onNone: () => Effect.succeed(undefined),
  onSome: (room: string) =>
    Protocol.isValidRoom(room) ? Effect.succeed(room) : usage("Room", `not a valid room: ${room} (${ROOM_RULE})`)
})

const chat = Command.make("effect-chat", { url, name, room, token, showIds }, (flags) =>
  Effect.gen(function* () {
    const url = yield* checkUrl(flags.url)
    const name = yield* checkName(flags.name)
    const room = yield* checkRoom(flags.room)
    yield* TerminalUi.run({ room, showIds: flags.showIds }).pipe(
      Effect.provide(
        ChatClient.layer({
          url,
          name,
          rooms: room === undefined ? undefined : [room],
          token: Option.getOrUndefined(Option.map(flags.token, Redacted.value))
        })
      )
    )
  })
).pipe(Command.withDescription("Chat on an effect-chat server from the terminal."))

const exitWith = (code: 1 | 2 | 3 | 4, line?: string) =>
  Effect.zipRight(
    line === undefined ? Effect.void : Console.error(line),
    Effect.sync(() => void (process.exitCode = code))
  )

Command.run(chat, { name: "effect-chat", version: "0.1.0" })(process.argv).pipe(
  // @effect/cli has already printed what was wrong with the arguments.
  Effect.catchIf(ValidationError.isValidationError, () => exitWith(2)),
  Effect.catchTags({
    UsageError: (error) => exitWith(2, error.message),
    ChatClientError: (error) =>
      error.closeCode === Protocol.CloseCode.unauthorized
        ? exitWith(3, `${error.message}; sign in again with a valid token (--token or CHAT_TOKEN)`)
        : error.closeCode === Protocol.CloseCode.removed
          ? exitWith(4, `${error.message}; the server removed this user: do not reconnect with the same token`)
          : exitWith(1, error.message)
  }),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
