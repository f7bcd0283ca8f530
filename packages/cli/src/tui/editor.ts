/**
 * The text being typed at the UI's command line (or its log filter): the characters, the cursor,
 * and for the command line a history that Up and Down walk through.
 * @module
 */

/** How many command lines the history keeps. */
const HISTORY_LIMIT = 200;

export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  readonly #history: string[] = [];
  /** Where Up/Down is in the history (`history.length`: the line being typed). */
  #historyAt = 0;
  /** The line being typed before Up was pressed, given back by Down. */
  #draft = '';

  get text(): string {
    return this.#chars.join('');
  }

  get cursor(): number {
    return this.#cursor;
  }

  get history(): readonly string[] {
    return this.#history;
  }

  /** Replaces the text; the cursor goes to its end. */
  set(text: string): void {
    this.#chars = Array.from(text);
    this.#cursor = this.#chars.length;
  }

  clear(): void {
    this.set('');
    this.#historyAt = this.#history.length;
  }

  insert(text: string): void {
    const chars = Array.from(text);
    this.#chars.splice(this.#cursor, 0, ...chars);
    this.#cursor += chars.length;
  }

  backspace(): void {
    if (this.#cursor === 0) return;
    this.#chars.splice(this.#cursor - 1, 1);
    this.#cursor -= 1;
  }

  delete(): void {
    this.#chars.splice(this.#cursor, 1);
  }

  left(): void {
    this.#cursor = Math.max(0, this.#cursor - 1);
  }

  right(): void {
    this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
  }

  home(): void {
    this.#cursor = 0;
  }

  end(): void {
    this.#cursor = this.#chars.length;
  }

  /** Ctrl-U: deletes from the start of the line to the cursor. */
  killBefore(): void {
    this.#chars.splice(0, this.#cursor);
    this.#cursor = 0;
  }

  /** Ctrl-K: deletes from the cursor to the end. */
  killAfter(): void {
    this.#chars.splice(this.#cursor);
  }

  /** Ctrl-W: deletes the word before the cursor. */
  killWord(): void {
    let start = this.#cursor;
    while (start > 0 && this.#chars[start - 1] === ' ') start -= 1;
    while (start > 0 && this.#chars[start - 1] !== ' ') start -= 1;
    this.#chars.splice(start, this.#cursor - start);
    this.#cursor = start;
  }

  /** Keeps a sent line in the history (not twice in a row) and empties the line. */
  commit(line: string): void {
    if (line.trim() !== '' && this.#history.at(-1) !== line) {
      this.#history.push(line);
      if (this.#history.length > HISTORY_LIMIT) this.#history.shift();
    }
    this.clear();
  }

  /** Up: the previous line of the history. */
  previous(): void {
    if (this.#historyAt === 0) return;
    if (this.#historyAt === this.#history.length) this.#draft = this.text;
    this.#historyAt -= 1;
    this.set(this.#history[this.#historyAt] ?? '');
  }

  /** Down: the next line of the history, then the line that was being typed. */
  next(): void {
    if (this.#historyAt >= this.#history.length) return;
    this.#historyAt += 1;
    this.set(this.#historyAt === this.#history.length ? this.#draft : (this.#history[this.#historyAt] ?? ''));
  }
}
