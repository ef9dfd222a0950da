/**
 * A small bot on the ChatClient service: it answers `!time` (as a reply to the question), counts the messages of
 * its room for `!count`, greets people who join, and reacts with 👍 to every message that mentions `effect` (the
 * keyword, any letter case; the third argument sets another). Reconnecting and resuming are the client's business,
 * not the bot's.
 *
 *   npm run build && node dist/scripts/example-bot.js [ws://localhost:8080/chat] [room] [keyword]
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Stream } from "effect"
import { ChatClient, type ChatClientError, type ChatEvent } from "effect-chat"

const url = process.argv[2] ?? "ws://localhost:8080/chat"
const room = process.argv[3] ?? "lobby"
const keyword = (process.argv[4] ?? "effect").toLowerCase()
const LIKE = "👍"

const bot = Effect.gen(function* () {
  const client = yield* ChatClient
  const counts = new Map<string, number>()
  const reply = (to: string, text: string) => Effect.asVoid(client.send(to, text))

  const onEvent = (event: ChatEvent): Effect.Effect<void, ChatClientError> =>
    Effect.gen(function* () {
      const { name } = yield* client.session
      switch (event.type) {
        case "message": {
          const seen = (counts.get(event.room) ?? 0) + 1
          counts.set(event.room, seen)
          if (event.from === name) return
          if (event.text.trim() === "!time")
            return yield* Effect.asVoid(client.reply(event.room, event.id, `It is ${new Date().toISOString()}.`))
          if (event.text.toLowerCase().includes(keyword)) yield* client.react(event.room, event.id, LIKE, true)
          if (event.text.trim() === "!count")
            return yield* reply(event.room, `${seen} messages in #${event.room} so far.`)
          return
        }
        case "joined":
          if (event.name !== name) yield* reply(event.room, `Welcome, ${event.name}! Try !time or !count.`)
          return
        case "reconnecting":
          return yield* Console.log(`reconnecting (attempt ${event.attempt})`)
      }
    }).pipe(Effect.catchAll((error) => Console.error(`bot: ${error.message}`)))

  yield* Console.log(`${(yield* client.session).name} is in #${room}, reacting ${LIKE} to "${keyword}"`)
  yield* Stream.runForEach(client.events, onEvent)
})

bot.pipe(
  Effect.provide(ChatClient.layer({ url, name: "bot", rooms: [room] })),
  Effect.catchAll((error) =>
    Effect.zipRight(
      Console.error(error.message),
      Effect.sync(() => void (process.exitCode = 1))
    )
  ),
  NodeRuntime.runMain
)
