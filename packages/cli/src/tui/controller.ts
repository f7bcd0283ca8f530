/**
 * The live UI's behaviour without React: it listens to the source (into the model), decides when
 * to redraw (on a 100 ms timer when the model changed, at once for a key), acts on keys, sends
 * command lines and shows their results. The Ink component (app.ts) only draws `screen()` and
 * passes the terminal's input and size in.
 * @module
 */
import type { LogLevel } from '@improv/core';
import { completions } from '../command-line.ts';
import type { LiveSource } from '../control/protocol.ts';
import { LineEditor } from './editor.ts';
import { decodeKeys, type Key } from './keys.ts';
import { LiveModel } from './model.ts';
import { type Line, logMatcher, renderScreen, type ViewState } from './view.ts';

/** How often the UI looks whether the model changed (and redraws): at most 10 times a second. */
export const REDRAW_MS = 100;

/**
 * Why the UI ended: `quit` and `detach` by the user, `closed` by the source, `terminal-gone` when its
 * terminal went away (reads or writes fail with EIO, or the input ended) without a SIGHUP to say so.
 */
export type TuiExit = 'quit' | 'detach' | 'closed' | 'terminal-gone';

export interface ControllerOptions {
  mode: 'full' | 'top';
  title?: string | undefined;
  logLevel?: LogLevel | undefined;
  /** The terminal's size (default 80×24). */
  columns?: number | undefined;
  rows?: number | undefined;
  /** Whether to colour (default: yes). The cursor and the bars show without colours too. */
  colour?: boolean | undefined;
}

const levels: LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The commands the F-keys and Alt-letters give. */
const shortcuts: Record<string, string> = {
  f2: 'setup',
  f3: 'run',
  f4: 'pause',
  f5: 'resume',
  f6: 'stop',
  f7: 'revive',
  f10: 'quit',
  s: 'setup',
  r: 'run',
  p: 'pause',
  u: 'resume',
  t: 'stop',
  v: 'revive',
  q: 'quit',
};

const keyHelp = [
  'keys: F2 setup F3 run F4 pause F5 resume F6 stop F7 revive F10 quit',
  '  or Alt+s r p u t v q where F-keys do not reach; F8 log level; F1 this',
  '  type a command, Enter sends it (help lists them); Tab completes; Up/Down',
  '  / filters the log (text or regex; Esc clears); PgUp/PgDn scroll, End follows',
  '  Ctrl-D detaches (the pipeline runs on); Ctrl-C quits it (twice: leave now)',
];

/** The longest common start of `words`. */
function commonPrefix(words: string[]): string {
  if (words.length === 0) return '';
  let prefix = words[0]!;
  for (const word of words) {
    while (!word.toLowerCase().startsWith(prefix.toLowerCase())) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

export class TuiController {
  readonly model: LiveModel;
  readonly mode: 'full' | 'top';
  readonly title: string | undefined;
  readonly editor = new LineEditor();
  readonly filterEditor = new LineEditor();
  /** Whether keys go to the filter (after `/`) rather than the command line. */
  editingFilter = false;
  level: LogLevel;
  scroll = 0;
  hint: string | undefined;
  /** Commands sent and not answered yet. */
  pending = 0;
  columns: number;
  rows: number;
  readonly colour: boolean;
  /** Frames drawn (each `screen()` call), for tests. */
  frames = 0;
  /** Why it ended, once it has. */
  exit: TuiExit | undefined;

  #redraw: () => void = () => {};
  #onLeave: (why: TuiExit) => void = () => {};
  #drawnVersion = -1;
  #drawnSecond = -1;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unsubscribe: () => void;
  #quitAsked = false;
  /** What the last frame's layout was (the log's height). */
  readonly #layout: { logRows?: number } = {};
  /** Log lines appended so far, as of the last frame. */
  #appended = 0;

  constructor(source: LiveSource, options: ControllerOptions) {
    this.model = new LiveModel(source);
    this.mode = options.mode;
    this.title = options.title;
    this.level = options.logLevel ?? 'info';
    this.columns = options.columns || 80;
    this.rows = options.rows || 24;
    this.colour = options.colour ?? true;
    this.#unsubscribe = source.on((message) => {
      this.model.handle(message);
      if (message?.type === 'closed') this.leave('closed');
    });
  }

  /** What ends the UI; called at once when it has ended already. */
  onLeave(listener: (why: TuiExit) => void): void {
    this.#onLeave = listener;
    if (this.exit !== undefined) listener(this.exit);
  }

  /** Starts the redraw timer; `redraw` re-renders. */
  attach(redraw: () => void): void {
    if (this.exit !== undefined) return;
    this.#redraw = redraw;
    this.#timer ??= setInterval(() => this.tick(), REDRAW_MS);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** One look: redraws when the model moved or the uptime's second did. */
  tick(): void {
    const second = Math.floor(Date.now() / 1000);
    if (this.model.version !== this.#drawnVersion || second !== this.#drawnSecond) this.#redraw();
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#redraw = () => {};
    this.#unsubscribe();
  }

  /** Ends the UI (once). */
  leave(why: TuiExit): void {
    if (this.exit !== undefined) return;
    this.exit = why;
    this.dispose();
    this.#onLeave(why);
  }

  resize(columns: number | undefined, rows: number | undefined): void {
    if (columns) this.columns = columns;
    if (rows) this.rows = rows;
    this.#redraw();
  }

  /** The rows the screen uses: one fewer than the terminal's, so that drawing never scrolls it. */
  get height(): number {
    return Math.max(3, this.rows - 1);
  }

  view(): ViewState {
    const editing = this.editingFilter ? this.filterEditor : this.editor;
    return {
      mode: this.mode,
      title: this.title,
      width: this.columns,
      height: this.height,
      now: Date.now(),
      input: {
        kind: this.editingFilter ? 'filter' : 'command',
        text: editing.text,
        cursor: editing.cursor,
        hint: this.editingFilter ? (this.hint ?? 'Enter keeps it, Esc clears it') : this.hint,
      },
      filter: this.filterEditor.text,
      level: this.level,
      scroll: this.scroll,
    };
  }

  /** The screen now (and it counts as drawn). */
  screen(): Line[] {
    this.frames += 1;
    this.#drawnVersion = this.model.version;
    this.#keepScrolledLines();
    const view = this.view();
    this.#drawnSecond = Math.floor(view.now / 1000);
    return renderScreen(this.model, view, this.pending > 0, this.#layout);
  }

  /** Scrolled back, the same lines stay in view as new ones arrive below. */
  #keepScrolledLines(): void {
    const { model } = this;
    const appended = model.dropped + model.log.length;
    const fresh = Math.min(appended - this.#appended, model.log.length);
    this.#appended = appended;
    if (this.scroll === 0 || fresh <= 0) return;
    const matches = logMatcher(this.level, this.filterEditor.text);
    for (let i = model.log.length - fresh; i < model.log.length; i++) if (matches(model.log[i]!)) this.scroll += 1;
  }

  /** One of Ink's input events (raw terminal input). */
  input(data: string): void {
    if (this.exit !== undefined) return;
    for (const key of decodeKeys(data)) this.key(key);
    this.#redraw();
  }

  key(key: Key): void {
    if (this.mode === 'top') {
      if (
        (key.type === 'text' && /^[qQ]$/.test(key.text)) ||
        (key.type === 'ctrl' && (key.letter === 'c' || key.letter === 'd'))
      ) {
        this.leave('quit');
      }
      return;
    }
    // Keys that act whatever is being typed.
    if (key.type === 'ctrl' && key.letter === 'c') {
      if (this.#quitAsked) {
        this.leave('quit');
        return;
      }
      this.#quitAsked = true;
      this.model.addNote('Ctrl-C: quitting the pipeline (Ctrl-C again leaves the UI at once)', 'hint');
      void this.send('quit');
      return;
    }
    if (key.type === 'ctrl' && key.letter === 'd') {
      this.leave('detach');
      return;
    }
    if (key.type === 'fn' || key.type === 'alt') {
      this.shortcut(key.type === 'fn' ? `f${key.n}` : key.char.toLowerCase());
      return;
    }
    if (key.type === 'key' && (key.name === 'pageup' || key.name === 'pagedown')) {
      const rows = this.#layout.logRows ?? Math.floor(this.height / 3);
      const page = Math.max(1, rows - 1);
      const passing = this.model.log.filter(logMatcher(this.level, this.filterEditor.text)).length;
      this.scroll = Math.max(0, this.scroll + (key.name === 'pageup' ? page : -page));
      this.scroll = Math.min(this.scroll, Math.max(0, passing - rows));
      return;
    }
    if (this.editingFilter) this.filterKey(key);
    else this.commandKey(key);
  }

  shortcut(name: string): void {
    if (name === 'f1' || name === 'h') {
      this.model.addNote(keyHelp.join('\n'), 'hint');
      return;
    }
    if (name === 'f8' || name === 'l') {
      this.level = levels[(levels.indexOf(this.level) + 1) % levels.length]!;
      return;
    }
    const command = shortcuts[name];
    if (command === 'revive') this.askRevive();
    else if (command !== undefined) void this.send(command);
  }

  /** F7: puts `revive <actor>` on the command line for the failed actor, or asks which. */
  askRevive(): void {
    const failed = this.model.revivable();
    this.editingFilter = false;
    if (failed.length === 0) {
      this.model.addNote('revive: no actor has failed or ended', 'hint');
      return;
    }
    if (failed.length === 1) {
      this.editor.set(`revive ${failed[0]}`);
      this.hint = 'Enter revives it, Esc cancels';
    } else {
      this.editor.set('revive ');
      this.hint = `which? ${failed.join(', ')} (Tab completes)`;
    }
  }

  filterKey(key: Key): void {
    const editor = this.filterEditor;
    this.hint = undefined;
    if (key.type === 'text') editor.insert(key.text);
    else if (key.type === 'ctrl') this.editKey(editor, key);
    else if (key.type === 'key') {
      switch (key.name) {
        case 'enter':
        case 'tab':
          this.editingFilter = false;
          break;
        case 'escape':
          editor.clear();
          this.editingFilter = false;
          break;
        case 'backspace':
          if (editor.text === '') this.editingFilter = false;
          else editor.backspace();
          break;
        default:
          this.moveKey(editor, key.name);
      }
    }
    this.scroll = 0;
  }

  commandKey(key: Key): void {
    const editor = this.editor;
    if (key.type === 'text') {
      this.hint = undefined;
      // `/` on an empty line edits the log filter (no command starts with it).
      if (editor.text === '' && key.text.startsWith('/')) {
        this.editingFilter = true;
        this.filterEditor.set(key.text.slice(1));
        this.scroll = 0;
        return;
      }
      editor.insert(key.text);
      return;
    }
    if (key.type === 'ctrl') {
      this.hint = undefined;
      this.editKey(editor, key);
      return;
    }
    if (key.type !== 'key') return;
    switch (key.name) {
      case 'enter': {
        const line = editor.text;
        editor.commit(line);
        this.hint = undefined;
        if (line.trim() !== '') void this.send(line.trim());
        return;
      }
      case 'tab':
        this.complete();
        return;
      case 'up':
        editor.previous();
        this.hint = undefined;
        return;
      case 'down':
        editor.next();
        this.hint = undefined;
        return;
      case 'escape':
        this.hint = undefined;
        if (editor.text !== '') editor.clear();
        else if (this.filterEditor.text !== '') this.filterEditor.clear();
        else this.scroll = 0;
        return;
      case 'end':
        if (editor.text === '') this.scroll = 0;
        else editor.end();
        return;
      default:
        this.hint = undefined;
        this.moveKey(editor, key.name);
    }
  }

  private editKey(editor: LineEditor, key: Extract<Key, { type: 'ctrl' }>): void {
    switch (key.letter) {
      case 'a':
        editor.home();
        return;
      case 'e':
        editor.end();
        return;
      case 'u':
        editor.killBefore();
        return;
      case 'k':
        editor.killAfter();
        return;
      case 'w':
        editor.killWord();
        return;
      case 'h':
        editor.backspace();
        return;
      default:
    }
  }

  private moveKey(editor: LineEditor, name: string): void {
    switch (name) {
      case 'backspace':
        editor.backspace();
        return;
      case 'delete':
        editor.delete();
        return;
      case 'left':
        editor.left();
        return;
      case 'right':
        editor.right();
        return;
      case 'home':
        editor.home();
        return;
      case 'end':
        editor.end();
        return;
      default:
    }
  }

  /** Tab: completes the command word, or the actor after `revive ` (failed actors first). */
  complete(): void {
    const editor = this.editor;
    const typed = editor.text.slice(0, editor.cursor);
    const failed = this.model.revivable();
    const options = completions(typed, this.model.actorNames()).sort(
      (a, b) => Number(!failed.includes(a.slice(7))) - Number(!failed.includes(b.slice(7))),
    );
    if (options.length === 0) {
      this.hint = 'nothing to complete';
      return;
    }
    const lead = typed.length - typed.trimStart().length;
    if (options.length === 1) {
      const only = options[0]!;
      editor.set(`${typed.slice(0, lead)}${only === 'revive' ? 'revive ' : only}`);
      this.hint = only === 'revive' && failed.length > 0 ? `failed: ${failed.join(', ')}` : undefined;
      return;
    }
    const common = commonPrefix(options);
    if (common.length > typed.trim().length) editor.set(`${typed.slice(0, lead)}${common}`);
    const shown = options.map((option) => (option.startsWith('revive ') ? option.slice(7) : option));
    this.hint = shown.join(' ');
  }

  /** Sends a command line and shows it and its answer in the log area. */
  async send(line: string): Promise<void> {
    this.model.addNote(`improv> ${line}`, 'command');
    this.pending += 1;
    this.#redraw();
    try {
      const result = await this.model.source.command(line);
      if (result.ok) {
        this.model.addNote(result.message === '' ? `${line}: ok` : result.message, 'ok');
      } else {
        this.model.addNote(result.code === 'unknown' ? result.message : `${result.code}: ${result.message}`, 'error');
      }
    } catch (error) {
      this.model.addNote(`${line}: ${(error as Error)?.message ?? String(error)}`, 'error');
    } finally {
      this.pending -= 1;
      this.#redraw();
    }
  }
}
