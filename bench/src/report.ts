/**
 * What a bench run prints and writes: Markdown tables (every pipeline figure beside its baseline
 * and as a ratio), the targets with where we stand, and the dora-benchmark CSV. A run on the lmdb or
 * redis store also sets its rows beside the store's own client library (measured in the same run)
 * and, for redis, beside improv's (Python) published figures.
 * @module
 */

import { label, mib, perS, signed, us, x } from './format.ts';
import { type BenchResults, type PipelineRow, type Rate, storeOf, transportOf } from './results.ts';
import type { LatencySummary } from './stats.ts';

/**
 * improv's (Python) own published figures for its Redis store: one-way p50 latency and the most
 * messages per second, by payload size. A fixed reference measured elsewhere (other hardware, other
 * conditions) — copied, never computed by this bench.
 */
export const IMPROV_PYTHON_REDIS: readonly { size: number; p50Us: number; msgsPerS: number }[] = [
  { size: 8, p50Us: 4177, msgsPerS: 5743 },
  { size: 4096, p50Us: 3309, msgsPerS: 3811 },
  { size: 65_536, p50Us: 6406, msgsPerS: 374 },
  { size: 1_048_576, p50Us: 49_832, msgsPerS: 25 },
  { size: 4_194_304, p50Us: 193_646, msgsPerS: 6 },
];
/** The zmq transport's goals: a hop within this many times raw zeromq's one way (p50)... */
export const ZMQ_LATENCY_GOAL = 1.5;
/** ...at least this share of raw zeromq's throughput... */
export const ZMQ_THROUGHPUT_GOAL = 0.7;
/** ...and this many times improv (Python)'s published figures, up to 64 KiB. */
export const ZMQ_IMPROV_GOAL = 100;
/** The redis store's goal: this many times improv's (Python) Redis throughput at 1 MiB and 4 MiB. */
export const REDIS_THROUGHPUT_GOAL = 20;
/** `--placement python`'s goal: a TypeScript → Python hop moves this many times improv's msgs/s, at every size. */
export const IMPROV_PYTHON_GOAL = 20;
/** The paths of a Python run's hop held to that goal, in table order (`put → delete` reads nothing). */
const PYTHON_PATHS: readonly PipelineRow['path'][] = ['put', 'allocate', 'inline'];

/** What a path does, in the tables. */
export const pathNames: Record<PipelineRow['path'], string> = {
  put: 'put',
  allocate: 'allocate',
  inline: 'inline',
  'put-delete': 'put → delete',
};

/** The figure a pipeline row is held against. */
export interface Baseline {
  name: string;
  p50: number;
}

/**
 * The floor of a row: one raw ring hop per hop of the row, plus one memcpy of the payload when the
 * path copies it (`put` copies into the store once, `inline` into the ring); `allocate` copies
 * nothing, and relays pass keys on without copying.
 */
export function floorOf(results: BenchResults, row: Pick<PipelineRow, 'path' | 'size' | 'hops'>): Baseline {
  const ring = results.ring.latency.p50 * row.hops;
  const hops = row.hops === 1 ? 'ring' : `${row.hops} × ring`;
  // A copying store writes an allocated frame into the store at flush: one copy after all.
  if (row.path === 'allocate' && results.store?.zeroCopy !== false) return { name: hops, p50: ring };
  const copy = results.memcpy.find((entry) => entry.size === row.size)?.us ?? 0;
  return { name: `${hops} + memcpy`, p50: ring + copy };
}

/**
 * RSS growth over the soak once warm: from the first sample a quarter of the way in (JIT and heap
 * sizing are done by then) to the end. Growth from the first second is reported beside it.
 */
export function steadyGrowth(soak: BenchResults['soak']): { fromBytes: number; fromSeconds: number; percent: number } {
  const from = soak.samples.find((sample) => sample.t >= soak.seconds / 4) ?? soak.samples[0];
  if (from === undefined) return { fromBytes: soak.rssStartBytes, fromSeconds: 1, percent: soak.rssGrowthPercent };
  return {
    fromBytes: from.rssBytes,
    fromSeconds: from.t,
    percent: ((soak.rssEndBytes - from.rssBytes) / from.rssBytes) * 100,
  };
}

/** One target, with what was measured. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** Measured / goal for "at most" goals, goal / measured for "at least" goals: ≤ 1 is met. */
  ratio: number;
  met: boolean;
}

/** The targets of the bench (goals to measure against, not assertions). */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const pair = (path: string, size: number) =>
    results.pipeline.find((row) => row.topology === 'pair' && row.path === path && row.size === size);
  const atMost = (target: string, measured: number, goal: number, text: string) =>
    checks.push({ target, measured: text, ratio: measured / goal, met: measured <= goal });
  const atLeast = (target: string, measured: number, goal: number, text: string) =>
    checks.push({ target, measured: text, ratio: goal / measured, met: measured >= goal });
  const store = storeOf(results);
  const memory = store === 'memory';
  const smallest = Math.min(...results.pipeline.filter((row) => row.path !== 'put-delete').map((row) => row.size));
  const port = results.port.find((row) => row.size === smallest);
  const python = results.transport?.python;
  // The latency and throughput goals of put and allocate are the memory store's; a copying store has
  // its own below. A Python sink's hop is held to improv's figures instead (below).
  for (const path of python !== undefined ? [] : memory ? ['put', 'allocate', 'inline'] : ['inline']) {
    const row = pair(path, smallest);
    if (row === undefined) continue;
    const ring = results.ring.latency.p50;
    atMost(
      `${label(smallest)} hop p50 via ${path} ≤ 1.5× raw ring`,
      row.latency.p50,
      1.5 * ring,
      `${us(row.latency.p50)} µs = ${x(row.latency.p50 / ring)} ring (${us(ring)} µs)`,
    );
    atLeast(
      `${label(smallest)} throughput via ${path} ≥ 1 M msgs/s`,
      row.throughput.msgsPerS,
      1e6,
      `${perS(row.throughput.msgsPerS)} msgs/s`,
    );
    if (port !== undefined) {
      atLeast(
        `${label(smallest)} throughput via ${path} ≥ 2× raw MessagePort`,
        row.throughput.msgsPerS,
        2 * port.throughput.msgsPerS,
        `${x(row.throughput.msgsPerS / port.throughput.msgsPerS)} MessagePort (${perS(port.throughput.msgsPerS)} msgs/s)`,
      );
    }
  }
  const churn = pair('put-delete', 8);
  if (memory && churn !== undefined) {
    atLeast(
      '8 B put → key over a link → delete on another worker ≥ 1 M msgs/s',
      churn.throughput.msgsPerS,
      1e6,
      `${perS(churn.throughput.msgsPerS)} msgs/s = ${x(churn.throughput.msgsPerS / results.ring.throughput.msgsPerS)} raw ring (${perS(results.ring.throughput.msgsPerS)} msgs/s)`,
    );
  }
  const frame = pair('put', 4_194_304);
  // Its floor is a TypeScript copy and ring hop; a Python sink's hop is held to improv's figures below.
  if (frame !== undefined && store !== 'redis' && python === undefined) {
    const floor = floorOf(results, frame).p50;
    const times = memory ? 1.5 : 2;
    atMost(
      `${memory ? '' : `${store} `}4 MiB hop p50 via put ≤ ${times}× (memcpy 4 MiB + ring hop)`,
      frame.latency.p50,
      times * floor,
      `${us(frame.latency.p50)} µs = ${x(frame.latency.p50 / floor)} (${us(floor)} µs)`,
    );
  }
  if (store === 'redis') {
    for (const reference of IMPROV_PYTHON_REDIS.filter((entry) => entry.size >= 1_048_576)) {
      const row = pair('put', reference.size);
      if (row === undefined) continue;
      atLeast(
        `redis ${label(reference.size)} throughput via put ≥ ${REDIS_THROUGHPUT_GOAL}× improv (Python) Redis (${reference.msgsPerS} msgs/s, published)`,
        row.throughput.msgsPerS,
        REDIS_THROUGHPUT_GOAL * reference.msgsPerS,
        `${perS(row.throughput.msgsPerS)} msgs/s = ${x(row.throughput.msgsPerS / reference.msgsPerS)} improv's ${reference.msgsPerS}`,
      );
    }
  }
  if (python !== undefined) {
    for (const row of pythonRows(results)) {
      const reference = python.improv.find((entry) => entry.size === row.size);
      if (reference === undefined) continue;
      atLeast(
        `TypeScript → Python ${label(row.size)} via ${pathNames[row.path]} ≥ ${python.improvGoal}× improv (Python)'s ${reference.msgsPerS.toLocaleString('en-US')} msgs/s`,
        row.throughput.msgsPerS,
        python.improvGoal * reference.msgsPerS,
        `${perS(row.throughput.msgsPerS)} msgs/s = ${x(row.throughput.msgsPerS / reference.msgsPerS)} improv`,
      );
    }
  }
  const small = pair('allocate', smallest);
  const largest = Math.max(...results.pipeline.filter((row) => row.path === 'allocate').map((row) => row.size));
  const big = pair('allocate', largest);
  if (memory && small !== undefined && big !== undefined && big !== small) {
    atMost(
      `allocate flat in size: ${label(largest)} p50 ≤ 2× ${label(smallest)} p50`,
      big.latency.p50,
      2 * small.latency.p50,
      `${us(big.latency.p50)} µs = ${x(big.latency.p50 / small.latency.p50)} ${label(smallest)} (${us(small.latency.p50)} µs)`,
    );
  }
  atMost('idle pipeline < 1% CPU', results.idle.cpuPercent, 1, `${results.idle.cpuPercent.toFixed(2)}% of one core`);
  const steady = steadyGrowth(results.soak);
  atMost(
    `RSS growth < 5% over the ${results.soak.seconds} s soak, once warm`,
    Math.max(steady.percent, 0),
    5,
    `${signed(steady.percent)}% from ${Math.round(steady.fromSeconds)} s (${mib(steady.fromBytes)} → ${mib(results.soak.rssEndBytes)} MiB); ${signed(results.soak.rssGrowthPercent)}% from 1 s`,
  );
  return checks;
}

/** The whole report of one run, as Markdown. */
export function renderReport(results: BenchResults): string {
  const out: string[] = [];
  out.push(
    `## improv bench: ${results.runtime.name} ${results.runtime.version}, ${storeOf(results)} store${results.quick ? ' (quick)' : ''}`,
  );
  out.push('');
  out.push(
    `${results.date.slice(0, 16).replace('T', ' ')} UTC · ${results.platform.os} · ${results.platform.cpu} × ${results.platform.cores} · ` +
      `${results.settings.latencyMessages} paced messages per latency row at ${1e6 / results.settings.intervalUs} Hz · ` +
      `${results.settings.throughputSeconds} s per throughput row · links of ${results.settings.capacitySmall} messages (${results.settings.capacityLarge} from 1 MiB) · ${Math.round(results.elapsedSeconds)} s in all`,
  );
  out.push('');
  out.push(`Store: **${storeOf(results)}**${results.store ? ` — ${results.store.detail}` : ''}.`);
  out.push('');
  if (results.transport) {
    out.push(`Links: **${results.transport.name}** — ${results.transport.detail}.`);
    out.push('');
    if (results.transport.placement === 'process') {
      out.push('Actors: **each in an OS process of its own** (`method: process`), not workers of one process.');
      out.push('');
    }
    const python = results.transport.python;
    if (results.transport.placement === 'python' && python !== undefined) {
      out.push(
        `Actors: **a TypeScript source, a Python sink** — ${python.detail}. Interpreter: ${python.interpreter} (Python ${python.baseline.python}, pyzmq ${python.baseline.pyzmq}, libzmq ${python.baseline.libzmq}). Only the pair runs (the hop into Python); CPU per message counts the bench's process and the Python sink's.`,
      );
      out.push('');
    }
    const hosts = results.transport.hosts;
    if (results.transport.placement === 'hosts' && hosts !== undefined) {
      out.push(
        `Actors: **on two hosts** — the source on host ${hosts.source.name}, ${hosts.source.address}, the sink on host ${hosts.sink.name}, ${hosts.sink.address} (\`host:\`, each a process its host's agent started): ${hosts.detail}, ${hosts.nexusAddress}. Only the pair runs (the hop between two hosts).`,
      );
      out.push('');
      out.push(
        `Raw network baselines: ${hosts.baselinePath} — not host a ↔ host b: the baseline measures in the bench's own process (it keeps the clock), so one end is the root namespace. Both paths cross the bridge.`,
      );
      out.push('');
    }
  }
  const sections = [
    renderBaselines(results),
    renderNetBaselines(results),
    renderZmqVersus(results),
    renderPython(results),
    renderStoreBaseline(results),
    renderLatency(results),
    renderThroughput(results),
    renderPutDelete(results),
    renderImprovRedis(results),
    renderTopologies(results),
    renderResources(results),
    renderTargets(results),
  ];
  out.push(...sections.filter((section) => section !== ''));
  return out.join('\n');
}

export function renderBaselines(results: BenchResults): string {
  const ring = results.ring;
  const lines = [
    '### Baselines (same run)',
    '',
    '| baseline | avg µs | p50 µs | p90 µs | p99 µs | p99.9 µs | msgs/s |',
    '|---|--:|--:|--:|--:|--:|--:|',
    `| raw SAB ring, one hop, spin ${results.settings.spinIterations} then sleep | ${latencyCells(ring.latency)} | ${perS(ring.throughput.msgsPerS)} |`,
  ];
  for (const row of results.port) {
    lines.push(
      `| raw MessagePort ${label(row.size)}, one way (ping-pong) | ${latencyCells(row.latency)} | ${perS(row.throughput.msgsPerS)} |`,
    );
  }
  lines.push('');
  lines.push(`| memcpy into a SharedArrayBuffer | ${results.memcpy.map((row) => label(row.size)).join(' | ')} |`);
  lines.push(`|---|${results.memcpy.map(() => '--:').join('|')}|`);
  lines.push(`| µs per copy | ${results.memcpy.map((row) => us(row.us)).join(' | ')} |`);
  lines.push(`| GB/s | ${results.memcpy.map((row) => row.gbPerS.toFixed(1)).join(' | ')} |`);
  lines.push('');
  return lines.join('\n');
}

export function renderLatency(results: BenchResults): string {
  const lines = [
    '### One hop through the pipeline, paced at 1 kHz: latency (µs)',
    '',
    `Source actor → store → link → sink actor, ${whereActors(results)}; from just before the producer`,
    'starts on a frame to the sink holding it, one frame every millisecond (slower where the path copies',
    'the payload and one copy takes over half of that; on a copying store, at least twice the time a message',
    'takes flat out, for at most ~12 s a row). "× n": the row paced n messages, not the run\'s setting. Floor: the',
    'raw ring hop, plus one memcpy of the payload for the paths that copy it. MessagePort: the same payload, paced',
    'ping-pong, one way.',
    '',
    '| size | path | paced every | avg | p50 | p90 | p99 | p99.9 | floor p50 | × floor | MessagePort p50 | × MessagePort |',
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of pairRows(results)) {
    const floor = floorOf(results, row);
    const port = results.port.find((entry) => entry.size === row.size);
    lines.push(
      `| ${label(row.size)} | ${pathNames[row.path]} | ${paced(results, row)} | ${latencyCells(row.latency)} | ${us(floor.p50)} | ${x(row.latency.p50 / floor.p50)} | ` +
        `${port ? us(port.latency.p50) : '–'} | ${port ? x(row.latency.p50 / port.latency.p50) : '–'} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

export function renderThroughput(results: BenchResults): string {
  const lines = [
    '### One link, producer unthrottled: throughput',
    '',
    '| size | path | msgs/s | MB/s | CPU µs/msg | MessagePort msgs/s | × MessagePort | × raw ring |',
    '|--:|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const row of pairRows(results)) {
    const port = results.port.find((entry) => entry.size === row.size);
    lines.push(
      `| ${label(row.size)} | ${pathNames[row.path]} | ${rateCells(row.throughput)} | ${port ? perS(port.throughput.msgsPerS) : '–'} | ` +
        `${port ? x(row.throughput.msgsPerS / port.throughput.msgsPerS) : '–'} | ${x(row.throughput.msgsPerS / results.ring.throughput.msgsPerS)} |`,
    );
  }
  lines.push('');
  lines.push(
    results.store?.zeroCopy === false
      ? '`allocate` MB/s counts frames handed over; this store copies each into itself at flush.'
      : '`allocate` MB/s counts frames handed over in place, not bytes copied (nothing is copied).',
  );
  lines.push(
    '`put → delete`: the source puts a new 8-byte array and sends its key; the sink deletes the key without reading it.',
  );
  if (storeOf(results) === 'redis') {
    lines.push('CPU µs/msg counts this process only, not the redis-server process.');
  }
  lines.push('');
  return lines.join('\n');
}

/** A copying store's rows beside its own client library, memcpy and the ring hop. */
export function renderStoreBaseline(results: BenchResults): string {
  const baseline = results.store?.baseline;
  if (baseline === undefined || baseline.rows.length === 0) return '';
  const store = storeOf(results);
  const lines = [
    `### ${store} by itself (same run)`,
    '',
    `Raw: ${baseline.name}; the same payload, one key overwritten, pairs back to back (at most ~12 s of timed pairs a size; pairs/s: flat out).`,
    `Floor: one memcpy of the payload and one raw ring hop, as for the memory store. Pipeline: a pair's \`put\` hop on the ${store} store.`,
    '',
    `| size | timed pairs | raw put p50 µs | raw get p50 µs | raw put+get p50 µs | raw put+get p99 µs | raw pairs/s | floor (memcpy + ring) p50 µs | raw ÷ floor | pipeline put p50 µs | pipeline ÷ raw | pipeline ÷ floor | pipeline msgs/s | × raw pairs/s |`,
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const raw of baseline.rows) {
    const floor = floorOf(results, { path: 'put', size: raw.size, hops: 1 }).p50;
    const row = results.pipeline.find(
      (entry) => entry.topology === 'pair' && entry.path === 'put' && entry.size === raw.size,
    );
    lines.push(
      `| ${label(raw.size)} | ${raw.putGet.n} | ${us(raw.put.p50)} | ${us(raw.get.p50)} | ${us(raw.putGet.p50)} | ${us(raw.putGet.p99)} | ${perS(raw.throughput.msgsPerS)} | ` +
        `${us(floor)} | ${x(raw.putGet.p50 / floor)} | ` +
        (row === undefined
          ? '– | – | – | – | – |'
          : `${us(row.latency.p50)} | ${x(row.latency.p50 / raw.putGet.p50)} | ${x(row.latency.p50 / floor)} | ${perS(row.throughput.msgsPerS)} | ${x(row.throughput.msgsPerS / raw.throughput.msgsPerS)} |`),
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** The store's allocator hot spot: 8 B put on one worker, the key over a link, delete on another. */
export function renderPutDelete(results: BenchResults): string {
  const churn = results.pipeline.find((row) => row.topology === 'pair' && row.path === 'put-delete');
  if (churn === undefined) return '';
  const read = results.pipeline.find((row) => row.topology === 'pair' && row.path === 'put' && row.size === churn.size);
  const ring = results.ring.throughput.msgsPerS;
  const lines = [
    results.transport?.placement === 'hosts'
      ? `### Store allocator hot spot: ${label(churn.size)} put on host a → key over a link → delete on host b`
      : results.transport?.placement === 'python'
        ? `### Store allocator hot spot: ${label(churn.size)} put in TypeScript → key over a link → delete in Python`
        : `### Store allocator hot spot: ${label(churn.size)} put → key over a ring → delete on the other worker`,
    '',
    `The source actor \`store.put\`s a new \`Uint8Array(${churn.size})\` and sends its key over a link; the sink actor, in another`,
    `${results.transport?.placement === 'hosts' ? 'process on host b' : results.transport?.placement === 'python' ? 'process (Python)' : 'worker'}, deletes the key (without reading the value). Producer unthrottled; the raw ring moves 16-byte records and`,
    `no store.${storeOf(results) === 'memory' ? ' Target (memory store): ≥ 1 M msgs/s.' : ''}`,
    '',
    '| row | msgs/s | CPU µs/msg | raw ring msgs/s | × raw ring | p50 µs paced |',
    '|---|--:|--:|--:|--:|--:|',
    `| ${label(churn.size)} put → delete | ${perS(churn.throughput.msgsPerS)} | ${churn.throughput.cpuUsPerMsg.toFixed(2)} | ${perS(ring)} | ${x(churn.throughput.msgsPerS / ring)} | ${us(churn.latency.p50)} |`,
  ];
  if (read !== undefined) {
    lines.push(
      `| ${label(read.size)} put → get, check → delete (the \`put\` row) | ${perS(read.throughput.msgsPerS)} | ${read.throughput.cpuUsPerMsg.toFixed(2)} | ${perS(ring)} | ${x(read.throughput.msgsPerS / ring)} | ${us(read.latency.p50)} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** A redis run beside improv's (Python) published Redis figures (a fixed reference, not measured here). */
export function renderImprovRedis(results: BenchResults): string {
  if (storeOf(results) !== 'redis') return '';
  const lines = [
    "### Beside improv (Python)'s Redis store — published reference, not measured in this run",
    '',
    "The improv columns are improv's own published figures for its Redis store (one-way p50, most msgs/s), measured",
    'elsewhere on other hardware and copied here as they are; only the improv-ts columns come from this run (a pair,',
    `\`put\` path). Target: ≥ ${REDIS_THROUGHPUT_GOAL}× improv's throughput at 1 MiB and 4 MiB.`,
    '',
    '| size | improv Redis p50 µs (published) | improv max msgs/s (published) | improv-ts redis p50 µs | improv p50 ÷ ours | improv-ts redis msgs/s | × improv msgs/s |',
    '|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const reference of IMPROV_PYTHON_REDIS) {
    const row = results.pipeline.find(
      (entry) => entry.topology === 'pair' && entry.path === 'put' && entry.size === reference.size,
    );
    lines.push(
      `| ${label(reference.size)} | ${reference.p50Us.toLocaleString('en-US')} | ${reference.msgsPerS.toLocaleString('en-US')} | ` +
        (row === undefined
          ? '– | – | – | – |'
          : `${us(row.latency.p50)} | ${x(reference.p50Us / row.latency.p50)} | ${perS(row.throughput.msgsPerS)} | ${x(row.throughput.msgsPerS / reference.msgsPerS)} |`),
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** Raw zeromq.js and raw TCP between two processes, measured in the same run (`--transport zmq`). */
export function renderNetBaselines(results: BenchResults): string {
  if (!results.transport || results.transport.baselines.length === 0) return '';
  const lines = [
    '### Network baselines (same run)',
    '',
    results.transport.placement === 'hosts'
      ? 'Between this process (root namespace) and a second one on host b, over the bridge, no improv: one way is half a round trip paced at'
      : 'Between this process and a second one, over loopback, no improv: one way is half a round trip paced at',
    '1 kHz (the peer echoes); msgs/s is the peer sending flat out, held back only by the socket.',
    '',
    '| baseline | size | one way p50 µs | p99 µs | msgs/s | MB/s |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  for (const baseline of results.transport.baselines) {
    for (const row of baseline.rows) {
      lines.push(
        `| ${baseline.detail} | ${label(row.size)} | ${us(row.oneWay.p50)} | ${us(row.oneWay.p99)} | ${perS(row.msgsPerS)} | ${row.mbPerS.toFixed(1)} |`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}

/**
 * The zmq pair's rows (inline up to 4 KiB, then `put`: the link carries the key) beside raw zeromq
 * at the same size, and beside improv (Python)'s published figures.
 */
export function renderZmqVersus(results: BenchResults): string {
  // A Python sink's hop has its own table, beside raw pyzmq (renderPython).
  if (transportOf(results) !== 'zmq' || !results.transport || results.transport.placement === 'python') return '';
  const zeromq = results.transport.baselines.find((baseline) => baseline.name === 'zeromq');
  const lines = [
    '### zmq links beside raw zeromq.js and improv (Python)',
    '',
    `One hop through the pipeline over a zmq link (${zmqHop(results.transport)}), the \`inline\` path up to 4 KiB`,
    `(the payload travels in the message) and \`put\` above (the link carries the store key). Targets: p50 ≤`,
    `${ZMQ_LATENCY_GOAL}× raw zeromq, throughput ≥ ${ZMQ_THROUGHPUT_GOAL}× raw zeromq, ≥ ${ZMQ_IMPROV_GOAL}× improv (Python)'s published`,
    'figures (copied, not measured here: one-way p50 and most msgs/s of its ZeroMQ links with its Redis store).',
    '',
    '| size | path | zmq hop p50 µs | raw zeromq p50 µs | × raw | zmq msgs/s | raw zeromq msgs/s | × raw | improv p50 ÷ ours | × improv msgs/s |',
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const sizes = [...new Set(results.pipeline.filter((row) => row.topology === 'pair').map((row) => row.size))];
  for (const size of sizes.sort((a, b) => a - b)) {
    const path = size <= 4096 ? 'inline' : 'put';
    const row = results.pipeline.find(
      (entry) => entry.topology === 'pair' && entry.path === path && entry.size === size,
    );
    if (row === undefined) continue;
    const raw = zeromq?.rows.find((entry) => entry.size === size);
    const improv = IMPROV_PYTHON_REDIS.find((entry) => entry.size === size && size <= 65_536);
    lines.push(
      `| ${label(size)} | ${path} | ${us(row.latency.p50)} | ${raw ? us(raw.oneWay.p50) : '–'} | ${raw ? x(row.latency.p50 / raw.oneWay.p50) : '–'} | ` +
        `${perS(row.throughput.msgsPerS)} | ${raw ? perS(raw.msgsPerS) : '–'} | ${raw ? x(row.throughput.msgsPerS / raw.msgsPerS) : '–'} | ` +
        `${improv ? x(improv.p50Us / row.latency.p50) : '–'} | ${improv ? x(row.throughput.msgsPerS / improv.msgsPerS) : '–'} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** The pair's rows of a Python run that carry data (put, allocate, inline), by size. */
function pythonRows(results: BenchResults): PipelineRow[] {
  return pairRows(results).filter((row) => PYTHON_PATHS.includes(row.path));
}

/**
 * `--placement python`: the TypeScript → Python hop beside raw pyzmq (same run) and beside improv
 * (Python)'s reference figures, with the target (≥ 20× improv's msgs/s) row by row.
 */
export function renderPython(results: BenchResults): string {
  const python = results.transport?.python;
  if (results.transport?.placement !== 'python' || python === undefined) return '';
  const lines = [
    '### TypeScript → Python hop beside raw pyzmq (same run) and improv (Python)',
    '',
    `One hop: a TypeScript source actor (worker) → the ${storeOf(results)} store → a zmq link (ipc) → a Python sink actor`,
    '(improv_ts, a process of its own), which reads the value (`put`, `allocate`: `store.get`, a numpy array;',
    '`inline`: the payload came in the message), checks it and deletes it. p50/p99: one way, paced (as the tables',
    'below); msgs/s: the source unthrottled. Py CPU: µs of the Python process per message, flat out.',
    `Raw pyzmq: ${python.baseline.detail}; one way from the sender's stamp to the receive (one clock), msgs/s`,
    "flat out through the sockets' high-water mark (the links' capacity).",
    `improv: improv (Python)'s own figures, one-way p50 and most msgs/s (its Redis store, links and actors in`,
    'Python processes), a fixed reference measured before on this kind of machine — **not measured in this run**.',
    `Target: ≥ ${python.improvGoal}× improv's msgs/s at every size. improv's figures take each value through its store,`,
    'so `put` is the like-for-like row; `inline` carries the payload in the message and no store.',
    '',
    `| size | path | hop p50 µs | hop p99 µs | raw pyzmq p50 µs | × raw | msgs/s | Py CPU µs/msg | raw pyzmq msgs/s | × raw | improv p50 µs | improv p50 ÷ ours | improv msgs/s | × improv msgs/s | ≥ ${python.improvGoal}× improv |`,
    '|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const row of pythonRows(results)) {
    const raw = python.baseline.rows.find((entry) => entry.size === row.size);
    const improv = python.improv.find((entry) => entry.size === row.size);
    const times = improv === undefined ? undefined : row.throughput.msgsPerS / improv.msgsPerS;
    const verdict =
      times === undefined ? 'no improv figure' : times >= python.improvGoal ? '**met**' : `missed (${x(times)})`;
    const peer = row.throughput.peerCpuUsPerMsg;
    lines.push(
      `| ${label(row.size)} | ${pathNames[row.path]} | ${us(row.latency.p50)} | ${us(row.latency.p99)} | ` +
        `${raw ? us(raw.oneWay.p50) : '–'} | ${raw ? x(row.latency.p50 / raw.oneWay.p50) : '–'} | ` +
        `${perS(row.throughput.msgsPerS)} | ${peer === undefined ? '–' : peer.toFixed(1)} | ` +
        `${raw ? perS(raw.throughput.msgsPerS) : '–'} | ${raw ? x(row.throughput.msgsPerS / raw.throughput.msgsPerS) : '–'} | ` +
        `${improv ? improv.p50Us.toLocaleString('en-US') : '–'} | ${improv ? x(improv.p50Us / row.latency.p50) : '–'} | ` +
        `${improv ? improv.msgsPerS.toLocaleString('en-US') : '–'} | ${times === undefined ? '–' : x(times)} | ${verdict} |`,
    );
  }
  lines.push('');
  lines.push('Raw pyzmq by itself:');
  lines.push('');
  lines.push('| size | paced every | avg µs | p50 µs | p90 µs | p99 µs | p99.9 µs | msgs/s | MB/s | high-water mark |');
  lines.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const raw of python.baseline.rows) {
    lines.push(
      `| ${label(raw.size)} | ${raw.intervalUs / 1000} ms × ${raw.oneWay.n} | ${latencyCells(raw.oneWay)} | ${perS(raw.throughput.msgsPerS)} | ` +
        `${raw.throughput.mbPerS >= 100 ? raw.throughput.mbPerS.toFixed(0) : raw.throughput.mbPerS.toFixed(1)} | ${raw.highWaterMark} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

export function renderTopologies(results: BenchResults): string {
  const rows = results.pipeline.filter((row) => row.topology !== 'pair');
  if (rows.length === 0) return '';
  const lines = [
    '### Topologies (store.put)',
    '',
    '| topology | size | p50 µs | p99 µs | floor p50 µs | × floor | p50 per hop µs | msgs/s | MB/s | CPU µs/msg |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const names: Record<string, string> = {
    chain5: 'chain of 5 (4 hops)',
    fanout4: 'fan-out 1→4',
    fanin4: 'fan-in 4→1',
  };
  for (const row of rows) {
    const floor = floorOf(results, row).p50;
    lines.push(
      `| ${names[row.topology] ?? row.topology} | ${label(row.size)} | ${us(row.latency.p50)} | ${us(row.latency.p99)} | ${us(floor)} | ` +
        `${x(row.latency.p50 / floor)} | ${us(row.latency.p50 / row.hops)} | ${rateCells(row.throughput)} |`,
    );
  }
  lines.push('');
  lines.push(
    "Source to last sink. Floor: one raw ring hop per hop, plus one memcpy (the source's `put`; relays pass the key on).",
  );
  lines.push(
    'Fan-out: every sink reads every frame (latency over all four sinks; msgs/s counts each delivery). Fan-in: four',
  );
  lines.push('sources, each at the same pace or flat out; msgs/s is their sum.');
  lines.push('');
  return lines.join('\n');
}

export function renderResources(results: BenchResults): string {
  const soak = results.soak;
  const steady = steadyGrowth(soak);
  return [
    '### CPU and memory',
    '',
    '| figure | value |',
    '|---|--:|',
    `| idle pipeline after \`run\` (actors waiting for input), ${results.idle.seconds} s | ${results.idle.cpuPercent.toFixed(2)}% of one core |`,
    `| soak: ${soak.seconds} s of ${soak.rateHz} Hz × ${label(soak.frameBytes)} frames (put, ${results.transport?.placement === 'python' ? 'the Python sink' : 'sink'} deletes), ${soak.frames} frames | p50 ${us(soak.latency.p50)} µs, p99 ${us(soak.latency.p99)} µs |`,
    `| soak RSS after 1 s → end (max) | ${mib(soak.rssStartBytes)} → ${mib(soak.rssEndBytes)} MiB (${mib(soak.rssMaxBytes)}), ${signed(soak.rssGrowthPercent)}% |`,
    `| soak RSS once warm (from ${Math.round(steady.fromSeconds)} s) → end | ${mib(steady.fromBytes)} → ${mib(soak.rssEndBytes)} MiB, ${signed(steady.percent)}% |`,
    `| soak RSS every second, MiB | ${soak.samples.map((sample) => Math.round(sample.rssBytes / 1_048_576)).join(' ')} |`,
    `| soak store use: max, at the end | ${mib(soak.storeMaxBytes)} MiB, ${mib(soak.storeEndBytes)} MiB in ${soak.storeEndObjects} values |`,
    ...(soak.samples.some((sample) => sample.peerRssBytes !== undefined)
      ? [
          `| soak: RSS of the Python sink's process every second, MiB (not in the rows above) | ${soak.samples.map((sample) => (sample.peerRssBytes === undefined ? '–' : Math.round(sample.peerRssBytes / 1_048_576))).join(' ')} |`,
        ]
      : []),
    '',
  ].join('\n');
}

export function renderTargets(results: BenchResults): string {
  const lines = ['### Targets', '', '| target | measured | |', '|---|---|---|'];
  for (const check of checkTargets(results)) {
    lines.push(`| ${check.target} | ${check.measured} | ${check.met ? 'met' : `missed by ${x(check.ratio)}`} |`);
  }
  if (storeOf(results) !== 'memory') {
    lines.push('');
    lines.push(
      `The memory store's goals for \`put\` and \`allocate\` (hop ≤ 1.5× raw ring, ≥ 1 M msgs/s, allocate flat in size) are not checked on the ${storeOf(results)} store.`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

/** Rows in the dora-benchmark schema: `date, language, platform, name, size_bytes, avg_us, p50_us, p90_us, p99_us, n`. */
export function renderCsv(results: BenchResults): string {
  const lines = ['date,language,platform,name,size_bytes,avg_us,p50_us,p90_us,p99_us,n'];
  const head = `${results.date},typescript-${results.runtime.name},${results.platform.os}`;
  // Memory-store rows keep their names; another store's pipeline rows are prefixed with its name.
  const store = storeOf(results);
  // ...and a Python sink's rows with `python-`.
  const prefix = `${store === 'memory' ? '' : `${store}-`}${results.transport?.placement === 'python' ? 'python-' : ''}`;
  const latency = (name: string, size: number, summary: LatencySummary) =>
    lines.push(
      `${head},${name},${size},${f3(summary.avg)},${f3(summary.p50)},${f3(summary.p90)},${f3(summary.p99)},${summary.n}`,
    );
  // Throughput rows: avg_us is the time per message at the sustained rate; no percentiles.
  const rate = (name: string, size: number, value: Rate) =>
    lines.push(`${head},${name},${size},${f3(1e6 / value.msgsPerS)},,,,${value.messages}`);
  latency('baseline-ring-latency', 16, results.ring.latency);
  rate('baseline-ring-throughput', 16, results.ring.throughput);
  for (const row of results.port) {
    latency('baseline-messageport-latency', row.size, row.latency);
    rate('baseline-messageport-throughput', row.size, row.throughput);
  }
  for (const row of results.store?.baseline?.rows ?? []) {
    latency(`baseline-${store}-putget-latency`, row.size, row.putGet);
    rate(`baseline-${store}-putget-throughput`, row.size, row.throughput);
  }
  for (const row of results.transport?.python?.baseline.rows ?? []) {
    latency('baseline-pyzmq-latency', row.size, row.oneWay);
    rate('baseline-pyzmq-throughput', row.size, { ...row.throughput, cpuUsPerMsg: 0 });
  }
  for (const row of results.pipeline) {
    latency(`${prefix}${row.topology}-${row.path}-latency`, row.size, row.latency);
    rate(`${prefix}${row.topology}-${row.path}-throughput`, row.size, row.throughput);
  }
  latency(`${prefix}soak-put-latency`, results.soak.frameBytes, results.soak.latency);
  return `${lines.join('\n')}\n`;
}

/** Where the actors of a run were, for the latency table's heading text. */
function whereActors(results: BenchResults): string {
  const hosts = results.transport?.hosts;
  if (results.transport?.placement === 'hosts' && hosts !== undefined) {
    return `the source on host ${hosts.source.name}, the sink on host ${hosts.sink.name} (clocks of one machine)`;
  }
  if (results.transport?.placement === 'python') {
    return 'the source in a worker, the sink in a Python process (one clock: CLOCK_MONOTONIC)';
  }
  return `each in its own ${results.transport?.placement === 'process' ? 'process' : 'worker'}`;
}

/** The pair's zmq hop, in words. */
function zmqHop(transport: NonNullable<BenchResults['transport']>): string {
  if (transport.placement === 'hosts') return 'the source on host a, the sink on host b, tcp with CURVE';
  if (transport.placement === 'python') return 'a TypeScript worker → a Python process, ipc';
  return `${transport.placement === 'process' ? 'two actors, each in an OS process of its own' : 'two workers of one process'}, ipc`;
}

function pairRows(results: BenchResults): PipelineRow[] {
  const order = { put: 0, allocate: 1, inline: 2, 'put-delete': 3 };
  return results.pipeline
    .filter((row) => row.topology === 'pair')
    .sort((a, b) => a.size - b.size || order[a.path] - order[b.path]);
}

/** `1 ms`, or `4 ms × 300` when the row sent another number of paced messages than the run's setting. */
function paced(results: BenchResults, row: PipelineRow): string {
  const every = `${row.intervalUs / 1000} ms`;
  return row.latency.n === results.settings.latencyMessages ? every : `${every} × ${row.latency.n}`;
}

function latencyCells(summary: LatencySummary): string {
  return [summary.avg, summary.p50, summary.p90, summary.p99, summary.p999].map(us).join(' | ');
}

function rateCells(rate: Rate): string {
  return `${perS(rate.msgsPerS)} | ${rate.mbPerS >= 100 ? rate.mbPerS.toFixed(0) : rate.mbPerS.toFixed(1)} | ${rate.cpuUsPerMsg.toFixed(2)}`;
}

function f3(value: number): string {
  return value.toFixed(3);
}
