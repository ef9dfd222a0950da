/**
 * An application that embeds the chat: its own HttpRouter routes (a toy login that sets a session cookie), the
 * chat's routes and /chat on the same port, a connect hook that signs users in from the app's cookie instead of a
 * JWT, and a word filter. The README shows this file; test/Embedding.test.ts runs it.
 *
 *   npm run build && node dist/scripts/example-embedded.js [port]
 *   open http://localhost:8080/login?name=carol, then http://localhost:8080/
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Option } from "effect"
import { ChatHooks, ChatServer, HookRefusal, type Hooks, Protocol, ServerConfig } from "effect-chat"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

// The app's own sessions: cookie value → user. A real application keeps these in its database.
const sessions = new Map<string, { readonly user: string; readonly name: string }>()

const login = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const name = new URL(request.url, "http://app").searchParams.get("name") ?? ""
  if (!Protocol.isValidName(name)) {
    return HttpServerResponse.unsafeJson({ error: "give ?name= a valid chat name" }, { status: 400 })
  }
  const sid = Crypto.randomUUID()
  sessions.set(sid, { user: `app-user-${name.toLowerCase()}`, name })
  return HttpServerResponse.text(`signed in as ${name}`).pipe(
    HttpServerResponse.unsafeSetCookie("sid", sid, { httpOnly: true, sameSite: "strict", path: "/" })
  )
})

/** Signs chat connections in from the app's session cookie; without one the connection is refused (4001). */
const cookieSignIn: Hooks = {
  connect: (request) =>
    Effect.sync(() => {
      const sid = /(?:^|;\s*)sid=([^;]+)/.exec(String(request.headers.cookie ?? ""))?.[1]
      return Option.fromNullable(sid === undefined ? undefined : sessions.get(sid))
    })
}

/** Refuses spam outright and masks milder words, before the message gets an id. */
const wordFilter: Hooks = {
  beforeSend: ({ text }) =>
    /\bspam\b/i.test(text)
      ? Effect.fail(new HookRefusal({ code: "forbidden", message: "this chat does not take spam" }))
      : Effect.succeed(text.replace(/\b(darn|heck)\b/gi, (word) => "*".repeat(word.length)))
}

const App = Layer.scopedDiscard(
  Effect.gen(function* () {
    const chat = yield* ChatServer
    const { port } = yield* ServerConfig
    // The app's routes first; everything else (/, the browser client, /healthz) is the chat's.
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/login", login),
      Effect.catchTag("RouteNotFound", () => chat.httpApp)
    )
    const server = Http.createServer(yield* NodeHttpServer.makeHandler(app))
    server.on("upgrade", chat.handleUpgrade)
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(port, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.zipRight(
          chat.shutdown,
          Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
        )
    )
    yield* Console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  })
)

App.pipe(
  Layer.provide(ChatServer.layerMemory),
  Layer.provide(ChatHooks.layer(cookieSignIn, wordFilter)),
  Layer.provide(ServerConfig.layer({ port: Number(process.argv[2] ?? 8080), auth: { mode: "required" } })),
  Layer.launch,
  NodeRuntime.runMain
)
