import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Option, TestClock } from "effect"
import { type JWTPayload, SignJWT, exportJWK } from "jose"
import * as ChildProcess from "node:child_process"
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import { bearerToken } from "../src/server/BearerToken.js"
import { ChatHooks, type ConnectRequest, HookRefusal } from "../src/server/ChatHooks.js"

const SECRET = "a development secret of at least 32 bytes"
/** The TestClock's time in these tests, in seconds: tokens are issued around it. */
const NOW = 1_900_000_000
const atNow = TestClock.setTime(NOW * 1000)
const HOUR_LATER = NOW + 3600

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
const pem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }).toString()
const jwks = async (...keys: ReadonlyArray<{ readonly key: KeyObject; readonly kid?: string }>) =>
  JSON.stringify({ keys: await Promise.all(keys.map(async ({ key, kid }) => ({ ...(await exportJWK(key)), kid }))) })

// A self-signed P-256 certificate and its private key, made for these tests only (openssl req -x509 ... -days 36500).
const CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUdgQMesEGs3UA5tAJVo8sqtYSMV8wCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZWZmZWN0LWNoYXQgdGVzdDAgFw0yNjEyMDMxMDI5MDNaGA8y
MTI2MTEwOTEwMjkwM1owGzEZMBcGA1UEAwwQZWZmZWN0LWNoYXQgdGVzdDBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABNHx2RpkHTLmQzxVd7u7Jcz8pMX5rcePEwrh
Ja0W5Tin19YK5j0bnExJJZ8kSA9IAaydxCQ9FsRmlNQ0iE9aDDajUzBRMB0GA1Ud
DgQWBBSvW8tOIsU0MVXjGxHQb6iodqlxGDAfBgNVHSMEGDAWgBSvW8tOIsU0MVXj
GxHQb6iodqlxGDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDi
AchgkFVSeXmKwbuXXqD+3qQPC57PuT4v/PM9hEpQqgIgC/zSf4Z+t5+pPknUUVOH
1jlBAxdNOL03IoKCbdBH2UM=
-----END CERTIFICATE-----`
const CERTIFICATE_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiHXhHwV2Q5jhSY26
eNtujIRi5ZcZ9HRBXpaCwz55o/yhRANCAATR8dkaZB0y5kM8VXe7uyXM/KTF+a3H
jxMK4SWtFuU4p9fWCuY9G5xMSSWfJEgPSAGsncQkPRbEZpTUNIhPWgw2
-----END PRIVATE KEY-----`

type SigningKey = Parameters<SignJWT["sign"]>[0]
const secretKey = (secret: string) => new TextEncoder().encode(secret)

/** Claims of any shape, wrong ones included: what a token may carry is what the verifier must survive. */
const sign = (
  payload: Readonly<Record<string, unknown>>,
  key: SigningKey = secretKey(SECRET),
  alg = "HS256",
  kid?: string
) =>
  Effect.promise(() =>
    new SignJWT(payload as JWTPayload).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key)
  )

/** An unsecured JWT (RFC 7519 §6), built by hand: jose will not sign one. */
const unsecured = (payload: JWTPayload) =>
  `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.` +
  `${Buffer.from(JSON.stringify(payload)).toString("base64url")}.`

const verifier = (settings: JwtVerifier.JwtSettings = { secret: SECRET }) => Effect.orDie(JwtVerifier.make(settings))

/** Why the token was rejected; an accepted one shows as `{ accepted: identity }`, so an assertion says what passed. */
const rejection = (verify: JwtVerifier.Verify, token: string) =>
  Effect.map(
    Effect.either(verify(token)),
    Either.match({
      onLeft: ({ _tag, reason, expired }): unknown => ({ _tag, reason, expired }),
      onRight: (identity): unknown => ({ accepted: identity })
    })
  )
const rejected = (reason: string, expired = false) => ({ _tag: "TokenRejected", reason, expired })

const configError = (settings: JwtVerifier.JwtSettings) =>
  Effect.map(
    Effect.either(JwtVerifier.make(settings)),
    Either.match({ onLeft: ({ _tag, message }): unknown => ({ _tag, message }), onRight: (): unknown => "accepted" })
  )
const misconfigured = (message: string) => ({ _tag: "AuthConfigError", message })

describe("JwtVerifier with a secret (HS256)", () => {
  it.effect("a valid token is the identity its claims say", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      const token = yield* sign({ sub: "u-1", name: "Alice", rooms: ["general", "team-*"], exp: HOUR_LATER })
      expect(yield* verify(token)).toEqual({
        user: "u-1",
        name: "Alice",
        rooms: ["general", "team-*"],
        expiresAt: HOUR_LATER * 1000
      })
    })
  )

  it.effect("without a name claim the name is sub, and without rooms every room is open", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      const identity = yield* verify(yield* sign({ sub: "bob", exp: HOUR_LATER }))
      expect(identity).toEqual({ user: "bob", name: "bob", expiresAt: HOUR_LATER * 1000 })
      expect("rooms" in identity).toBe(false)
    })
  )

  it.effect("a sub that is not a name needs a name claim", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      expect(yield* rejection(verify, yield* sign({ sub: "auth0|12345", exp: HOUR_LATER }))).toEqual(
        rejected("the token has no name claim and its sub is not a valid name")
      )
      expect(yield* rejection(verify, yield* sign({ sub: "user42", exp: HOUR_LATER }))).toEqual(
        rejected("the token has no name claim and its sub is not a valid name")
      )
      const identity = yield* verify(yield* sign({ sub: "auth0|12345", name: "carol", exp: HOUR_LATER }))
      expect([identity.user, identity.name]).toEqual(["auth0|12345", "carol"])
    })
  )

  it.effect("an expired token is rejected as expired, after the clock tolerance", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      expect(yield* rejection(verify, yield* sign({ sub: "alice", exp: NOW - 10 }))).toEqual(
        rejected("token expired", true)
      )
      // within the 5 s tolerance for clock skew
      expect((yield* verify(yield* sign({ sub: "alice", exp: NOW - 2 }))).user).toBe("alice")
      const token = yield* sign({ sub: "alice", exp: NOW + 60 })
      expect((yield* verify(token)).user).toBe("alice")
      yield* TestClock.adjust("66 seconds")
      expect(yield* rejection(verify, token)).toEqual(rejected("token expired", true))
    })
  )

  it.effect("a token that is not yet valid (nbf) is rejected, not as expired", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      const token = yield* sign({ sub: "alice", nbf: NOW + 60, exp: HOUR_LATER })
      expect(yield* rejection(verify, token)).toEqual(rejected("token not yet valid"))
      yield* TestClock.adjust("1 minute")
      expect((yield* verify(token)).user).toBe("alice")
    })
  )

  it.effect("a token signed with another secret has an invalid signature", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      const token = yield* sign({ sub: "alice", exp: HOUR_LATER }, secretKey("another secret of at least 32 bytes!"))
      expect(yield* rejection(verify, token)).toEqual(rejected("invalid signature"))
      // a payload swapped under a valid signature
      const [header, , signature] = token.split(".")
      const forged = `${header}.${Buffer.from(JSON.stringify({ sub: "root", exp: HOUR_LATER })).toString("base64url")}`
      expect(yield* rejection(verify, `${forged}.${signature}`)).toEqual(rejected("invalid signature"))
    })
  )

  it.effect("alg none and algorithms other than HS256 are rejected", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      expect(yield* rejection(verify, unsecured({ sub: "alice", exp: HOUR_LATER }))).toEqual(
        rejected("algorithm not allowed")
      )
      const hs384 = yield* sign({ sub: "alice", exp: HOUR_LATER }, secretKey(SECRET), "HS384")
      expect(yield* rejection(verify, hs384)).toEqual(rejected("algorithm not allowed"))
    })
  )

  it.effect("a malformed or oversized token is rejected without echoing it", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      for (const token of ["", "not-a-token", "a.b.c", "a.b", "e30.e30.e30.e30"]) {
        expect(yield* rejection(verify, token), token).toEqual(rejected("malformed token"))
      }
      expect(yield* rejection(verify, `${"a".repeat(8192)}.b.c`)).toEqual(rejected("token too long"))
    })
  )

  it.effect("sub and exp are required, and sub is a non-empty string of at most 256 characters", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      expect(yield* rejection(verify, yield* sign({ name: "alice", exp: HOUR_LATER }))).toEqual(
        rejected("the token has no sub claim")
      )
      expect(yield* rejection(verify, yield* sign({ sub: "alice" }))).toEqual(rejected("the token has no exp claim"))
      expect(yield* rejection(verify, yield* sign({ sub: "alice", exp: "tomorrow" }))).toEqual(
        rejected("invalid exp claim")
      )
      for (const sub of ["", "x".repeat(257), 42]) {
        expect(yield* rejection(verify, yield* sign({ sub, name: "alice", exp: HOUR_LATER }))).toEqual(
          rejected("invalid sub claim")
        )
      }
      expect((yield* verify(yield* sign({ sub: "x".repeat(256), name: "alice", exp: HOUR_LATER }))).user).toHaveLength(
        256
      )
    })
  )

  it.effect("a name claim must be a valid, unreserved name", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      for (const name of ["user42", "USER7", "has space", "", "x".repeat(33), 7, null, ["alice"]]) {
        expect(
          yield* rejection(verify, yield* sign({ sub: "alice", name, exp: HOUR_LATER })),
          JSON.stringify(name)
        ).toEqual(rejected("invalid name claim"))
      }
    })
  )

  it.effect("rooms is a list of at most 100 room patterns", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier()
      const bad: ReadonlyArray<unknown> = [
        "general",
        ["general", "bad room"],
        ["**"],
        ["team*-x"],
        [""],
        [1],
        null,
        Array.from({ length: 101 }, (_, i) => `room-${i}`)
      ]
      for (const rooms of bad) {
        expect(
          yield* rejection(verify, yield* sign({ sub: "alice", rooms, exp: HOUR_LATER })),
          JSON.stringify(rooms).slice(0, 40)
        ).toEqual(rejected("invalid rooms claim"))
      }
      const good = [[], ["*"], ["team-*", "general"], Array.from({ length: 100 }, (_, i) => `room-${i}`)]
      for (const rooms of good) {
        expect((yield* verify(yield* sign({ sub: "alice", rooms, exp: HOUR_LATER }))).rooms).toEqual(rooms)
      }
    })
  )

  it.effect("issuer and audience are checked when set", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier({ secret: SECRET, issuer: "https://id.example", audience: "effect-chat" })
      const claims = { sub: "alice", exp: HOUR_LATER, iss: "https://id.example", aud: "effect-chat" }
      expect((yield* verify(yield* sign(claims))).user).toBe("alice")
      expect((yield* verify(yield* sign({ ...claims, aud: ["other", "effect-chat"] }))).user).toBe("alice")
      expect(yield* rejection(verify, yield* sign({ ...claims, iss: "https://evil.example" }))).toEqual(
        rejected("wrong issuer")
      )
      expect(yield* rejection(verify, yield* sign({ ...claims, aud: "other" }))).toEqual(rejected("wrong audience"))
      const { iss: _iss, ...withoutIssuer } = claims
      expect(yield* rejection(verify, yield* sign(withoutIssuer))).toEqual(rejected("the token has no iss claim"))
      const { aud: _aud, ...withoutAudience } = claims
      expect(yield* rejection(verify, yield* sign(withoutAudience))).toEqual(rejected("the token has no aud claim"))
      // without the settings, the claims are not looked at
      expect((yield* (yield* verifier())(yield* sign({ ...claims, iss: "anyone", aud: "any" }))).user).toBe("alice")
    })
  )
})

describe("JwtVerifier with a public key", () => {
  const claims = { sub: "alice", exp: HOUR_LATER }

  it.effect("RS256 (and PS256) with an RSA PEM key", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier({ publicKey: pem(rsa.publicKey) })
      expect(yield* verify(yield* sign({ ...claims, name: "Alice" }, rsa.privateKey, "RS256"))).toEqual({
        user: "alice",
        name: "Alice",
        expiresAt: HOUR_LATER * 1000
      })
      expect((yield* verify(yield* sign(claims, rsa.privateKey, "PS256"))).user).toBe("alice")
      expect(yield* rejection(verify, yield* sign(claims, otherRsa.privateKey, "RS256"))).toEqual(
        rejected("invalid signature")
      )
      expect(yield* rejection(verify, yield* sign(claims, ec.privateKey, "ES256"))).toEqual(
        rejected("algorithm not allowed")
      )
    })
  )

  it.effect("ES256 with an EC P-256 PEM key, or an X.509 certificate", () =>
    Effect.gen(function* () {
      yield* atNow
      const verify = yield* verifier({ publicKey: pem(ec.publicKey) })
      expect((yield* verify(yield* sign(claims, ec.privateKey, "ES256"))).user).toBe("alice")
      const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
      expect(yield* rejection(verify, yield* sign(claims, other.privateKey, "ES256"))).toEqual(
        rejected("invalid signature")
      )
      expect(yield* rejection(verify, yield* sign(claims, rsa.privateKey, "RS256"))).toEqual(
        rejected("algorithm not allowed")
      )
      const fromCertificate = yield* verifier({ publicKey: `${CERTIFICATE}\n` })
      expect((yield* fromCertificate(yield* sign(claims, createPrivateKey(CERTIFICATE_KEY), "ES256"))).user).toBe(
        "alice"
      )
      expect(yield* rejection(fromCertificate, yield* sign(claims, ec.privateKey, "ES256"))).toEqual(
        rejected("invalid signature")
      )
    })
  )

  it.effect("a JWKS picks the key by kid, or tries each when the token has none", () =>
    Effect.gen(function* () {
      yield* atNow
      const keySet = yield* Effect.promise(() =>
        jwks({ key: rsa.publicKey, kid: "rsa-1" }, { key: otherRsa.publicKey, kid: "rsa-2" }, { key: ec.publicKey })
      )
      const verify = yield* verifier({ publicKey: keySet })
      expect((yield* verify(yield* sign(claims, rsa.privateKey, "RS256", "rsa-1"))).user).toBe("alice")
      expect((yield* verify(yield* sign(claims, otherRsa.privateKey, "RS256", "rsa-2"))).user).toBe("alice")
      expect((yield* verify(yield* sign(claims, otherRsa.privateKey, "RS256"))).user).toBe("alice")
      expect((yield* verify(yield* sign(claims, ec.privateKey, "ES256"))).user).toBe("alice")
      expect(yield* rejection(verify, yield* sign(claims, otherRsa.privateKey, "RS256", "rsa-1"))).toEqual(
        rejected("invalid signature")
      )
      expect(yield* rejection(verify, yield* sign(claims, rsa.privateKey, "RS256", "rsa-9"))).toEqual(
        rejected("no key matches the token")
      )
      const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 })
      expect(yield* rejection(verify, yield* sign(claims, stranger.privateKey, "RS256"))).toEqual(
        rejected("invalid signature")
      )
    })
  )

  it.effect("HS256 and alg none are never accepted with a public key", () =>
    Effect.gen(function* () {
      yield* atNow
      const publicPem = pem(rsa.publicKey)
      const keySet = yield* Effect.promise(() => jwks({ key: rsa.publicKey }))
      for (const publicKey of [publicPem, keySet]) {
        const verify = yield* verifier({ publicKey })
        // the classic confusion: an HMAC "signed" with the public key's text
        expect(yield* rejection(verify, yield* sign(claims, secretKey(publicPem)))).toEqual(
          rejected("algorithm not allowed")
        )
        expect(yield* rejection(verify, yield* sign(claims))).toEqual(rejected("algorithm not allowed"))
        expect(yield* rejection(verify, unsecured(claims))).toEqual(rejected("algorithm not allowed"))
      }
    })
  )
})

describe("JwtVerifier configuration", () => {
  it.effect("needs exactly one of a secret and a public key", () =>
    Effect.gen(function* () {
      expect(yield* configError({})).toEqual(misconfigured("set a JWT secret (HS256) or a public key (RS256, ES256)"))
      expect(yield* configError({ secret: SECRET, publicKey: pem(rsa.publicKey) })).toEqual(
        misconfigured("set either a JWT secret or a public key, not both")
      )
      expect(yield* configError({ secret: "" })).toEqual(misconfigured("the JWT secret is empty"))
      expect(yield* configError({ publicKey: " \n" })).toEqual(misconfigured("the public key file is empty"))
      expect(yield* configError({ secret: SECRET, issuer: "" })).toEqual(misconfigured("the JWT issuer is empty"))
      expect(yield* configError({ secret: SECRET, audience: "" })).toEqual(misconfigured("the JWT audience is empty"))
    })
  )

  it.effect("refuses a PEM that does not parse, a private key, and unsupported key types", () =>
    Effect.gen(function* () {
      const notPem = misconfigured("the public key is neither a PEM public key or certificate nor a JWKS")
      expect(yield* configError({ publicKey: "not a key" })).toEqual(notPem)
      expect(yield* configError({ publicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" })).toEqual(
        notPem
      )
      expect(yield* configError({ publicKey: CERTIFICATE_KEY })).toEqual(
        misconfigured("the public key file holds a private key: give the public key")
      )
      const small = generateKeyPairSync("rsa", { modulusLength: 1024 })
      expect(yield* configError({ publicKey: pem(small.publicKey) })).toEqual(
        misconfigured(
          "the public key is an RSA key of fewer than 2048 bits: use RSA (2048 bits or more), or EC P-256 or P-384"
        )
      )
      const ed = generateKeyPairSync("ed25519")
      expect(yield* configError({ publicKey: pem(ed.publicKey) })).toEqual(
        misconfigured("the public key is a key of type ed25519: use RSA (2048 bits or more), or EC P-256 or P-384")
      )
      const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" })
      expect(yield* configError({ publicKey: pem(k1.publicKey) })).toEqual(
        misconfigured(
          "the public key is an EC key on curve secp256k1: use RSA (2048 bits or more), or EC P-256 or P-384"
        )
      )
    })
  )

  it.effect("refuses a JWKS that is not JSON, has no keys, or no usable key", () =>
    Effect.gen(function* () {
      expect(yield* configError({ publicKey: "{ keys: [" })).toEqual(misconfigured("the JWKS is not valid JSON"))
      expect(yield* configError({ publicKey: '{"key": []}' })).toEqual(misconfigured('the JWKS has no "keys" array'))
      const noUsable = misconfigured(
        "the JWKS has no usable public signing key: use RSA (2048 bits or more), or EC P-256 or P-384"
      )
      const publicJwk = yield* Effect.promise(() => exportJWK(rsa.publicKey))
      const privateJwk = yield* Effect.promise(() => exportJWK(rsa.privateKey))
      const unusable: ReadonlyArray<ReadonlyArray<unknown>> = [
        [],
        [{ kty: "oct", k: Buffer.from(SECRET).toString("base64url") }],
        [privateJwk],
        [{ ...publicJwk, use: "enc" }],
        [{ ...publicJwk, key_ops: ["encrypt"] }],
        [{ ...publicJwk, alg: "HS256" }],
        [{ ...publicJwk, alg: "ES256" }],
        [{ kty: "RSA", n: "AQAB" }],
        ["not a key", null]
      ]
      for (const keys of unusable) {
        expect(yield* configError({ publicKey: JSON.stringify({ keys }) }), JSON.stringify(keys)).toEqual(noUsable)
      }
    })
  )

  it.effect("unusable members of a JWKS are left out, the usable ones verify", () =>
    Effect.gen(function* () {
      yield* atNow
      const publicJwk = yield* Effect.promise(() => exportJWK(ec.publicKey))
      const oct = { kty: "oct", k: Buffer.from(SECRET).toString("base64url") }
      const verify = yield* verifier({ publicKey: JSON.stringify({ keys: [oct, publicJwk] }) })
      expect((yield* verify(yield* sign({ sub: "alice", exp: HOUR_LATER }, ec.privateKey, "ES256"))).user).toBe("alice")
      expect(yield* rejection(verify, yield* sign({ sub: "alice", exp: HOUR_LATER }))).toEqual(
        rejected("algorithm not allowed")
      )
    })
  )
})

describe("JwtHooks", () => {
  const request = (token: string | undefined): ConnectRequest => ({
    url: new URL("http://localhost/chat"),
    headers: {},
    ip: "127.0.0.1",
    token
  })

  it.effect("no token is a guest, a good token its identity, a bad one unauthorized with the reason", () =>
    Effect.gen(function* () {
      yield* atNow
      const { connect } = JwtHooks.hooks(yield* verifier())
      expect(yield* connect!(request(undefined))).toEqual(Option.none())
      const identity = yield* connect!(request(yield* sign({ sub: "alice", exp: HOUR_LATER })))
      expect(identity).toEqual(Option.some({ user: "alice", name: "alice", expiresAt: HOUR_LATER * 1000 }))
      const refusal = yield* Effect.flip(connect!(request(yield* sign({ sub: "alice", exp: NOW - 60 }))))
      expect(refusal).toBeInstanceOf(HookRefusal)
      expect([refusal.code, refusal.message]).toEqual(["unauthorized", "token expired"])
      const bad = yield* Effect.flip(connect!(request("not-a-token")))
      expect([bad.code, bad.message]).toEqual(["unauthorized", "malformed token"])
    })
  )

  it.effect("layer provides the hooks, and fails to build on bad settings", () =>
    Effect.gen(function* () {
      yield* atNow
      const token = yield* sign({ sub: "alice", exp: HOUR_LATER })
      const found = yield* Effect.flatMap(ChatHooks, (hooks) => hooks.connect!(request(token))).pipe(
        Effect.provide(JwtHooks.layer({ secret: SECRET }))
      )
      expect(Option.map(found, (identity) => identity.user)).toEqual(Option.some("alice"))
      const exit = yield* Effect.exit(Effect.provide(ChatHooks, JwtHooks.layer({})))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : exit).toBe("AuthConfigError")
    })
  )
})

describe("bearerToken", () => {
  it("reads the token of an Authorization: Bearer header, whatever the scheme's case", () => {
    expect(bearerToken({ authorization: "Bearer abc.DEF-_~+/=" })).toBe("abc.DEF-_~+/=")
    expect(bearerToken({ authorization: "bearer abc" })).toBe("abc")
    expect(bearerToken({ authorization: "BEARER  abc " })).toBe("abc")
    expect(bearerToken({ Authorization: "Bearer abc" })).toBe("abc")
    expect(bearerToken({ authorization: ["Bearer abc"] })).toBe("abc")
  })

  it("is undefined without one", () => {
    for (const authorization of [undefined, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearerabc"]) {
      expect(bearerToken({ authorization }), authorization).toBeUndefined()
    }
    expect(bearerToken({})).toBeUndefined()
    expect(bearerToken({ authorization: ["Bearer a", "Bearer b"] })).toBeUndefined()
  })
})

describe("dist/scripts/mint-token.js", () => {
  const MINT = Path.resolve(import.meta.dirname, "..", "dist", "scripts", "mint-token.js")

  /** Runs the minter to its end: exit code and output. */
  const mint = (args: ReadonlyArray<string>, secret: string | undefined) => {
    expect(Fs.existsSync(MINT), "build the scripts first: npx tsc -p tsconfig.scripts.json").toBe(true)
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "JWT_SECRET"))
    try {
      const stdout = ChildProcess.execFileSync(process.execPath, [MINT, ...args], {
        env: secret === undefined ? env : { ...env, JWT_SECRET: secret },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"]
      })
      return { status: 0, stdout, stderr: "" }
    } catch (error) {
      const { status, stdout, stderr } = error as { status: number | null; stdout: string; stderr: string }
      return { status, stdout, stderr }
    }
  }

  it.live("mints a token the verifier accepts, with the claims asked for", () =>
    Effect.gen(function* () {
      const before = Date.now()
      const args = ["--sub", "u-7", "--name", "Alice", "--rooms", "general,team-*", "--ttl", "90s"]
      const { status, stdout, stderr } = mint([...args, "--issuer", "dev", "--audience", "chat"], SECRET)
      expect([status, stderr]).toEqual([0, ""])
      expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
      const verify = yield* verifier({ secret: SECRET, issuer: "dev", audience: "chat" })
      const identity = yield* verify(stdout.trim())
      expect({ ...identity, expiresAt: undefined }).toEqual({
        user: "u-7",
        name: "Alice",
        rooms: ["general", "team-*"],
        expiresAt: undefined
      })
      expect(identity.expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 90_000)
      expect(identity.expiresAt).toBeLessThanOrEqual(Date.now() + 90_000)
      expect(yield* rejection(yield* verifier({ secret: "another secret" }), stdout.trim())).toEqual(
        rejected("invalid signature")
      )
    })
  )

  it("exits 2 with a message on stderr without JWT_SECRET or with a bad flag", () => {
    const missing = mint(["--sub", "alice"], undefined)
    expect([missing.status, missing.stdout]).toEqual([2, ""])
    expect(missing.stderr).toContain("JWT_SECRET")
    for (const args of [
      ["--sub", "alice", "--ttl", "soon"],
      ["--sub", "alice", "--bogus"],
      ["--name", "alice"]
    ]) {
      const bad = mint(args, SECRET)
      expect([bad.status, bad.stdout], args.join(" ")).toEqual([2, ""])
      expect(bad.stderr, args.join(" ")).toMatch(/^mint-token: .+\n$/)
    }
    const help = mint(["--help"], undefined)
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("--sub")
  })
})
