/**
 * The built-in token check: a JWT (RFC 7519) becomes an `Identity`, or a short reason why not. jose parses the
 * token and checks its signature and time claims; this module only decides which keys and algorithms to trust and
 * reads the claims of the protocol's Identity section (`sub`, `exp`, `name`, `rooms`).
 *
 * The algorithms come from the key, never from the token: a secret allows HS256 only, a public key only the
 * asymmetric algorithms of its type, so neither `alg: none` nor an HS256 token "signed" with the public key passes.
 * Rejection reasons reach the client in an `unauthorized` error, so they are short fixed phrases that never echo
 * the token.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto"
import { Clock, Data, Effect, Either } from "effect"
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from "jose"
import { isValidName, isValidRoom } from "../protocol/Rules.js"
import type { Identity } from "../server/Identity.js"

export interface JwtSettings {
  /** HS256 shared secret. */
  readonly secret?: string | undefined
  /**
   * Contents of a public key file: PEM (SPKI "PUBLIC KEY", or an X.509 certificate) for RS256/ES256, or a JWKS
   * JSON document ({"keys":[...]}).
   */
  readonly publicKey?: string | undefined
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
}

/** The settings cannot verify anything: the server must not start with them. */
export class AuthConfigError extends Data.TaggedError("AuthConfigError")<{ readonly message: string }> {}

/** A token that does not make an identity; `expired` tells a stale credential from a bad one. */
export class TokenRejected extends Data.TaggedError("TokenRejected")<{
  readonly reason: string
  readonly expired: boolean
}> {}

export type Verify = (token: string) => Effect.Effect<Identity, TokenRejected>

/** Seconds of clock skew between the token issuer and this server that `exp` and `nbf` forgive. */
export const CLOCK_TOLERANCE_SECONDS = 5
export const MAX_SUB_LENGTH = 256
export const MAX_ROOM_PATTERNS = 100
/** Far above any real token; keeps a hostile client from making us decode megabytes. */
export const MAX_TOKEN_LENGTH = 8192

/** A key jose verifies with and the algorithms it may sign with. */
interface Trust {
  readonly algorithms: ReadonlyArray<string>
  readonly verify: (token: string, options: JWTVerifyOptions) => Promise<JWTPayload>
}

const configError = (message: string) => Either.left(new AuthConfigError({ message }))

const secretTrust = (secret: string): Either.Either<Trust, AuthConfigError> => {
  if (secret.length === 0) return configError("the JWT secret is empty")
  const key = new TextEncoder().encode(secret)
  return Either.right({
    algorithms: ["HS256"],
    verify: async (token, options) => (await jwtVerify(token, key, options)).payload
  })
}

/** What a public key may sign with, or why it is not usable. */
const algorithmsFor = (key: KeyObject): Either.Either<ReadonlyArray<string>, string> => {
  switch (key.asymmetricKeyType) {
    case "rsa":
      // jose refuses shorter RSA keys at verification time; say so when the server starts instead.
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048
        ? Either.right(["RS256", "PS256"])
        : Either.left("an RSA key of fewer than 2048 bits")
    case "ec":
      switch (key.asymmetricKeyDetails?.namedCurve) {
        case "prime256v1":
          return Either.right(["ES256"])
        case "secp384r1":
          return Either.right(["ES384"])
      }
      return Either.left(`an EC key on curve ${key.asymmetricKeyDetails?.namedCurve ?? "unknown"}`)
  }
  return Either.left(`a key of type ${key.asymmetricKeyType ?? "unknown"}`)
}

const SUPPORTED_KEYS = "RSA (2048 bits or more), or EC P-256 or P-384"

const pemTrust = (pem: string): Either.Either<Trust, AuthConfigError> => {
  // createPublicKey would quietly derive the public half of a private key; a private key in a file meant to be
  // public is a mistake the operator should hear about.
  if (/PRIVATE KEY-----/.test(pem)) return configError("the public key file holds a private key: give the public key")
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch {
    return configError("the public key is neither a PEM public key or certificate nor a JWKS")
  }
  return Either.match(algorithmsFor(key), {
    onLeft: (what) => configError(`the public key is ${what}: use ${SUPPORTED_KEYS}`),
    onRight: (algorithms) =>
      Either.right({ algorithms, verify: async (token, options) => (await jwtVerify(token, key, options)).payload })
  })
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The algorithms a JWKS member may verify, or undefined when it cannot be used for signatures. */
const usableJwk = (jwk: unknown): ReadonlyArray<string> | undefined => {
  if (!isRecord(jwk) || (jwk.kty !== "RSA" && jwk.kty !== "EC") || "d" in jwk) return undefined
  if (jwk.use !== undefined && jwk.use !== "sig") return undefined
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes("verify"))) return undefined
  let key: KeyObject
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" })
  } catch {
    return undefined
  }
  const algorithms = Either.getOrUndefined(algorithmsFor(key))
  if (algorithms === undefined || jwk.alg === undefined) return algorithms
  return typeof jwk.alg === "string" && algorithms.includes(jwk.alg) ? [jwk.alg] : undefined
}

const keySetTrust = (json: string): Either.Either<Trust, AuthConfigError> => {
  let document: unknown
  try {
    document = JSON.parse(json)
  } catch {
    return configError("the JWKS is not valid JSON")
  }
  if (!isRecord(document) || !Array.isArray(document.keys)) return configError('the JWKS has no "keys" array')
  const usable = document.keys.flatMap((jwk: unknown) => {
    const algorithms = usableJwk(jwk)
    return algorithms === undefined ? [] : [{ jwk: jwk as Record<string, unknown>, algorithms }]
  })
  if (usable.length === 0) return configError(`the JWKS has no usable public signing key: use ${SUPPORTED_KEYS}`)
  let keySet: ReturnType<typeof createLocalJWKSet>
  try {
    // Only the usable members: a symmetric or encryption key in the file is never consulted.
    keySet = createLocalJWKSet({ keys: usable.map(({ jwk }) => jwk) })
  } catch {
    return configError("the JWKS is malformed")
  }
  return Either.right({
    algorithms: [...new Set(usable.flatMap(({ algorithms }) => algorithms))],
    verify: async (token, options) => {
      try {
        return (await jwtVerify(token, keySet, options)).payload
      } catch (error) {
        if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error
        // A token without a `kid` that several keys could have signed: try each, as jose's documentation does.
        for await (const key of error) {
          try {
            return (await jwtVerify(token, key, options)).payload
          } catch (inner) {
            if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner
          }
        }
        throw new errors.JWSSignatureVerificationFailed()
      }
    }
  })
}

const trustOf = (settings: JwtSettings): Either.Either<Trust, AuthConfigError> => {
  const { secret, publicKey } = settings
  if (secret !== undefined && publicKey !== undefined) {
    return configError("set either a JWT secret or a public key, not both")
  }
  if (secret !== undefined) return secretTrust(secret)
  if (publicKey === undefined) return configError("set a JWT secret (HS256) or a public key (RS256, ES256)")
  const text = publicKey.trim()
  if (text.length === 0) return configError("the public key file is empty")
  return text.startsWith("{") ? keySetTrust(text) : pemTrust(text)
}

const rejected = (reason: string) => new TokenRejected({ reason, expired: false })

/** jose's failure as a reason a person can act on. Claim names come from jose's fixed list, not from the token. */
const rejection = (error: unknown): TokenRejected => {
  if (error instanceof errors.JWTExpired) return new TokenRejected({ reason: "token expired", expired: true })
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return rejected(`the token has no ${error.claim} claim`)
    if (error.claim === "nbf" && error.reason === "check_failed") return rejected("token not yet valid")
    if (error.claim === "iss" && error.reason === "check_failed") return rejected("wrong issuer")
    if (error.claim === "aud" && error.reason === "check_failed") return rejected("wrong audience")
    return rejected(`invalid ${error.claim} claim`)
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return rejected("invalid signature")
  if (error instanceof errors.JOSEAlgNotAllowed) return rejected("algorithm not allowed")
  if (error instanceof errors.JWKSNoMatchingKey) return rejected("no key matches the token")
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return rejected("malformed token")
  return rejected("invalid token")
}

/** `*`, a room, or a room prefix followed by `*` (`team-*`): the patterns `Identity.matchesRoom` understands. */
const isRoomPattern = (pattern: unknown): pattern is string =>
  typeof pattern === "string" &&
  (pattern === "*" || isValidRoom(pattern) || (pattern.endsWith("*") && isValidRoom(pattern.slice(0, -1))))

/** The protocol's claims, on a payload whose signature, `exp` and `nbf` jose has checked. */
const identityOf = (payload: JWTPayload): Either.Either<Identity, TokenRejected> => {
  const { sub, exp, name, rooms } = payload
  if (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
    return Either.left(rejected("invalid sub claim"))
  }
  if (typeof exp !== "number") return Either.left(rejected("invalid exp claim"))
  if (name !== undefined && (typeof name !== "string" || !isValidName(name))) {
    return Either.left(rejected("invalid name claim"))
  }
  if (name === undefined && !isValidName(sub)) {
    return Either.left(rejected("the token has no name claim and its sub is not a valid name"))
  }
  if (
    rooms !== undefined &&
    (!Array.isArray(rooms) || rooms.length > MAX_ROOM_PATTERNS || !rooms.every((pattern) => isRoomPattern(pattern)))
  ) {
    return Either.left(rejected("invalid rooms claim"))
  }
  return Either.right({
    user: sub,
    name: name ?? sub,
    expiresAt: exp * 1000,
    ...(rooms === undefined ? {} : { rooms: rooms as ReadonlyArray<string> })
  })
}

/**
 * A verifier for these settings, or why they cannot verify anything. Keys are parsed here, once, so a bad key
 * file stops the server at start instead of refusing every user. Time is read from Effect's `Clock`.
 */
export const make = (settings: JwtSettings): Effect.Effect<Verify, AuthConfigError> =>
  Effect.gen(function* () {
    const trust = yield* trustOf(settings)
    if (settings.issuer === "") return yield* new AuthConfigError({ message: "the JWT issuer is empty" })
    if (settings.audience === "") return yield* new AuthConfigError({ message: "the JWT audience is empty" })
    const options: JWTVerifyOptions = {
      algorithms: [...trust.algorithms],
      requiredClaims: ["sub", "exp"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      ...(settings.issuer === undefined ? {} : { issuer: settings.issuer }),
      ...(settings.audience === undefined ? {} : { audience: settings.audience })
    }
    return (token: string): Effect.Effect<Identity, TokenRejected> =>
      token.length > MAX_TOKEN_LENGTH
        ? Effect.fail(rejected("token too long"))
        : Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) =>
              Effect.tryPromise({
                try: () => trust.verify(token, { ...options, currentDate: new Date(now) }),
                catch: rejection
              })
            ),
            Effect.flatMap(identityOf)
          )
  })
