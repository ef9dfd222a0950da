/**
 * The API key check behind `ServerApi.ApiKey`: no `Authorization: Bearer` header is 401, another key 403. Keys are
 * compared as SHA-256 digests with `timingSafeEqual`, so neither the time taken nor the key's length tells a caller
 * how close a guess was.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"
import { Forbidden, Unauthorized } from "./ApiErrors.js"
import { ApiKey } from "./ServerApi.js"

const digest = (text: string) => Crypto.createHash("sha256").update(text, "utf8").digest()

/** Whether `candidate` is `key`, in time that does not depend on where they differ. */
export const sameKey = (key: Redacted.Redacted, candidate: string): boolean =>
  Crypto.timingSafeEqual(digest(Redacted.value(key)), digest(candidate))

const BEARER = /^Bearer[ \t]+(\S.*)$/i

export const layer = (key: Redacted.Redacted) => {
  const expected = digest(Redacted.value(key))
  return Layer.succeed(
    ApiKey,
    ApiKey.of({
      // The platform's bearer decoding takes whatever follows the first seven characters; the header is read again
      // here so that a missing or non-bearer header is 401 and only a wrong key is 403.
      bearer: () =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request): Effect.Effect<void, Unauthorized | Forbidden> => {
            const match = BEARER.exec(request.headers.authorization ?? "")
            if (match === null) {
              return Effect.fail(
                new Unauthorized({ error: "unauthorized", message: "send Authorization: Bearer <API key>" })
              )
            }
            return Crypto.timingSafeEqual(expected, digest(match[1]!.trim()))
              ? Effect.void
              : Effect.fail(new Forbidden({ error: "forbidden", message: "wrong API key" }))
          }
        )
    })
  )
}
