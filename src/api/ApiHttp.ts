/**
 * The server API as an `HttpApp` for the chat server's router: `/api/v1/openapi.json` (generated from `ServerApi`,
 * no key), a 404 for everything else while no key is configured, and otherwise the `HttpApi` with the limits bad
 * input meets before any handler — a body above `MAX_BODY_BYTES` (413), a body that is not JSON (415), malformed
 * JSON or wrong types (400), an unknown path (404) — each answered as `{"error", "message"}`, never a 500.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Cause, Effect, Layer, Option, type Redacted } from "effect"
import { ServerConfig } from "../server/ServerConfig.js"
import * as ApiHandlers from "./ApiHandlers.js"
import * as ApiKeyAuth from "./ApiKeyAuth.js"
import type * as Moderation from "./Moderation.js"
import { PREFIX, ServerApi } from "./ServerApi.js"

/** The largest request body the API reads: a publish is at most 4,000 characters of text and two names. */
export const MAX_BODY_BYTES = 64 * 1024

const noStore = { "cache-control": "no-store" }

/** An error answer built outside the `HttpApi`'s own encoder, in the same shape. */
export const errorResponse = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status, headers: noStore })

const tooLarge = errorResponse(413, "payload_too_large", `the body is larger than ${MAX_BODY_BYTES} bytes`)

const issuesOf = (error: {
  readonly issues?: ReadonlyArray<{ readonly path: ReadonlyArray<unknown>; readonly message: string }>
}) =>
  (error.issues ?? [])
    .slice(0, 3)
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")
    .slice(0, 300)

const isTagged = (u: unknown, tag: string): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === tag

/**
 * Inside the `HttpApi`, before its own error encoder: the failures that are the caller's, not the server's. A body
 * that cannot be read or parsed is a defect of the platform's JSON decoding (`RequestError`), made a 400 or 413 here.
 */
const callerErrors = (app: HttpApp.Default): HttpApp.Default =>
  Effect.catchAllCause(app, (cause) => {
    const failure = Option.getOrUndefined(Cause.failureOption(cause))
    if (isTagged(failure, "HttpApiDecodeError")) {
      return Effect.succeed(errorResponse(400, "invalid_request", issuesOf(failure) || "the request does not fit"))
    }
    if (isTagged(failure, "RouteNotFound")) {
      return Effect.succeed(errorResponse(404, "not_found", "no such endpoint; see /api/v1/openapi.json"))
    }
    const defect = Option.getOrUndefined(Cause.dieOption(cause))
    if (isTagged(defect, "RequestError") && defect.reason === "Decode") {
      const reason = defect.cause instanceof Error ? defect.cause.message : ""
      return Effect.succeed(
        reason === "maxBytes exceeded" ? tooLarge : errorResponse(400, "invalid_json", "the body is not valid JSON")
      )
    }
    return Effect.failCause(cause)
  })

/** The `HttpApi` over the core services in context, checked against `key`. */
const build = (key: Redacted.Redacted, disconnect: Moderation.DisconnectKey) =>
  Effect.gen(function* () {
    const api = HttpApiBuilder.api(ServerApi).pipe(
      Layer.provide(ApiHandlers.layer(disconnect)),
      Layer.provide(ApiKeyAuth.layer(key))
    )
    const context = yield* Layer.build(
      Layer.mergeAll(api, HttpApiBuilder.middleware(callerErrors)).pipe(
        Layer.provideMerge(HttpApiBuilder.Router.Live),
        Layer.provideMerge(HttpApiBuilder.Middleware.layer),
        Layer.provideMerge(NodeHttpServer.layerContext)
      )
    )
    const app = yield* HttpApiBuilder.httpApp.pipe(Effect.provide(context))
    return app.pipe(Effect.provide(context))
  })

const isJson = (contentType: string | undefined) =>
  contentType === undefined ||
  contentType.trim() === "" ||
  /^application\/([\w.+-]*\+)?json\b/i.test(contentType.trim())

export const make = (disconnect: Moderation.DisconnectKey) =>
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const document = HttpServerResponse.unsafeJson(OpenApi.fromApi(ServerApi), { headers: noStore })
    const api = config.apiKey === undefined ? undefined : yield* build(config.apiKey, disconnect)

    return Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://localhost").pathname
      if (path === `${PREFIX}/openapi.json` && (request.method === "GET" || request.method === "HEAD")) return document
      if (path !== PREFIX && !path.startsWith(`${PREFIX}/`)) return errorResponse(404, "not_found", "no such endpoint")
      if (api === undefined) {
        return errorResponse(404, "api_disabled", "the server API is off: start the server with --api-key")
      }
      // Refused before a byte of it is read. A chunked body has no length to check: it is cut at the bound, and the
      // platform's reader then drops the connection instead of answering.
      const length = Number(request.headers["content-length"] ?? 0)
      if (length > MAX_BODY_BYTES) return tooLarge
      if (request.method === "POST" && !isJson(request.headers["content-type"])) {
        return errorResponse(415, "unsupported_media_type", "send the body as application/json")
      }
      return yield* api.pipe(
        HttpIncomingMessage.withMaxBodySize(Option.some(MAX_BODY_BYTES)),
        Effect.map(HttpServerResponse.setHeader("cache-control", "no-store")),
        // Whatever is left is the server's fault, not the caller's: logged, and still answered in the API's shape.
        Effect.catchAllCause((cause) =>
          Effect.as(
            Effect.logError("server API request failed", cause),
            errorResponse(500, "internal", "the server failed to answer; see its log")
          )
        )
      )
    })
  })
