/**
 * `/admin`: the admin page's three files, read once at start and served from memory with the chat page's CSP (no
 * inline script or style; the page renders everything as text). The page holds no secret: it asks for the API key
 * and calls `/api/v1/` with it, so it is served whether or not the API is on (it says so when it is off).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { CONTENT_SECURITY_POLICY } from "./HttpRoutes.js"

// dist/http/AdminPage.js → the package root
const root = new URL("../../", import.meta.url)

const FILES = [
  { path: "/admin", file: "web-admin/admin.html", contentType: "text/html; charset=utf-8" },
  { path: "/admin.css", file: "web-admin/admin.css", contentType: "text/css; charset=utf-8" },
  { path: "/admin.js", file: "dist/web/admin.js", contentType: "text/javascript; charset=utf-8" }
] as const

const headers = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Always the current page and script: an old page against a newer API is a confusing failure.
  "cache-control": "no-cache"
}

/** Adds the page's routes to `router`; a file missing from the package (not built) is a 404, not a crash. */
export const routes = <E, R>(router: HttpRouter.HttpRouter<E, R>): HttpRouter.HttpRouter<E, R> =>
  FILES.reduce((current, { contentType, file, path }) => {
    let body: Uint8Array | undefined
    try {
      body = Fs.readFileSync(new URL(file, root))
    } catch {
      body = undefined
    }
    const response =
      body === undefined
        ? HttpServerResponse.text("Not Found (run npm run build)", { status: 404 })
        : HttpServerResponse.uint8Array(body, { contentType, headers })
    return HttpRouter.get(current, path, Effect.succeed(response))
  }, router)
