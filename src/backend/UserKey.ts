/**
 * The key a user is known by in the presence and name backends: one per user for authenticated connections
 * (`u:<sub>`), and a guest's session id otherwise. Session ids are UUIDs, so the prefix never collides with one.
 * A user key counts connections (tabs, devices); a guest key is one session.
 */

export const userKey = (user: string): string => `u:${user}`

export const isUserKey = (key: string): boolean => key.startsWith("u:")

/** The user (`sub`) whose session `session` is (`<uuid>.<sub in base64url>`), or undefined for a guest's. */
export const ownerOf = (session: string): string | undefined => {
  const dot = session.indexOf(".")
  return dot < 0 ? undefined : Buffer.from(session.slice(dot + 1), "base64url").toString()
}

/** The key a session's name is owned under: its user's key, or the session itself for a guest. */
export const ownerKeyOf = (session: string): string => {
  const user = ownerOf(session)
  return user === undefined ? session : userKey(user)
}
