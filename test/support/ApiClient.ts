/**
 * Calls to the server API for tests: `fetch` against a test server's address, with or without the key, answering
 * the status and the parsed JSON body (or `undefined` when the body is not JSON, which the tests treat as a failure).
 */
import { Effect } from "effect"
import type * as ChatHttpServer from "../../src/http/ChatHttpServer.js"

export const KEY = "test-api-key-0123456789"

export interface Answer {
  readonly status: number
  readonly body: any
  readonly contentType: string
}

export interface CallOptions {
  readonly body?: unknown
  /** A raw body, sent as it is (malformed JSON, a huge one). */
  readonly raw?: string
  /** `undefined` sends no Authorization header. */
  readonly key?: string | undefined
  readonly headers?: Record<string, string>
}

export const call = (
  address: typeof ChatHttpServer.ServerAddress.Service,
  method: string,
  path: string,
  options: CallOptions = { key: KEY }
): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`
    const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
    if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json"
    const response = await fetch(`${address.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    return { status: response.status, body: parsed, contentType: response.headers.get("content-type") ?? "" }
  })

/** With the key, as most calls are. */
export const withKey = (
  address: typeof ChatHttpServer.ServerAddress.Service,
  method: string,
  path: string,
  body?: unknown
) => call(address, method, path, body === undefined ? { key: KEY } : { key: KEY, body })
