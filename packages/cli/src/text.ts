/**
 * Words in messages: lists as a sentence says them, and commands as a user would type them back
 * into a shell (the `fix:` lines).
 * @module
 */

/** `a`, `a and b`, `a, b and c`. */
export function listed(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/**
 * `words` joined as a shell reads them back: a word with anything but plain characters is
 * single-quoted; a stand-in such as `<pipeline.yaml>` (the file the user has to name) is shown as it is.
 */
export function shellLine(words: readonly string[]): string {
  return words
    .map((word) =>
      /^[\w@%+=:,./-]+$/.test(word) || /^<[\w.]+>$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`,
    )
    .join(' ');
}
