/**
 * The key a user is known by in the presence and name backends: one per user for authenticated connections
 * (`u:<sub>`), and a guest's session id otherwise. Session ids are UUIDs, so the prefix never collides with one.
 * A user key counts connections (tabs, devices); a guest key is one session.
 */

export const userKey = (user: string): string => `u:${user}`

export const isUserKey = (key: string): boolean => key.startsWith("u:")
