/**
 * The HTTP side of the chat server: the browser client's files, `/healthz` (liveness and counts) and `/readyz`
 * (ready to serve: false while a backend such as Redis is unreachable). The browser client ships with the package;
 * its files are read once at start and served from memory.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Duration, Effect, Schedule } from "effect"
import * as Fs from "node:fs"
import { Hub } from "../backend/Hub.js"
import { Presence } from "../backend/Presence.js"
import { Readiness } from "../backend/Readiness.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { Rooms } from "../server/Rooms.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { MetricsScrape } from "../metrics/MetricsScrape.js"
import { ServerConfig } from "../server/ServerConfig.js"

export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; " +
  "connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dist/http/HttpRoutes.js → the package root
const root = new URL("../../", import.meta.url)

interface Asset {
  readonly body: Uint8Array
  readonly contentType: string
  readonly cacheControl: string
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webmanifest": "application/manifest+json"
}

const FALLBACK_PAGE = `<!doctype html><meta charset="utf-8"><title>effect-chat</title>
<h1>effect-chat</h1><p>A chat server. Connect a WebSocket to <code>/chat</code>: plain text lines, or the JSON
protocol with subprotocol <code>effect-chat.v1</code>. Terminal client: <code>node dist/client.js --url ws://HOST:PORT/chat</code>.</p>`

/** The browser client's files: html/css from `web/`, compiled scripts from `dist/web/`. */
const loadAssets = (): Map<string, Asset> => {
  const assets = new Map<string, Asset>()
  const add = (dir: URL, filter: (name: string) => boolean) => {
    let names: Array<string> = []
    try {
      names = Fs.readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) {
      const ext = name.slice(name.lastIndexOf("."))
      const contentType = CONTENT_TYPES[ext]
      if (contentType === undefined || !filter(name)) continue
      assets.set(`/${name}`, {
        body: Fs.readFileSync(new URL(name, dir)),
        contentType,
        cacheControl: ext === ".html" ? "no-cache" : "public, max-age=300"
      })
    }
  }
  add(new URL("web/", root), (name) => !name.endsWith(".ts"))
  add(new URL("dist/web/", root), (name) => name.endsWith(".js"))
  const index = assets.get("/index.html")
  assets.set(
    "/",
    index ?? {
      body: new TextEncoder().encode(FALLBACK_PAGE),
      contentType: CONTENT_TYPES[".html"]!,
      cacheControl: "no-cache"
    }
  )
  return assets
}

const securityHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

/** The routes; `draining` says the server is on its way down (`/readyz` answers 503 then). */
export const make = (draining: () => boolean) =>
  Effect.gen(function* () {
    const registry = yield* ConnectionRegistry
    const presence = yield* Presence
    const rooms = yield* Rooms
    const hub = yield* Hub
    const readiness = yield* Readiness
    const config = yield* ServerConfig
    const assets = loadAssets()

    const asset = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const found = assets.get(new URL(request.url, "http://localhost").pathname)
      if (found === undefined) return HttpServerResponse.text("Not Found", { status: 404 })
      return HttpServerResponse.uint8Array(found.body, {
        contentType: found.contentType,
        headers: { ...securityHeaders, "cache-control": found.cacheControl }
      })
    })

    const health = Effect.gen(function* () {
      const memory = process.memoryUsage()
      return HttpServerResponse.unsafeJson(
        {
          status: "ok",
          connections: registry.size(),
          users: yield* presence.users.pipe(Effect.orElseSucceed(() => -1)),
          rooms: rooms.size(),
          retainedRooms: yield* hub.roomCount,
          heapUsed: memory.heapUsed,
          rss: memory.rss
        },
        { headers: { "cache-control": "no-store" } }
      )
    })

    // Gauges of what is counted elsewhere, brought up to date as they are read.
    const gauges = Effect.gen(function* () {
      ChatMetrics.set(ChatMetrics.rooms, rooms.size())
      const users = yield* presence.users.pipe(Effect.option)
      if (users._tag === "Some") ChatMetrics.set(ChatMetrics.users, users.value)
    })
    ChatMetrics.registerAll()
    // Kept current between scrapes too, for an embedding application's own exporter.
    yield* Effect.forkScoped(Effect.repeat(gauges, Schedule.spaced(Duration.seconds(5))))
    const scraper = yield* Effect.serviceOption(MetricsScrape)
    const metrics =
      scraper._tag === "None"
        ? HttpServerResponse.text("Not Found", { status: 404 })
        : Effect.zipRight(gauges, scraper.value.scrape).pipe(
            Effect.map((text) =>
              HttpServerResponse.text(text, {
                contentType: "text/plain; version=0.0.4; charset=utf-8",
                headers: { "cache-control": "no-store" }
              })
            )
          )

    const ready = Effect.map(readiness, (backends) => {
      const ok = backends && !draining()
      return HttpServerResponse.unsafeJson(draining() ? { ready: false, draining: true } : { ready: ok }, {
        status: ok ? 200 : 503,
        headers: { "cache-control": "no-store" }
      })
    })

    return HttpRouter.empty.pipe(
      HttpRouter.get("/healthz", health),
      HttpRouter.get("/readyz", ready),
      HttpRouter.get("/metrics", metrics),
      HttpRouter.get(
        config.path as HttpRouter.PathInput,
        Effect.succeed(
          HttpServerResponse.text(`Connect a WebSocket to ${config.path}.`, {
            status: 426,
            headers: { upgrade: "websocket" }
          })
        )
      ),
      HttpRouter.get("/:file", asset),
      HttpRouter.get("/", asset)
    )
  })
