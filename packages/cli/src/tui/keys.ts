/**
 * Turns what the terminal sends (one Ink input event: a key's escape sequence, or a run of typed
 * or pasted characters) into keys the UI acts on. Ink's own `useInput` does not tell F-keys apart,
 * so the UI reads Ink's raw input events and decodes them here.
 * @module
 */

/** Keys with a name. */
export type KeyName =
  | 'enter'
  | 'tab'
  | 'backtab'
  | 'backspace'
  | 'delete'
  | 'escape'
  | 'up'
  | 'down'
  | 'left'
  | 'right'
  | 'home'
  | 'end'
  | 'pageup'
  | 'pagedown';

/** One key press. */
export type Key =
  /** Printable characters (several when pasted). */
  | { type: 'text'; text: string }
  | { type: 'key'; name: KeyName }
  /** Ctrl and a letter: `c`, `d`, `u`, `w`, `a`, `e`, `l`. */
  | { type: 'ctrl'; letter: string }
  /** Alt (Meta, Option) and a character, as terminals send it: Esc then the character. */
  | { type: 'alt'; char: string }
  /** F1 … F12. */
  | { type: 'fn'; n: number };

const csiFinal: Record<string, KeyName> = {
  A: 'up',
  B: 'down',
  C: 'right',
  D: 'left',
  H: 'home',
  F: 'end',
  Z: 'backtab',
};

const csiTilde: Record<string, Key> = {
  '1': { type: 'key', name: 'home' },
  '7': { type: 'key', name: 'home' },
  '4': { type: 'key', name: 'end' },
  '8': { type: 'key', name: 'end' },
  '3': { type: 'key', name: 'delete' },
  '5': { type: 'key', name: 'pageup' },
  '6': { type: 'key', name: 'pagedown' },
  '11': { type: 'fn', n: 1 },
  '12': { type: 'fn', n: 2 },
  '13': { type: 'fn', n: 3 },
  '14': { type: 'fn', n: 4 },
  '15': { type: 'fn', n: 5 },
  '17': { type: 'fn', n: 6 },
  '18': { type: 'fn', n: 7 },
  '19': { type: 'fn', n: 8 },
  '20': { type: 'fn', n: 9 },
  '21': { type: 'fn', n: 10 },
  '23': { type: 'fn', n: 11 },
  '24': { type: 'fn', n: 12 },
};

/** SS3 (`Esc O x`) finals: F1–F4 (xterm), arrows and Home/End in application mode. */
const ss3: Record<string, Key> = {
  P: { type: 'fn', n: 1 },
  Q: { type: 'fn', n: 2 },
  R: { type: 'fn', n: 3 },
  S: { type: 'fn', n: 4 },
  A: { type: 'key', name: 'up' },
  B: { type: 'key', name: 'down' },
  C: { type: 'key', name: 'right' },
  D: { type: 'key', name: 'left' },
  H: { type: 'key', name: 'home' },
  F: { type: 'key', name: 'end' },
  M: { type: 'key', name: 'enter' },
};

/** The keys in one input event (escape sequences arrive one per event; typed text may come as a run). */
export function decodeKeys(input: string): Key[] {
  if (input.startsWith('\x1b')) return decodeEscape(input);
  const keys: Key[] = [];
  let text = '';
  const flush = () => {
    if (text !== '') keys.push({ type: 'text', text });
    text = '';
  };
  for (const char of input) {
    const code = char.codePointAt(0) ?? 0;
    if (code >= 0x20 && code !== 0x7f) {
      text += char;
      continue;
    }
    flush();
    if (char === '\r' || char === '\n') keys.push({ type: 'key', name: 'enter' });
    else if (char === '\t') keys.push({ type: 'key', name: 'tab' });
    else if (char === '\x7f' || char === '\b') keys.push({ type: 'key', name: 'backspace' });
    else if (code >= 1 && code <= 26) keys.push({ type: 'ctrl', letter: String.fromCharCode(code + 96) });
    // other control characters (Ctrl-\, NUL…) mean nothing here
  }
  flush();
  return keys;
}

function decodeEscape(input: string): Key[] {
  if (input === '\x1b') return [{ type: 'key', name: 'escape' }];
  // Esc Esc [ A: Alt with a special key; the key is what matters.
  const body = input.startsWith('\x1b\x1b[') || input.startsWith('\x1b\x1bO') ? input.slice(1) : input;
  if (body.startsWith('\x1b[')) {
    const rest = body.slice(2);
    // Linux console F1–F5: Esc [ [ A … E
    const linux = /^\[([A-E])$/.exec(rest);
    if (linux) return [{ type: 'fn', n: linux[1]!.charCodeAt(0) - 64 }];
    const tilde = /^(\d+)(?:;\d+)?~$/.exec(rest);
    if (tilde) {
      const key = csiTilde[tilde[1]!];
      return key ? [key] : [];
    }
    // Esc [ 1 ; 5 A (with modifiers), Esc [ A; Esc [ 1 ; 2 P (Shift-F1 on xterm)
    const final = /^(?:\d+(?:;\d+)?)?([A-Za-z])$/.exec(rest);
    if (final) {
      const letter = final[1]!;
      const name = csiFinal[letter];
      if (name) return [{ type: 'key', name }];
      const fn = ss3[letter];
      if (fn?.type === 'fn') return [fn];
    }
    return [];
  }
  if (body.startsWith('\x1bO')) {
    const key = ss3[body.slice(2)];
    return key ? [key] : [];
  }
  // Esc and one character: Alt with it (Alt-Backspace, Alt-Enter count as the plain key).
  const rest = input.slice(1);
  if (rest === '\x7f' || rest === '\b') return [{ type: 'key', name: 'backspace' }];
  if (rest === '\r' || rest === '\n') return [{ type: 'key', name: 'enter' }];
  if (Array.from(rest).length === 1 && (rest.codePointAt(0) ?? 0) >= 0x20) return [{ type: 'alt', char: rest }];
  return [];
}
