/**
 * A development token minter: signs an HS256 JWT with the server's shared secret, so a local server started with
 * that secret accepts it. Not an identity provider: it signs whatever it is asked to, and the server's verifier is
 * what checks the claims (a `name` that is not a valid name, say, makes a token the server refuses).
 *
 *   JWT_SECRET=... node dist/scripts/mint-token.js --sub alice --name Alice --rooms 'general,team-*' --ttl 1h
 */
import { parseArgs } from "node:util"
import { SignJWT } from "jose"

const HELP = `mint-token: a development JWT (HS256) for an effect-chat server started with the same secret

  JWT_SECRET=SECRET node dist/scripts/mint-token.js --sub ID [options]

  --sub ID          the user's stable id (required)
  --name NAME       display name (default: the server uses sub, when it is a valid name)
  --rooms LIST      comma-separated room patterns: general, team-*, * (default: every room)
  --ttl DURATION    lifetime: 90s, 30m, 1h, 2d, or seconds (default 1h)
  --issuer ISS      the iss claim
  --audience AUD    the aud claim
  -h, --help        this text

Prints the token and a newline. Exit code 2 for a missing secret or a bad flag.
`

/** A mistake in how the script was called: its message, and exit code 2. */
class UsageError extends Error {
  override readonly name = "UsageError"
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** `90s`, `30m`, `1h`, `2d` or plain seconds, as a positive number of seconds. */
const ttlSeconds = (value: string): number => {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim())
  const seconds = match === null ? NaN : Number(match[1]) * UNIT_SECONDS[match[2] === "" ? "s" : match[2]!]!
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new UsageError(`--ttl: "${value}" is not a duration (90s, 30m, 1h, 2d or seconds)`)
  }
  return seconds
}

interface Claims {
  readonly sub: string
  readonly name: string | undefined
  readonly rooms: ReadonlyArray<string> | undefined
  readonly ttl: number
  readonly issuer: string | undefined
  readonly audience: string | undefined
}

const flags = () => {
  try {
    return parseArgs({
      options: {
        sub: { type: "string" },
        name: { type: "string" },
        rooms: { type: "string" },
        ttl: { type: "string" },
        issuer: { type: "string" },
        audience: { type: "string" },
        help: { type: "boolean", short: "h", default: false }
      },
      strict: true
    }).values
  } catch (error) {
    // parseArgs's own message names the flag: "Unknown option '--x'", "Option '--sub <value>' argument missing".
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
}

const parseClaims = (): Claims | undefined => {
  const values = flags()
  if (values.help) return undefined
  if (values.sub === undefined || values.sub === "") throw new UsageError("--sub is required")
  return {
    sub: values.sub,
    name: values.name,
    rooms: values.rooms
      ?.split(",")
      .map((pattern) => pattern.trim())
      .filter((pattern) => pattern !== ""),
    ttl: ttlSeconds(values.ttl ?? "1h"),
    issuer: values.issuer,
    audience: values.audience
  }
}

const mint = (claims: Claims, secret: string): Promise<string> => {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({
    ...(claims.name === undefined ? {} : { name: claims.name }),
    ...(claims.rooms === undefined ? {} : { rooms: [...claims.rooms] })
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + claims.ttl)
  if (claims.issuer !== undefined) jwt.setIssuer(claims.issuer)
  if (claims.audience !== undefined) jwt.setAudience(claims.audience)
  return jwt.sign(new TextEncoder().encode(secret))
}

const main = async () => {
  const claims = parseClaims()
  if (claims === undefined) {
    process.stdout.write(HELP)
    return
  }
  const secret = process.env.JWT_SECRET
  if (secret === undefined || secret === "") throw new UsageError("set JWT_SECRET to the server's HS256 secret")
  process.stdout.write(`${await mint(claims, secret)}\n`)
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`mint-token: ${error.message} (--help for usage)\n`)
    process.exitCode = 2
    return
  }
  process.stderr.write(`mint-token: ${String(error)}\n`)
  process.exitCode = 1
})
