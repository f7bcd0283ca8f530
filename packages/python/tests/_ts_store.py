"""A store opened by the TypeScript driver (`@improv/store/lmdb` or `/redis`), for the store tests.

A small Node process (`node --import tsx`, from the repository root) opens the store, prints its
descriptor, then answers JSON lines on its stdin — its TypeScript client reading what Python
stored, or its `usage()` — until stdin closes, when it closes the store. Values are described as
JSON with tags for what JSON lacks (bigints, typed arrays, Map, Set, Date, non-finite numbers),
typed arrays by kind, shape and SHA-256 of their bytes.
"""

import json
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

HELPER = r"""
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';

const { driver, create, open, releaseEach } = JSON.parse(process.argv.at(-1));
const extra = {};
let store;
if (driver === 'lmdb') {
  const { createLmdbStore } = await import('./packages/store/src/lmdb.ts');
  store = await createLmdbStore(create).open(open);
} else {
  const { createRedisStore } = await import('./packages/store/src/redis.ts');
  const { scripts } = await import('./packages/store/src/_redis-scripts.ts');
  store = await createRedisStore(create).open(open);
  extra.scripts = Object.fromEntries(Object.entries(scripts).map(([name, script]) => [name, script.source]));
}
console.log(JSON.stringify({ descriptor: store.descriptor, ...extra }));

const hex = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
function tag(value) {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  if (value instanceof Date) return { $date: value.getTime() };
  if (ArrayBuffer.isView(value)) return { $array: value.constructor.name, hex: hex(value) };
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [tag(k), tag(v)]) };
  if (value instanceof Set) return { $set: [...value].map(tag) };
  if (Array.isArray(value)) return value.map(tag);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tag(v)]));
  }
  return value;
}

const client = store.client;
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line);
  let reply = {};
  try {
    if (request.op === 'array') {
      const { array, dtype, shape } = await client.getArray(request.key);
      const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
      reply = { dtype, shape, sha256: createHash('sha256').update(bytes).digest('hex') };
    } else if (request.op === 'value') {
      reply = { value: tag(await client.get(request.key)) };
    } else if (request.op === 'info') {
      reply = await client.info(request.key);
    } else if (request.op === 'usage') {
      reply = await client.usage();
    } else if (request.op === 'release') {
      await client.release();
    }
    if (releaseEach) await client.release();
  } catch (error) {
    reply = { error: error.name, message: error.message };
  }
  console.log(JSON.stringify(reply));
}
await store.close();
"""


def node_with_tsx():
    """Whether the TypeScript side can run here."""
    return shutil.which("node") is not None and (ROOT / "node_modules" / "tsx").is_dir()


class TsStore:
    """A store the TypeScript driver `driver` opened in a Node process, and its client there.

    `create`: the options of `createLmdbStore`/`createRedisStore`; `open`: those of `open()`;
    `release_each`: the TypeScript client ends its holds after every request.
    """

    def __init__(self, driver, create=None, open=None, release_each=False):
        self._stderr = tempfile.TemporaryFile()
        options = {"driver": driver, "create": create or {}, "open": open or {}, "releaseEach": release_each}
        self.process = subprocess.Popen(
            ["node", "--import", "tsx", "--input-type=module", "-e", HELPER, json.dumps(options)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        first = self._line()
        self.descriptor = first["descriptor"]
        self.scripts = first.get("scripts")

    def _line(self):
        # A guard against a hung helper (60 s), not a timing assertion.
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self._stderr.seek(0)
            raise RuntimeError(f"the TypeScript store process failed:\n{self._stderr.read().decode(errors='replace')}")
        return json.loads(line)

    def ask(self, op, key=None):
        """What the TypeScript client says of `key`: `array`, `value`, `info`; or `usage`, `release`."""
        self.process.stdin.write(json.dumps({"op": op, "key": key}) + "\n")
        self.process.stdin.flush()
        return self._line()

    def close(self):
        """Closes the store (the TypeScript run ends)."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._stderr.close()
