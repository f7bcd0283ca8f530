// The other process of the network baselines (`net.ts`): plain JavaScript, so Node, Bun and Deno
// run it as it is. It connects to the bench process and, per command, echoes messages back (for
// round trips) or floods it with messages of one size for a while (for throughput).
//
// Usage: <runtime> net-peer.mjs zeromq <push-address> <pull-address> | tcp <port> [<host>] | unix <path>
// (host: default 127.0.0.1; unix: the tcp mode's stream over a unix socket file). With
// IMPROV_BENCH_CURVE set to JSON { serverKey, publicKey, secretKey } (Z85), the zeromq sockets are
// CURVE clients of the bench process's sockets.
//
// Commands from the bench process, first byte: 1 = echo this message; 2 = flood: u32 size, u32 ms.
// The flood ends with one message whose first byte is 3, carrying the count sent (u32).
import net from 'node:net';

const [mode, ...rest] = process.argv.slice(2);

function floodPayload(size) {
  const payload = new Uint8Array(Math.max(size, 8));
  payload[0] = 2;
  return payload;
}

function endMessage(count) {
  const end = new Uint8Array(8);
  end[0] = 3;
  new DataView(end.buffer).setUint32(4, count, true);
  return end;
}

if (mode === 'zeromq') {
  const zmq = await import('zeromq');
  const curve = process.env.IMPROV_BENCH_CURVE ? JSON.parse(process.env.IMPROV_BENCH_CURVE) : undefined;
  const keys = curve
    ? { curveServerKey: curve.serverKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey }
    : {};
  const pull = new zmq.Pull({ linger: 0, ...keys });
  const push = new zmq.Push({ linger: 0, sendHighWaterMark: 1000, ...keys });
  pull.connect(rest[0]);
  push.connect(rest[1]);
  for await (const [message] of pull) {
    if (message[0] === 1) await push.send(message);
    else if (message[0] === 2) {
      const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
      const payload = floodPayload(view.getUint32(4, true));
      const until = performance.now() + view.getUint32(8, true);
      let count = 0;
      while (performance.now() < until) {
        for (let burst = 0; burst < 64; burst++) await push.send(payload);
        count += 64;
      }
      await push.send(endMessage(count));
    } else if (message[0] === 0) break;
  }
  pull.close();
  push.close();
} else if (mode === 'tcp' || mode === 'unix') {
  const socket =
    mode === 'unix' ? net.connect({ path: rest[0] }) : net.connect(Number(rest[0]), rest[1] ?? '127.0.0.1');
  socket.setNoDelay(true);
  const write = (payload) =>
    new Promise((resolve) => {
      const framed = Buffer.allocUnsafe(4 + payload.byteLength);
      framed.writeUInt32LE(payload.byteLength, 0);
      framed.set(payload, 4);
      if (socket.write(framed)) resolve();
      else socket.once('drain', resolve);
    });
  // Chunks are kept until a whole frame is there, then joined once (no copying per chunk).
  let chunks = [];
  let buffered = 0;
  let busy = Promise.resolve();
  socket.on('data', (chunk) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (buffered < 4) break;
      const head = chunks[0].length >= 4 ? chunks[0] : Buffer.concat(chunks);
      const length = head.readUInt32LE(0);
      if (buffered < 4 + length) break;
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const copy = new Uint8Array(all.subarray(4, 4 + length));
      const rest = all.subarray(4 + length);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      busy = busy.then(async () => {
        if (copy[0] === 1) await write(copy);
        else if (copy[0] === 2) {
          const view = new DataView(copy.buffer);
          const payload = floodPayload(view.getUint32(4, true));
          const until = performance.now() + view.getUint32(8, true);
          let count = 0;
          while (performance.now() < until) {
            for (let burst = 0; burst < 64; burst++) await write(payload);
            count += 64;
          }
          await write(endMessage(count));
        } else if (copy[0] === 0) socket.end();
      });
    }
  });
  socket.on('error', () => process.exit(1));
} else {
  console.error('usage: net-peer.mjs zeromq <push-address> <pull-address> | tcp <port> [<host>] | unix <path>');
  process.exit(2);
}
