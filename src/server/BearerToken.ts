/**
 * The token of an `Authorization: Bearer` header (RFC 6750), one of the three ways a client presents a token
 * (`ConnectRequest.token`). It sits in the core beside `ConnectRequest`, not in `auth/`, because the transport
 * fills the request in and may not depend on `auth/`.
 */
import type { ConnectRequest } from "./ChatHooks.js"

// RFC 6750's b64token after the scheme, which is case-insensitive (RFC 9110); nothing else on the line.
const BEARER_RE = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/** The bearer token of these headers, or undefined when there is none or the header is not a single bearer one. */
export const bearerToken = (headers: ConnectRequest["headers"]): string | undefined => {
  // Node lowercases header names; a record built by hand may not.
  const name =
    "authorization" in headers
      ? "authorization"
      : Object.keys(headers).find((key) => key.toLowerCase() === "authorization")
  const value = name === undefined ? undefined : headers[name]
  const single = typeof value === "string" ? value : value?.length === 1 ? value[0] : undefined
  return single === undefined ? undefined : BEARER_RE.exec(single)?.[1]
}
