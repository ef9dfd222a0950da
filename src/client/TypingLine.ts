/**
 * Who is typing, as one line, for every client (the terminal's status line, the browser's line under the
 * timeline): `ann is typing…`, `ann and bob are typing…`, `ann, bob and 2 others are typing…`. Pure and free of
 * `effect`, so the browser bundle takes it as it is.
 */
export const typingLine = (names: ReadonlyArray<string>): string | undefined => {
  switch (names.length) {
    case 0:
      return undefined
    case 1:
      return `${names[0]} is typing…`
    case 2:
      return `${names[0]} and ${names[1]} are typing…`
    case 3:
      return `${names[0]}, ${names[1]} and ${names[2]} are typing…`
    default:
      return `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`
  }
}
