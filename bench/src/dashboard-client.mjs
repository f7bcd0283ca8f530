// The protocol client of `npm run bench -- --dashboard`, in a process of its own as a browser is:
// connects to the control server's WebSocket (argv[2], the ws:// address with its token), asks for
// plots, answers every binary `plots` message with `drawn` at once and draws nothing. It prints
// `open` once connected, then, for each `count` line on stdin, the number of plots messages it has
// taken so far. It ends when stdin closes.
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';

const socket = new WebSocket(process.argv[2]);
let received = 0;
socket.on('message', (_data, binary) => {
  if (!binary) return;
  received += 1;
  socket.send('{"type":"drawn"}');
});
socket.once('error', (error) => {
  process.stderr.write(`dashboard client: ${error.message}\n`);
  process.exit(1);
});
socket.once('open', () => {
  socket.send('{"type":"plots","on":true}');
  process.stdout.write('open\n');
});
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'count') process.stdout.write(`${received}\n`);
});
lines.on('close', () => {
  socket.close();
  process.exit(0);
});
