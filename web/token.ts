/**
 * The bearer token (a JWT) a person signs in with: where the page finds it and what can be told about it without
 * the key. The page never verifies a token (only the server can); it only avoids sending text that cannot be one,
 * and reads the subject to know whether a new token is for the same user as the stored one.
 */

/** The server refuses longer tokens unread (see `Token` in Protocol.ts). */
const MAX_TOKEN_LENGTH = 8192
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/**
 * Takes `token=` out of a URL fragment (`#token=eyJ...`, possibly among other `&` parameters): the token, and the
 * fragment to leave in the address bar without it ("" when nothing else was there). A fragment is never sent to a
 * server, so a link that carries a token this way keeps it out of access logs and Referer headers.
 */
export const takeFragmentToken = (hash: string): { readonly token: string | undefined; readonly rest: string } => {
  const params = new URLSearchParams(hash.replace(/^#/, ""))
  if (!params.has("token")) return { token: undefined, rest: hash }
  const token = params.get("token")!.trim()
  params.delete("token")
  const rest = params.toString()
  return { token: token === "" ? undefined : token, rest: rest === "" ? "" : `#${rest}` }
}

/** What a person pasted, as a token: surrounding space and a copied `Bearer ` prefix removed. */
export const cleanToken = (pasted: string): string => pasted.trim().replace(/^Bearer\s+/i, "")

/** Whether `token` has the shape of a compact JWT (three base64url parts) the server would read. */
export const looksLikeToken = (token: string): boolean => token.length <= MAX_TOKEN_LENGTH && JWT_RE.test(token)

/** The `sub` claim, unverified; undefined when the token cannot be read. Only to compare two tokens' users. */
export const subjectOf = (token: string): string | undefined => {
  try {
    const payload = token.split(".")[1] ?? ""
    const json = atob(
      payload
        .replace(/-/g, "+")
        .replace(/_/g, "/")
        .padEnd(Math.ceil(payload.length / 4) * 4, "=")
    )
    const sub: unknown = (JSON.parse(json) as Record<string, unknown>).sub
    return typeof sub === "string" ? sub : undefined
  } catch {
    return undefined
  }
}
