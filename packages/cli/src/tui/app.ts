/**
 * The Ink component of the live UI: draws the controller's screen, line by line, and passes the
 * terminal's input and size to it. Plain `.ts` with `React.createElement` (as `h`), so Node, Bun
 * and Deno load it without any JSX set-up.
 * @module
 */
import { Box, Text, useStdin, useStdout } from 'ink';
import React from 'react';
import type { TuiController } from './controller.ts';
import type { Colour, Line } from './view.ts';

const h = React.createElement;

export interface AppProps {
  controller: TuiController;
}

const sgr: Record<Colour, number> = {
  red: 31,
  green: 32,
  yellow: 33,
  blue: 34,
  magenta: 35,
  cyan: 36,
  white: 37,
  gray: 90,
};

/**
 * A line as one string with its colours as escape codes: one Ink node per line rather than one
 * per segment keeps a frame cheap (Ink still measures and cuts it to the width).
 */
export function lineToAnsi(line: Line, colour: boolean): string {
  let out = '';
  for (const segment of line) {
    const codes: number[] = [];
    if (colour) {
      if (segment.bold) codes.push(1);
      if (segment.dim) codes.push(2);
      if (segment.color !== undefined) codes.push(sgr[segment.color]);
    }
    if (segment.inverse) codes.push(7);
    out += codes.length === 0 ? segment.text : `\x1b[${codes.join(';')}m${segment.text}\x1b[0m`;
  }
  return out;
}

export function App({ controller }: AppProps): React.ReactElement {
  const { setRawMode, isRawModeSupported, internal_eventEmitter: inputEvents } = useStdin();
  const { stdout } = useStdout();
  const [, setFrame] = React.useState(0);

  React.useEffect(() => {
    controller.attach(() => setFrame((frame) => frame + 1));
    return () => controller.dispose();
  }, [controller]);

  React.useEffect(() => {
    // Without a terminal on stdin the UI only shows (and ends when the source closes).
    if (!isRawModeSupported) return;
    setRawMode(true);
    const onInput = (data: unknown) => controller.input(String(data));
    inputEvents.on('input', onInput);
    return () => {
      inputEvents.off('input', onInput);
      setRawMode(false);
    };
  }, [controller, isRawModeSupported, setRawMode, inputEvents]);

  React.useEffect(() => {
    const onResize = () => controller.resize(stdout.columns, stdout.rows);
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [controller, stdout]);

  const lines = controller.screen();
  return h(
    Box,
    { flexDirection: 'column', width: controller.columns },
    ...lines.map((line, index) =>
      h(Text, { key: index, wrap: 'truncate-end' }, line.length === 0 ? ' ' : lineToAnsi(line, controller.colour)),
    ),
  );
}
