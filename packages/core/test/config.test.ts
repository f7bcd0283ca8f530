import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertConfig,
  type ConfigResult,
  configError,
  formatDiagnostic,
  formatDiagnostics,
  loadConfig,
  parseByteSize,
  parseConfig,
  resolveConfig,
  toLinkGraph,
} from '../src/config/load.ts';
import { ConfigError, type Diagnostic, type StoreName } from '../src/config/types.ts';
import type { RuntimeAdapter } from '../src/runtime/adapter.ts';
import { createNodeRuntime } from '../src/runtime/node.ts';

const adapter = createNodeRuntime();
const fixtures = fileURLToPath(new URL('./fixtures/config/', import.meta.url)).replace(/[\\/]$/, '');
const fixture = (...parts: string[]) => join(fixtures, ...parts);
const fileUrl = (...parts: string[]) => pathToFileURL(fixture(...parts)).href;

/** Strips the common indentation of a template literal, so YAML can be written indented in a test. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indents = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => /^ */.exec(line)![0].length);
  const indent = Math.min(...indents);
  return text
    .split('\n')
    .map((line) => line.slice(indent))
    .join('\n');
}

function check(
  text: string,
  options: { checkModules?: boolean; hostsLocal?: boolean; storeOverride?: StoreName } = {},
): Promise<ConfigResult> {
  return parseConfig(text, { file: fixture('inline.yaml'), adapter, ...options });
}

/** `line:column message` of every diagnostic of one severity. */
function list(result: ConfigResult, severity: Diagnostic['severity'] = 'error'): string[] {
  return result.diagnostics
    .filter((diagnostic) => diagnostic.severity === severity)
    .map((diagnostic) => `${diagnostic.line}:${diagnostic.column} ${diagnostic.message}`);
}

function only(result: ConfigResult, severity: Diagnostic['severity'] = 'error'): Diagnostic {
  const found = result.diagnostics.filter((diagnostic) => diagnostic.severity === severity);
  expect(found, list(result, severity).join('\n')).toHaveLength(1);
  return found[0]!;
}

/** Two valid actors, for cases about something else. Lines 1-7. */
const twoActors = yaml`
  actors:
    Generator:
      package: actors/generator.ts
      class: Generator
    Processor:
      package: actors/sample_processor.ts
      class: Processor
`;

describe('a valid config', () => {
  it('loads both connection forms into the expected PipelineConfig', async () => {
    const result = await loadConfig(fixture('good.yaml'), { adapter });
    expect(list(result)).toEqual([]);
    expect(list(result, 'warning')).toEqual([
      '14:5 actor "Processor": "daemon" is improv\'s daemon flag for actor processes; improv-ts ends every actor process with the pipeline, so it is ignored',
    ]);
    expect(result.config).toEqual({
      source: fixture('good.yaml'),
      baseDir: fixtures,
      hosts: [],
      settings: {
        storeSizeBytes: 512 * 1024 * 1024,
        signalTimeoutMs: 5000,
        importTimeoutMs: 10_000,
        store: {
          driver: 'memory',
          eviction: 'none',
          lmdb: { keep: false, sync: false },
          redis: { saving: false },
          origins: {
            store_size: { path: ['settings', 'store_size'], file: fixture('good.yaml'), line: 3, column: 15 },
          },
        },
        transport: { name: 'local', zmq: { protocol: 'ipc' }, origins: {} },
      },
      actors: [
        {
          name: 'Generator',
          package: 'actors/generator.ts',
          moduleUrl: fileUrl('actors/generator.ts'),
          className: 'Generator',
          options: { rate: 100 },
          onError: 'continue',
          restart: { policy: 'never', backoffMs: 1000, maxRestarts: 5 },
        },
        {
          name: 'Processor',
          package: 'actors.sample_processor',
          moduleUrl: fileUrl('actors/sample_processor.ts'),
          className: 'Processor',
          options: { threshold: 0.5 },
          onError: 'continue',
          restart: { policy: 'never', backoffMs: 1000, maxRestarts: 5 },
        },
        {
          name: 'Viewer',
          package: './actors/viewer',
          moduleUrl: fileUrl('actors/viewer.ts'),
          className: 'Viewer',
          options: {},
          onError: 'continue',
          restart: { policy: 'never', backoffMs: 1000, maxRestarts: 5 },
        },
        {
          name: 'Camera',
          package: 'actors/camera',
          moduleUrl: fileUrl('actors/camera/index.ts'),
          className: 'Camera',
          options: { shape: [512, 512] },
          onError: 'continue',
          restart: { policy: 'never', backoffMs: 1000, maxRestarts: 5 },
        },
      ],
      connections: [
        {
          name: 'Generator.q_out',
          sources: [{ actor: 'Generator', link: 'q_out' }],
          sinks: [
            { actor: 'Processor', link: 'q_in' },
            { actor: 'Viewer', link: 'q_in' },
          ],
          capacity: 1024,
          policy: 'block',
        },
        {
          name: 'Camera.q_out',
          sources: [{ actor: 'Camera', link: 'q_out' }],
          sinks: [{ actor: 'Processor', link: 'frames' }],
          capacity: 1024,
          policy: 'block',
        },
        {
          // Processor → Generator closes the loop Generator → Processor: cycles are allowed.
          name: 'feedback',
          sources: [{ actor: 'Processor', link: 'q_out' }],
          sinks: [{ actor: 'Generator', link: 'q_in' }],
          capacity: 64,
          policy: 'drop-oldest',
        },
      ],
    });
  });

  it('accepts a single actor without connections and uses the default store size', async () => {
    const result = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
      connections:
    `);
    expect(result.diagnostics).toEqual([]);
    expect(result.config?.settings.storeSizeBytes).toBe(256 * 1024 * 1024);
    expect(result.config?.connections).toEqual([]);
  });

  it('parses store_size as bytes or with a unit', async () => {
    const sizeOf = async (size: string) =>
      (await check(`settings:\n  store_size: ${size}\n${twoActors}`)).config?.settings.storeSizeBytes;
    expect(await sizeOf('1000000')).toBe(1_000_000);
    expect(await sizeOf('2GB')).toBe(2_000_000_000);
    expect(await sizeOf('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(await sizeOf('64kB')).toBe(64_000);
    expect(await sizeOf('"250_000_000"')).toBe(250_000_000);
    expect(parseByteSize('10 KiB')).toBe(10_240);
    expect(parseByteSize('3mib')).toBe(3 * 2 ** 20);
    expect(parseByteSize(4096)).toBe(4096);
    expect(() => parseByteSize('1.5B')).toThrow(RangeError);
    expect(() => parseByteSize(0)).toThrow('not a size in bytes');
    expect(() => parseByteSize('12 MiBs')).toThrow('unknown unit "MiBs" (did you mean "MiB"?)');
  });

  it('resolves a config given as an object', async () => {
    const result = await resolveConfig(
      {
        settings: { store_size: '1MiB' },
        actors: {
          Generator: { package: './actors/generator.ts', class: 'Generator', rate: 5 },
          Processor: { package: 'actors.sample_processor', class: 'Processor' },
        },
        connections: { 'Generator.q_out': 'Processor.q_in' },
      },
      { baseDir: fixtures, adapter },
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.config).toMatchObject({
      source: '<object>',
      baseDir: fixtures,
      settings: { storeSizeBytes: 2 ** 20 },
      actors: [
        { name: 'Generator', moduleUrl: fileUrl('actors/generator.ts'), options: { rate: 5 } },
        { name: 'Processor', moduleUrl: fileUrl('actors/sample_processor.ts'), options: {} },
      ],
      connections: [{ name: 'Generator.q_out', sinks: [{ actor: 'Processor', link: 'q_in' }] }],
    });
  });

  it('reports errors of an object config by path, without positions', async () => {
    const result = await resolveConfig(
      {
        actors: { Generator: { package: './actors/generator.ts' } },
        connections: { 'Generator.q_out': ['Viewer.q_in'] },
      },
      { baseDir: fixtures, adapter },
    );
    expect(result.config).toBeUndefined();
    expect(result.diagnostics.map(({ path, message, line, file }) => ({ path, message, line, file }))).toEqual([
      {
        path: ['actors', 'Generator', 'class'],
        message: 'actor "Generator" has no class',
        line: undefined,
        file: undefined,
      },
      {
        path: ['connections', 'Generator.q_out', 0],
        message: 'connection "Generator.q_out": endpoint "Viewer.q_in" names an unknown actor "Viewer"',
        line: undefined,
        file: undefined,
      },
    ]);
  });

  it('checks only that module files exist when checkModules is off', async () => {
    const result = await check(
      yaml`
        actors:
          Broken:
            package: actors/throws-on-import.ts
            class: NotEvenThere
      `,
      { checkModules: false },
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.config?.actors[0]?.moduleUrl).toBe(fileUrl('actors/throws-on-import.ts'));
  });
});

describe('improv configs', () => {
  it('with checkModules off checks only the YAML: actor files that do not exist yet are fine', async () => {
    const result = await check(
      yaml`
        actors:
          Acquirer:
            package: actors.1p_acquirer
            class: Acquirer
          Processor:
            package: actors/not_ported_yet.ts
            class: Processor
      `,
      { checkModules: false },
    );
    expect(result.diagnostics).toEqual([]);
    // improv's 1p demo: dotted parts may start with a digit.
    expect(result.config?.actors.map((actor) => actor.moduleUrl)).toEqual([
      fileUrl('actors/1p_acquirer.ts'),
      fileUrl('actors/not_ported_yet.ts'),
    ]);
  });

  it('warns about settings it does not know, but still refuses a misspelt known one', async () => {
    const result = await check(`settings:\n  not_relevant: for testing purposes\n  store_sise: 1MiB\n${twoActors}`);
    expect(list(result, 'warning')).toEqual(['2:3 unknown setting "not_relevant"; ignored']);
    expect(list(result)).toEqual(['3:3 unknown setting "store_sise"']);
  });

  it('names "modules" as the old actors section, and explains GUI actors', async () => {
    const old = await check('modules:\n  A:\n    package: actors/generator.ts\n    class: Generator\n');
    expect(list(old)).toContain('1:1 "modules" is what early improv versions called the actors section');
    const gui = await check(
      yaml`
        actors:
          GUI:
            package: actors/generator.ts
            class: Generator
            visual: Visual
          MyGUI:
            package: actors/generator.ts
            class: Generator
      `,
    );
    expect(list(gui, 'warning')).toEqual([
      expect.stringMatching(/^5:5 actor "GUI": "visual" is how improv's Qt GUI actor named the actor it shows/),
      expect.stringMatching(
        /^6:3 actor "MyGUI": improv treated an actor whose name contains "GUI" as its Qt front end/,
      ),
    ]);
    expect(gui.config?.actors[0]?.options).toEqual({ visual: 'Visual' });
  });
});

describe('YAML and top-level errors', () => {
  it('reports every YAML syntax error with its position', async () => {
    const result = await check('actors:\n  A: [unclosed\nconnections:\n\tB.q_out: [A.q_in]\n');
    // Only the syntax errors: checking the parser's guess at the structure would invent more.
    expect(list(result)).toEqual([
      expect.stringMatching(/^3:1 invalid YAML: Flow sequence .* end with a \]$/),
      '4:1 invalid YAML: Tabs are not allowed as indentation',
    ]);
    expect(result.diagnostics[0]?.fix).toBe(
      'close the [ with ] it opened above, or indent its continuation lines further',
    );
    expect(result.diagnostics[1]?.fix).toBe('indent with spaces; YAML does not allow tabs for indentation');
    expect(result.config).toBeUndefined();
  });

  it('reports an empty file', async () => {
    expect(list(await check(''))).toEqual(['1:1 the config file is empty']);
    expect(list(await check('# nothing here yet\n'))).toEqual(['1:1 the config file is empty']);
  });

  it('reports a top level that is not a mapping', async () => {
    expect(list(await check('- Generator\n- Processor\n'))).toEqual([
      '1:1 the config must be a mapping with "actors" (and optionally "settings" and "connections"), not a list',
    ]);
  });

  it('reports unknown top-level keys with a suggestion, and warns about improv store keys', async () => {
    const result = await check(`${twoActors}conections: {}\nredis_config:\n  port: 6379\n`);
    const error = only(result);
    expect(error).toMatchObject({ line: 8, column: 1, message: 'unknown top-level key "conections"' });
    expect(error.fix).toMatch(/^did you mean "connections"\?/);
    expect(list(result, 'warning')).toEqual([
      '9:1 "redis_config" configures a Redis store, but this pipeline uses the memory store (improv-ts\'s default)',
    ]);
    expect(result.config).toBeUndefined();
  });

  it("reads the store settings: store, store_eviction, lmdb, redis, and improv's redis_config", async () => {
    const lmdb = await check(
      `${twoActors}settings:\n  store: lmdb\n  store_eviction: oldest\n  lmdb: { path: data/run.lmdb, keep: true }\n`,
      { checkModules: false },
    );
    expect(lmdb.diagnostics).toEqual([]);
    expect(lmdb.config?.settings.store).toMatchObject({
      driver: 'lmdb',
      eviction: 'oldest',
      lmdb: { path: 'data/run.lmdb', keep: true, sync: false },
      origins: { store: { line: 9, column: 10 }, lmdb: { line: 11, column: 9 } },
    });
    const redis = await check(
      `${twoActors}settings:\n  store: redis\nredis_config:\n  port: 6380\n  fsync_frequency: every_second\n`,
      {
        checkModules: false,
      },
    );
    expect(redis.diagnostics).toEqual([]);
    expect(redis.config?.settings.store.redis).toEqual({ port: 6380, saving: true, fsync: 'everysec' });
    const address = await check(`${twoActors}settings:\n  store: redis\n  redis: { host: 127.0.0.1, port: 6379 }\n`, {
      checkModules: false,
    });
    expect(address.config?.settings.store.redis).toEqual({ host: '127.0.0.1', port: 6379, saving: false });
    const defaults = await check(twoActors, { checkModules: false });
    expect(defaults.config?.settings.store).toMatchObject({ driver: 'memory', eviction: 'none' });
  });

  it('reports bad store settings at their place, with the fix', async () => {
    const result = await check(
      `${twoActors}settings:\n  store: lmbd\n  store_eviction: lru\n  lmdb: { path: 3, kepp: true }\n  redis: { port: 70000, url: 'http://x' }\n`,
      { checkModules: false },
    );
    expect(list(result)).toEqual([
      '9:10 settings: store must be one of memory, lmdb, redis, not "lmbd"',
      '10:19 settings: store_eviction must be one of none, oldest, not "lru"',
      '11:17 settings: lmdb.path must be a folder path, not 3',
      '11:20 unknown key "kepp" in settings.lmdb',
      '12:18 settings.redis.port must be a port number from 1 to 65535, not 70000',
      '12:30 settings.redis.url must be a redis:// or rediss:// URL, not "http://x"',
    ]);
    expect(result.diagnostics[0]?.fix).toMatch(/did you mean "lmdb"\?/);
    expect(result.diagnostics[3]?.fix).toMatch(/did you mean "keep"\?/);
  });

  it("reads the transport settings and a connection's transport", async () => {
    const result = await check(
      `${twoActors}settings:\n  transport: zmq\n  zmq: { protocol: tcp, bind: 198.18.0.1, keys: keys/pipeline }\nconnections:\n  frames:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\n    transport: local\n`,
      { checkModules: false },
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.config?.settings.transport).toMatchObject({
      name: 'zmq',
      zmq: { protocol: 'tcp', bind: '198.18.0.1', keys: 'keys/pipeline' },
      origins: { transport: { line: 9, column: 14 }, 'zmq.keys': { line: 10, column: 49 } },
    });
    expect(result.config?.connections[0]?.transport).toBe('local');
    const defaults = await check(twoActors, { checkModules: false });
    expect(defaults.config?.settings.transport).toEqual({ name: 'local', zmq: { protocol: 'ipc' }, origins: {} });
  });

  it('reports bad transport settings at their place, with the fix', async () => {
    const result = await check(
      `${twoActors}settings:\n  transport: zeromq\n  zmq: { protocol: udp, bind: 'tcp://10.0.0.1:5555', kyes: x }\nconnections:\n  frames:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\n    transport: zmqq\n`,
      { checkModules: false },
    );
    expect(list(result)).toEqual([
      '9:14 settings: transport must be one of local, zmq, not "zeromq"',
      '10:20 settings: protocol must be one of ipc, tcp, not "udp"',
      '10:31 settings: zmq.bind must be an IP address of this host, "localhost" or "*" (every interface); "tcp://10.0.0.1:5555" is a whole address; give the host part only',
      '10:54 unknown key "kyes" in settings.zmq',
      '15:16 connection "frames": transport must be one of local, zmq, not "zmqq"',
    ]);
    expect(result.diagnostics[4]?.fix).toMatch(/did you mean "zmq"\?/);
    const split = await check(
      `${twoActors}connections:\n  a:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\n    transport: zmq\n  b:\n    sources: [Generator.q_two]\n    sinks: [Processor.q_in]\n`,
      { checkModules: false },
    );
    expect(list(split)).toEqual([
      '13:3 connection "b" puts Processor.q_in on the default (settings.transport), but connection "a" puts it on zmq; one link uses one transport',
    ]);
    const ipcBind = await check(`${twoActors}settings:\n  zmq: { bind: 198.18.0.1 }\n`, { checkModules: false });
    expect(list(ipcBind)).toEqual([
      '9:16 settings: zmq.bind 198.18.0.1 applies to tcp links only, but zmq.protocol is ipc',
    ]);
  });

  it('reports a missing, empty or malformed actors section', async () => {
    expect(list(await check('settings:\n  store_size: 1MiB\n'))).toEqual([
      '1:1 no actors: the config has no "actors" section',
    ]);
    expect(list(await check('connections:\nactors:\n'))).toEqual(['2:1 no actors: the "actors" section is empty']);
    expect(list(await check('actors: {}\n'))).toEqual(['1:1 no actors: the "actors" section is empty']);
    expect(list(await check('actors: [Generator, Processor]\n'))).toEqual([
      '1:9 "actors" must be a mapping from actor names to their package and class, not a list',
    ]);
  });

  it('reports duplicate keys at the second one, naming the key', async () => {
    const result = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          class: Generator
        Generator:
          package: actors/generator.ts
    `);
    expect(list(result)).toEqual([
      '5:5 duplicate key "class" in actors.Generator (first at line 4:5)',
      '6:3 duplicate key "Generator" in actors (first at line 2:3)',
    ]);
  });

  it('reports a duplicate key written as an alias, and points the value at the alias', async () => {
    const result = await check(yaml`
      actors:
        &g Generator:
          package: actors/generator.ts
          &c class: Generator
          *c : Nope
        *g :
          package: actors/nowhere.ts
    `);
    expect(list(result)).toEqual([
      '5:5 duplicate key "class" (written as an alias) in actors.Generator (first at line 4:8)',
      '6:3 duplicate key "Generator" (written as an alias) in actors (first at line 2:6)',
    ]);
  });

  it('points an alias that names no anchor, and a merge of a non-mapping, at the alias or merge value', async () => {
    const options = (lines: string) => `${twoActors}    options:\n${lines}`;
    const unresolved = only(await check(options('      gain: *gain\n')));
    expect(`${unresolved.line}:${unresolved.column} ${unresolved.message}`).toBe(
      '9:13 invalid YAML: the alias *gain names no anchor',
    );
    expect(unresolved.fix).toContain('&gain');
    const merge = only(await check(`base: &base 3\n${options('      <<: *base\n')}`));
    expect(`${merge.line}:${merge.column} ${merge.message}`).toBe(
      '10:11 invalid YAML: a merge key (<<) takes a mapping or a list of mappings (*base is the scalar "3")',
    );
    const inList = only(await check('base: &base { a: 1 }\nx:\n  <<: [*base, [1]]\n'));
    expect(`${inList.line}:${inList.column}`).toBe('3:15');
  });

  it('reports a NUL byte or another control character where it is, and a UTF-16 file as such', async () => {
    const nul = only(await check('actors:\n  A:\n    package: x\u0000.ts\n    class: A\n'));
    expect(`${nul.line}:${nul.column} ${nul.message}`).toBe(
      '3:15 invalid YAML: a NUL byte is not allowed in a YAML file',
    );
    expect(list(await check('actors:\n  A:\u001b[0m\n'))).toEqual([
      '2:5 invalid YAML: the control character U+001B is not allowed in a YAML file',
    ]);
    const utf16 = only(await check([...'actors: {}\n'].map((c) => `${c}\u0000`).join('')));
    expect(utf16.fix).toBe('the file looks like UTF-16: save it as UTF-8');
  });

  it('reports nesting too deep to be a config, where it starts, without overflowing the stack', async () => {
    const depth = 2000;
    const flow = only(await check(`${twoActors}    deep: ${'['.repeat(depth)}${']'.repeat(depth)}\n`));
    expect(flow.message).toBe('invalid YAML: nested more than 64 levels deep');
    expect(flow.line).toBe(8);
    let block = '';
    for (let level = 0; level < depth; level++) block += `${'  '.repeat(level + 3)}k:\n`;
    const blockResult = only(await check(`${twoActors}    deep:\n${block}`));
    expect(blockResult.message).toBe('invalid YAML: nested more than 64 levels deep');
    expect(blockResult.fix).toContain('at most 64 levels');
    // 60 levels of options are fine.
    let fine = '';
    for (let level = 0; level < 60; level++) fine += `${'  '.repeat(level + 3)}k:\n`;
    expect(list(await check(`${twoActors}    deep:\n${fine}`))).toEqual([]);
  });
});

describe('actor errors', () => {
  it('reports an actor that is not a mapping, and unusable names', async () => {
    const result = await check(yaml`
      actors:
        Generator: actors/generator.ts
        Gen.2:
          package: actors/generator.ts
          class: Generator
        My Actor:
          package: actors/generator.ts
          class: Generator
        Empty:
    `);
    expect(list(result)).toEqual([
      '2:14 actor "Generator" must be a mapping with package and class, not the string "actors/generator.ts"',
      '3:3 actor name "Gen.2" cannot be used: names may not be empty or contain "." or whitespace',
      '6:3 actor name "My Actor" cannot be used: names may not be empty or contain "." or whitespace',
      '9:3 actor "Empty" must be a mapping with package and class, not nothing',
    ]);
    expect(result.diagnostics[1]?.fix).toBe('rename it, e.g. "Gen_2", and use the new name in connections');
  });

  it('reports an actor name too long for its log file, at the name, with the limit', async () => {
    const long = 'L'.repeat(300);
    const result = await check(
      `actors:\n  ${long}:\n    package: actors/generator.ts\n    class: Generator\n  ${'é'.repeat(100)}:\n    package: actors/generator.ts\n    class: Generator\n  ${'L'.repeat(200)}:\n    package: actors/generator.ts\n    class: Generator\n`,
    );
    expect(list(result)).toEqual([
      `2:3 actor name "${'L'.repeat(24)}…" is too long: 300 bytes, at most 200 (UTF-8); its log file actors/<name>.log in the run folder needs a file name the file system can hold`,
    ]);
    expect(result.diagnostics[0]?.fix).toBe('shorten it to 200 bytes or fewer, and use the new name in connections');
  });

  it('reports a missing or non-string package and class', async () => {
    const result = await check(yaml`
      actors:
        Generator:
          class: Generator
        Processor:
          package: actors/sample_processor.ts
        Viewer:
          package: 42
          class: [Viewer]
    `);
    expect(list(result)).toEqual([
      '2:3 actor "Generator" has no package',
      '4:3 actor "Processor" has no class',
      '7:14 actor "Viewer": package must be a non-empty string, not number 42',
      '8:12 actor "Viewer": class must be a non-empty string, not a list',
    ]);
    expect(result.diagnostics[0]?.path).toEqual(['actors', 'Generator', 'package']);
  });

  it("warns about improv's daemon, and keeps it and method out of options", async () => {
    const result = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          method: fork
          daemon: false
          rate: 3
    `);
    expect(list(result, 'warning')).toEqual([
      '6:5 actor "Generator": "daemon" is improv\'s daemon flag for actor processes; improv-ts ends every actor process with the pipeline, so it is ignored',
    ]);
    expect(result.config?.actors[0]).toMatchObject({ options: { rate: 3 }, process: {} });
  });

  it('warns about an option a letter or two away from a key improv-ts reads, and still passes it on', async () => {
    const result = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          on_eror: fail
          methd: process
          rate: 3
    `);
    expect(list(result, 'warning')).toEqual([
      '5:5 actor "Generator": "on_eror" is passed to the actor as an option; did you mean "on_error"?',
      '6:5 actor "Generator": "methd" is passed to the actor as an option; did you mean "method"?',
    ]);
    expect(result.diagnostics[0]?.fix).toBe(
      'rename it to on_error, or keep it if the actor reads an option named on_eror',
    );
    expect(result.config?.actors[0]).toMatchObject({ options: { on_eror: 'fail', methd: 'process', rate: 3 } });
    expect(result.config?.actors[0]?.onError).toBe('continue');
  });

  it('takes max_heap_mb as the worker heap limit, out of options, and reports a bad one', async () => {
    const good = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          max_heap_mb: 512
          rate: 3
    `);
    expect(good.config?.actors[0]).toMatchObject({ maxHeapMb: 512, options: { rate: 3 } });
    const bad = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          max_heap_mb: lots
    `);
    expect(list(bad)).toEqual([expect.stringMatching(/^5:\d+ .*max_heap_mb must be a number of MiB, at least 16/)]);
  });

  it('reports a module that is not found, listing every path tried', async () => {
    const result = await check(yaml`
      actors:
        Processor:
          package: actors/proc
          class: Processor
        Exact:
          package: ./actors/proc.ts
          class: Exact
    `);
    const tried = ['.ts', '.mts', '.js', '.mjs', '/index.ts'].map((suffix) => fixture(`actors/proc${suffix}`));
    expect(list(result)).toEqual([
      `3:14 actor "Processor": module "actors/proc" not found (looked in ${tried.join(', ')}, and for an installed package "actors/proc")`,
      `6:14 actor "Exact": module "./actors/proc.ts" not found (looked in ${fixture('actors/proc.ts')})`,
    ]);
    expect(result.diagnostics[1]?.fix).toBe(
      `correct the path: relative packages start from the config file's folder, ${fixtures}`,
    );
  });

  it("reads improv's dotted form that names only a .py file as a Python actor, checked with settings.python", async () => {
    const result = await check(yaml`
      settings:
        python: /nonexistent/python3
      actors:
        Legacy:
          package: actors.legacy_processor
          class: Processor
    `);
    expect(list(result)).toEqual([
      '2:11 actor "Legacy" is a Python actor, but no Python interpreter "/nonexistent/python3" found',
    ]);
    expect(result.diagnostics[0]?.fix).toMatch(/install Python 3 with numpy, pyzmq and msgpack/);
  });

  it('warns that process: true is an option, not a placement', async () => {
    const result = await check(yaml`
      actors:
        Gen:
          package: actors/sample_generator.ts
          class: Generator
          process: true
    `);
    const warning = result.diagnostics.find((d) => d.severity === 'warning' && /process: true/.test(d.message));
    expect(warning?.message).toMatch(/it does not put the actor in a process of its own/);
    expect(warning?.fix).toMatch(/method: process/);
  });

  it("says where improv's dotted form was looked for, the Python file first", async () => {
    const result = await check(yaml`
      actors:
        Gone:
          package: actors.no_such_actor
          class: Processor
    `);
    expect(list(result)[0]).toMatch(
      /^3:14 actor "Gone": module "actors\.no_such_actor" not found \(looked in \S+\/actors\/no_such_actor\.py, \S+\/actors\/no_such_actor\.ts, /,
    );
    expect(result.diagnostics[0]?.fix).toMatch(
      /read as the file actors\/no_such_actor\.py \(a Python actor\) or actors\/no_such_actor\.ts/,
    );
  });

  it('falls back to an installed package for a bare name, and reports one that is not installed', async () => {
    const result = await check(yaml`
      actors:
        Parser:
          package: yaml
          class: parseDocument
        Lab:
          package: '@lab/improv-test-actors'
          class: Camera
    `);
    expect(list(result)).toEqual([
      '4:12 actor "Parser": export "parseDocument" of "yaml" is not an Actor class (it is a function or class that does not extend Actor)',
      expect.stringMatching(
        /^6:14 actor "Lab": module "@lab\/improv-test-actors" not found \(looked in .*, and for an installed package "@lab\/improv-test-actors"\)$/,
      ),
    ]);
  });

  it('reports a missing export with the module actor classes and a suggestion', async () => {
    const result = await check(yaml`
      actors:
        Viewer:
          package: actors/viewer.ts
          class: Veiwer
    `);
    const error = only(result);
    expect(error).toMatchObject({
      line: 4,
      column: 12,
      path: ['actors', 'Viewer', 'class'],
      message: 'actor "Viewer": module "actors/viewer.ts" has no export "Veiwer" (its actor classes: Viewer)',
      fix: 'did you mean "Viewer"?',
    });
  });

  it('reports an Actor class without runStep(), and points improv users at the spelling', async () => {
    const result = await check(yaml`
      actors:
        Idle:
          package: actors/no_step.ts
          class: Idle
        Pythonic:
          package: actors/no_step.ts
          class: Pythonic
    `);
    expect(list(result)).toEqual([
      '4:12 actor "Idle": class "Idle" of "actors/no_step.ts" has no runStep() method',
      '7:12 actor "Pythonic": class "Pythonic" of "actors/no_step.ts" has no runStep() method (it has run_step)',
    ]);
    expect(result.diagnostics[1]?.fix).toMatch(/^did you mean runStep\?/);
  });

  it('checks options against those the class declares: unknown ones with a suggestion, and their types', async () => {
    const result = await check(yaml`
      actors:
        Camera:
          package: actors/declared.ts
          class: Camera
          rate: "30 Hz"
          bining: 2
          roi: [0, 0, 512, 512]
          name: cam0
          on_error: fail
    `);
    expect(list(result)).toEqual([
      '5:11 actor "Camera": option "rate" must be a number, not the string "30 Hz"',
      '6:5 actor "Camera": Camera takes no option "bining"',
    ]);
    expect(result.diagnostics[1]?.fix).toBe('did you mean "binning"? its options are rate, binning, name, roi');
    // Undeclared, every option passes (the generator fixture declares none).
    expect(list(await check(`${twoActors}    anything: [1, 2]\n`))).toEqual([]);
  });

  it('reports an export that is not an Actor class', async () => {
    const result = await check(yaml`
      actors:
        Plotter:
          package: actors/viewer.ts
          class: Plotter
        Rate:
          package: actors/viewer.ts
          class: frameRate
    `);
    expect(list(result)).toEqual([
      '4:12 actor "Plotter": export "Plotter" of "actors/viewer.ts" is not an Actor class (it is a function or class that does not extend Actor)',
      '7:12 actor "Rate": export "frameRate" of "actors/viewer.ts" is not an Actor class (it is a number)',
    ]);
    expect(result.diagnostics[0]?.fix).toContain(
      "extends Actor { runStep() { ... } }  with  import { Actor } from '@improv/core'",
    );
  });

  it('reports a module whose import throws, naming the file and the error', async () => {
    const result = await check(yaml`
      actors:
        Camera:
          package: actors/throws-on-import.ts
          class: Broken
        Lab:
          package: actors/missing-dependency.js
          class: Lab
    `);
    const errors = list(result);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBe(
      `3:14 actor "Camera": importing ${fixture('actors/throws-on-import.ts')} failed: camera driver not available`,
    );
    expect(errors[1]).toMatch(
      /^6:14 actor "Lab": importing .*missing-dependency\.js failed: .*improv-test-no-such-package/,
    );
  });

  it('refuses a CommonJS actor file as such, at its package, with the ES-module form as the fix', async () => {
    const result = await check(yaml`
      actors:
        A:
          package: actors/commonjs.cjs
          class: Counter
        B:
          package: actors/commonjs-in-js.js
          class: Counter
    `);
    expect(list(result)).toEqual([
      `3:14 actor "A": ${fixture('actors/commonjs.cjs')} is a CommonJS module (require, exports); actors must be ES modules`,
      `6:14 actor "B": ${fixture('actors/commonjs-in-js.js')} is a CommonJS module (require, exports); actors must be ES modules`,
    ]);
    expect(result.diagnostics[0]?.fix).toContain(
      "import { Actor } from '@improv/core';  export class Counter extends Actor",
    );
  });

  it('reports a module that loops, never settles a top-level await, or exits at import, and checks the rest', async () => {
    const result = await parseConfig(
      yaml`
        actors:
          Spinner:
            package: actors/loops-on-import.ts
            class: Spinner
          Waiter:
            package: actors/awaits-forever.ts
            class: Waiter
          Quitter:
            package: actors/exits-on-import.ts
            class: Quitter
          Generator:
            package: actors/generator.ts
            class: Nope
        settings:
          import_timeout: 1.5s
      `,
      { file: fixture('inline.yaml'), adapter },
    );
    const errors = list(result);
    expect(errors).toHaveLength(4);
    expect(errors[0]).toBe(
      `3:14 actor "Spinner": importing ${fixture('actors/loops-on-import.ts')} failed: the module did not finish loading within 1.5 s — does it loop, or await something that never settles, at import?`,
    );
    expect(errors[1]).toBe(
      `6:14 actor "Waiter": importing ${fixture('actors/awaits-forever.ts')} failed: the module did not finish loading within 1.5 s — does it loop, or await something that never settles, at import?`,
    );
    expect(errors[2]).toMatch(
      /^9:14 actor "Quitter": importing .*exits-on-import\.ts failed: the module ended the process while loading \(exit code 0\)/,
    );
    // The modules after a bad one are still checked, in a fresh worker.
    expect(errors[3]).toMatch(/^13:12 actor "Generator": .*"Nope"/);
    expect(result.diagnostics[0]?.fix).toContain('into setup()');
    expect(result.diagnostics[2]?.fix).toContain('remove the exit');
  });

  describe('with a module that has a syntax error', () => {
    let folder = '';
    beforeAll(async () => {
      folder = await mkdtemp(join(tmpdir(), 'improv-config-'));
      // A folder of the user's own: ES modules, so the import fails on the syntax error itself.
      await writeFile(join(folder, 'package.json'), '{"type": "module"}\n');
      await writeFile(join(folder, 'broken.ts'), 'export class Broken extends {\n  runStep() {\n}\n');
    });
    afterAll(async () => {
      await rm(folder, { recursive: true, force: true });
    });

    it('reports the file and the syntax error', async () => {
      const result = await parseConfig('actors:\n  Broken:\n    package: ./broken.ts\n    class: Broken\n', {
        file: join(folder, 'pipeline.yaml'),
        adapter,
      });
      const error = only(result);
      expect(error).toMatchObject({ line: 3, column: 14, path: ['actors', 'Broken', 'package'] });
      expect(error.message).toContain(`actor "Broken": importing ${join(folder, 'broken.ts')} failed: `);
      expect(error.fix).toContain('fix the error in');
    });
  });
});

describe('connection errors', () => {
  it('reports connections that are not a mapping', async () => {
    expect(list(await check(`${twoActors}connections: [Generator.q_out]\n`))).toEqual([
      '8:14 "connections" must be a mapping, not a list',
    ]);
  });

  it('reports a connection that is neither form, or has no sinks', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        Generator.q_out: 5
        Processor.q_out:
    `,
    );
    expect(list(result)).toEqual([
      '9:20 connection "Generator.q_out" must be a list of sinks (Source.link: [Sink.link]) or a mapping with sources and sinks, not number 5',
      '10:3 connection "Processor.q_out" has no sinks',
    ]);
  });

  it('reports unknown keys and missing sources or sinks in the sources/sinks form', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        frames:
          sources: [Generator.q_out]
          sink: [Processor.q_in]
    `,
    );
    expect(list(result)).toEqual([
      '9:3 connection "frames" has no sinks',
      '11:5 connection "frames": unknown key "sink"',
    ]);
    expect(result.diagnostics[1]?.fix).toBe(
      'did you mean "sinks"? a connection takes sources, sinks, capacity, policy, transport',
    );
  });

  it('reports malformed endpoints', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        Generator.q_out: [Processor, Processor.q-in, Processor.q_in.x, 42, Processor.1st]
        frames: Processor.q_in
        Generator.q_out2:
          sources: []
          sinks: Processor.q_in2
    `,
    );
    expect(list(result)).toEqual([
      '9:21 connection "Generator.q_out": malformed endpoint "Processor": expected Actor.link (an actor name, ".", and a link name such as q_in)',
      '9:32 connection "Generator.q_out": malformed endpoint "Processor.q-in": expected Actor.link (an actor name, ".", and a link name such as q_in)',
      '9:48 connection "Generator.q_out": malformed endpoint "Processor.q_in.x": expected Actor.link (an actor name, ".", and a link name such as q_in)',
      '9:66 connection "Generator.q_out": expected an endpoint Actor.link, not number 42',
      '9:70 connection "Generator.q_out": malformed endpoint "Processor.1st": expected Actor.link (an actor name, ".", and a link name such as q_in)',
      '10:3 connection "frames": the key of a connection written as a list must be its source endpoint (Actor.link)',
      '12:14 connection "Generator.q_out2" has no sources (the list is empty)',
    ]);
    expect(result.diagnostics[1]?.fix).toBe(
      'link names are identifiers (letters, digits, _ and $, not starting with a digit): e.g. Processor.q_in',
    );
    expect(result.diagnostics[4]?.fix).toContain('e.g. Processor._1st');
  });

  it('reports endpoints naming unknown actors, with a suggestion', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        Generator.q_out: [Procesor.q_in]
        Camera.q_out: Processor.frames
    `,
    );
    expect(list(result)).toEqual([
      '9:21 connection "Generator.q_out": endpoint "Procesor.q_in" names an unknown actor "Procesor"',
      '10:3 connection "Camera.q_out": endpoint "Camera.q_out" names an unknown actor "Camera"',
    ]);
    expect(result.diagnostics[0]?.fix).toBe('did you mean "Processor.q_in"? (declared actors: Generator, Processor)');
    expect(result.diagnostics[1]?.fix).toBe(
      'declare "Camera" under actors, or fix the name (declared actors: Generator, Processor)',
    );
  });

  it('reports 100,000 connections to unknown actors, each at its line, in time linear in their number', async () => {
    const count = 100_000;
    let text = `${twoActors}connections:\n`;
    for (let index = 0; index < count; index++) text += `  X${index}.q_out: [Y${index}.q_in]\n`;
    const errors = list(await check(text, { checkModules: false }));
    expect(errors).toHaveLength(2 * count);
    expect(errors[0]).toBe('9:3 connection "X0.q_out": endpoint "X0.q_out" names an unknown actor "X0"');
    expect(errors.at(-1)).toBe(
      `${8 + count}:18 connection "X${count - 1}.q_out": endpoint "Y${count - 1}.q_in" names an unknown actor "Y${count - 1}"`,
    );
  }, 60_000);

  it('reports a sink fed twice within one connection', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        frames:
          sources: Generator.q_out
          sinks: [Processor.q_in, Processor.q_in]
    `,
    );
    expect(list(result)).toEqual(['11:29 connection "frames": sink "Processor.q_in" is listed twice']);
  });

  it('accepts fan-in from two connections into one sink', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        Generator.q_out: Processor.q_in
        Generator.events: Processor.q_in
    `,
    );
    expect(result.diagnostics).toEqual([]);
  });

  it('reports a link used as a source in one place and a sink in another', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        Generator.q_out: [Processor.q_in]
        Processor.q_in: [Generator.q_in]
        back:
          sources: [Processor.q_out]
          sinks: [Generator.q_out]
    `,
    );
    expect(list(result)).toEqual([
      '10:3 link "Processor.q_in" is a source in connection "Processor.q_in" but a sink in connection "Generator.q_out": a link has one direction',
      '13:13 link "Generator.q_out" is a sink in connection "back" but a source in connection "Generator.q_out": a link has one direction',
    ]);
    expect(result.diagnostics[0]?.fix).toBe(
      'give Processor separate links for what it receives and what it sends, e.g. Processor.q_in and Processor.q_out',
    );
  });

  it('reports a bad capacity or policy', async () => {
    const result = await check(
      twoActors +
        yaml`
      connections:
        a:
          sources: Generator.q_out
          sinks: Processor.q_in
          capacity: 0
          policy: drop_oldest
        b:
          sources: Generator.q_b
          sinks: Processor.q_b
          capacity: 2.5
        c:
          sources: Generator.q_c
          sinks: Processor.q_c
          capacity: "64"
    `,
    );
    expect(list(result)).toEqual([
      '12:15 connection "a": capacity must be a whole number of messages >= 1, not 0',
      '13:13 connection "a": policy must be one of block, drop-oldest, not "drop_oldest"',
      '17:15 connection "b": capacity must be a whole number of messages >= 1, not 2.5',
      '21:15 connection "c": capacity must be a whole number of messages >= 1, not "64"',
    ]);
    expect(result.diagnostics[1]?.fix).toBe(
      'did you mean "drop-oldest"? policy is one of block, drop-oldest (default block)',
    );
  });
});

describe('settings errors', () => {
  it('reports settings that are not a mapping', async () => {
    expect(list(await check(`settings: 512MiB\n${twoActors}`))).toEqual([
      '1:11 settings must be a mapping, not the string "512MiB"',
    ]);
  });

  it('reports a bad store_size', async () => {
    const result = await check(`settings:\n  store_size: 12 MiBs\n${twoActors}`);
    expect(list(result)).toEqual([
      '2:15 settings: store_size is invalid: "12 MiBs" has an unknown unit "MiBs" (did you mean "MiB"?); units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB',
    ]);
    expect(list(await check(`settings:\n  store_size: -5\n${twoActors}`))).toEqual([
      '2:15 settings: store_size is invalid: -5 is not a size in bytes (expected a whole number >= 1)',
    ]);
    expect(list(await check(`settings:\n  store_size: true\n${twoActors}`))).toEqual([
      '2:15 settings: store_size must be a number of bytes or a string such as "512MiB", not true',
    ]);
  });

  it('refuses a store_size the store cannot open, and a capacity over 2^30, as run would', async () => {
    const limits = { driver: 'memory', minBytes: 64, maxBytes: 2 ** 34 - 8 };
    const sized = async (value: string) =>
      list(
        await parseConfig(`settings:\n  store_size: ${value}\n${twoActors}`, {
          file: fixture('inline.yaml'),
          adapter,
          storeSizeLimits: limits,
        }),
      );
    expect(await sized('63')).toEqual([
      '2:15 settings: store_size of 63 bytes is less than the memory store can hold (64 to 17179869176 bytes)',
    ]);
    expect(await sized('0x10')).toHaveLength(1);
    expect(await sized('16GiB')).toEqual([
      '2:15 settings: store_size of 17179869184 bytes is more than the memory store can hold (64 to 17179869176 bytes)',
    ]);
    expect(await sized('1e12')).toHaveLength(1);
    expect(await sized('100TB')).toHaveLength(1);
    expect(await sized('64')).toEqual([]);
    const fix = (
      await parseConfig(`settings:\n  store_size: 16GiB\n${twoActors}`, {
        file: fixture('inline.yaml'),
        adapter,
        storeSizeLimits: limits,
      })
    ).diagnostics[0]?.fix;
    expect(fix).toBe('give a size from 64 B to 16 GiB - 8 B, e.g. store_size: 512MiB');
    const capacity = await check(
      `${twoActors}connections:\n  c:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\n    capacity: 2147483648\n`,
    );
    expect(list(capacity)).toEqual([
      '12:15 connection "c": capacity must be at most 1073741824 (2^30) messages, not 2147483648',
    ]);
  });

  it('parses signal_timeout as seconds or with a unit, and refuses what cannot be a bound', async () => {
    const timeout = async (value: string) =>
      (await check(`settings:\n  signal_timeout: ${value}\n${twoActors}`)).config?.settings.signalTimeoutMs;
    expect((await check(twoActors)).config?.settings.signalTimeoutMs).toBe(5000);
    expect([await timeout('2'), await timeout('500ms'), await timeout('1.5m'), await timeout('"10 s"')]).toEqual([
      2000, 500, 90_000, 10_000,
    ]);
    expect(list(await check(`settings:\n  signal_timeout: 5 sec\n${twoActors}`))).toEqual([
      '2:19 settings: signal_timeout is invalid: "sec" is not a unit of time (use ms, s, m, h)',
    ]);
    const tooShort = only(await check(`settings:\n  signal_timeout: 10ms\n${twoActors}`));
    expect(tooShort.message).toBe('settings: signal_timeout must be at least 100 ms, not "10ms"');
    expect(tooShort.fix).toMatch(/signal_timeout: 5s/);
    expect(list(await check(`settings:\n  signal_timeout: 2h\n${twoActors}`))).toEqual([
      '2:19 settings: signal_timeout must be at most 1h, not "2h"',
    ]);
    expect(list(await check(`settings:\n  signal_timeout: [1]\n${twoActors}`))).toEqual([
      '2:19 settings: signal_timeout must be a number of seconds or a string such as "5s", not a list',
    ]);
  });

  it('parses import_timeout like signal_timeout, with a default of 10 s', async () => {
    expect((await check(twoActors)).config?.settings.importTimeoutMs).toBe(10_000);
    expect((await check(`settings:\n  import_timeout: 1m\n${twoActors}`)).config?.settings.importTimeoutMs).toBe(
      60_000,
    );
    const tooShort = only(await check(`settings:\n  import_timeout: 0\n${twoActors}`));
    expect(tooShort.message).toBe('settings: import_timeout must be at least 100 ms, not 0');
    expect(tooShort.fix).toMatch(/import_timeout: 30s/);
  });

  it('takes on_error per actor (continue or fail), not as an option', async () => {
    const result = await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          on_error: fail
        Processor:
          package: actors/sample_processor.ts
          class: Processor
    `);
    expect(result.config?.actors.map((actor) => [actor.onError, actor.options])).toEqual([
      ['fail', {}],
      ['continue', {}],
    ]);
    const bad = only(
      await check(yaml`
        actors:
          Generator:
            package: actors/generator.ts
            class: Generator
            on_error: fial
      `),
    );
    expect(bad).toMatchObject({
      line: 5,
      column: 15,
      message: 'actor "Generator": on_error must be continue or fail, not the string "fial"',
    });
    expect(bad.fix).toMatch(/^did you mean "fail"\?/);
  });

  it('reports unknown settings and warns about improv settings', async () => {
    const result = await check(`settings:\n  store_sise: 1GB\n  control_port: 5555\n  use_hdd: false\n${twoActors}`);
    const error = only(result);
    expect(error).toMatchObject({ line: 2, column: 3, message: 'unknown setting "store_sise"' });
    expect(error.fix).toBe(
      'did you mean "store_size"? settings takes store_size, signal_timeout, import_timeout, python, store, store_eviction, lmdb, redis, transport, zmq',
    );
    expect(list(result, 'warning')).toEqual([
      '3:3 setting "control_port" is not used by improv-ts; ignored',
      '4:3 setting "use_hdd" is improv\'s switch for its LMDB store; improv-ts ignores it',
    ]);
  });
});

describe('actors in processes of their own, and restarts', () => {
  /** The Node adapter, with `findRuntime` finding only `installed` (and counting its calls). */
  function adapterWith(installed: string[]) {
    const asked: string[] = [];
    const findRuntime = (name: 'node' | 'bun' | 'deno') => {
      asked.push(name);
      return installed.includes(name) ? `/opt/${name}/bin/${name}` : undefined;
    };
    return { adapter: { ...adapter, findRuntime }, asked };
  }

  function checkOn(
    text: string,
    runtimeAdapter: RuntimeAdapter,
    options: { storeSizeLimits?: { driver: string; minBytes: number; maxBytes: number } } = {},
  ): Promise<ConfigResult> {
    return parseConfig(text, { file: fixture('inline.yaml'), adapter: runtimeAdapter, ...options });
  }

  /** One actor with `keys` (YAML lines) after its package and class; the keys start at line 5. */
  const actorWith = (...keys: string[]) =>
    `actors:\n  Camera:\n    package: actors/generator.ts\n    class: Generator\n${keys.map((key) => `    ${key}\n`).join('')}`;

  it('reads method: process (spawn and fork too) as its own process, thread and worker as a worker', async () => {
    const actors = ['process', 'spawn', 'fork', 'thread', 'worker', undefined].map(
      (method, i) =>
        `  A${i}:\n    package: actors/generator.ts\n    class: Generator\n    rate: ${i}\n${method === undefined ? '' : `    method: ${method}\n`}`,
    );
    const result = await check(`actors:\n${actors.join('')}`);
    expect(result.diagnostics).toEqual([]);
    const placed = result.config?.actors.map((actor) => [actor.name, 'process' in actor ? actor.process : 'worker']);
    expect(placed).toEqual([
      ['A0', {}],
      ['A1', {}],
      ['A2', {}],
      ['A3', 'worker'],
      ['A4', 'worker'],
      ['A5', 'worker'],
    ]);
    // None of the keys improv-ts reads is an option of the actor.
    expect(result.config?.actors.map((actor) => actor.options)).toEqual([0, 1, 2, 3, 4, 5].map((rate) => ({ rate })));
  });

  it('reads runtime: node, bun or deno as its own process on that runtime', async () => {
    const { adapter: everywhere } = adapterWith(['node', 'bun', 'deno']);
    const result = await checkOn(
      yaml`
        actors:
          OnNode:
            package: actors/generator.ts
            class: Generator
            runtime: node
          OnBun:
            package: actors/generator.ts
            class: Generator
            runtime: bun
            method: process
          OnDeno:
            package: actors/generator.ts
            class: Generator
            runtime: deno
            method: spawn
      `,
      everywhere,
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.config?.actors.map((actor) => [actor.process, actor.options])).toEqual([
      [{ runtime: 'node' }, {}],
      [{ runtime: 'bun' }, {}],
      [{ runtime: 'deno' }, {}],
    ]);
    expect(result.config?.settings.store.chosenFor).toBe('actor "OnNode" runs in its own process (runtime: node)');
  });

  it('reports a method it does not know, with the closest one and the list', async () => {
    const typo = only(await check(actorWith('method: processs')));
    expect(typo).toMatchObject({
      line: 5,
      column: 13,
      path: ['actors', 'Camera', 'method'],
      message: 'actor "Camera": method must be one of process, spawn, fork, thread, worker, not "processs"',
    });
    expect(typo.fix).toBe(
      'did you mean "process"? write  method: process  (its own OS process; improv\'s spawn and fork mean the same) or  method: worker  (a worker of Nexus\'s process, the default)',
    );
    const other = only(await check(actorWith('method: true')));
    expect(other.message).toBe('actor "Camera": method must be one of process, spawn, fork, thread, worker, not true');
    expect(other.fix).toMatch(/^write {2}method: process/);
  });

  it('refuses method: worker with a runtime, which needs a process', async () => {
    const { adapter: everywhere } = adapterWith(['node', 'bun', 'deno']);
    const error = only(await checkOn(actorWith('method: worker', 'runtime: bun'), everywhere));
    expect(error).toMatchObject({
      line: 5,
      column: 13,
      message:
        'actor "Camera": method: worker runs it in a worker of Nexus\'s process, but runtime: bun runs it in a process of its own',
      fix: 'remove  method: worker  to run it in a process of its own, or remove  runtime: bun  to keep it in a worker',
    });
  });

  it('reports a runtime it does not know, with the closest one', async () => {
    const typo = only(await check(actorWith('runtime: nodejs')));
    expect(typo).toMatchObject({
      line: 5,
      column: 14,
      path: ['actors', 'Camera', 'runtime'],
      message: 'actor "Camera": runtime must be one of node, bun, deno, not "nodejs"',
    });
    expect(typo.fix).toMatch(/^did you mean "node"\? write e\.g\. {2}runtime: bun/);
    expect(only(await check(actorWith('runtime: Deno'))).fix).toMatch(/^did you mean "deno"\?/);
    expect(list(await check(actorWith('runtime: 20')))).toEqual([
      '5:14 actor "Camera": runtime must be one of node, bun, deno, not 20',
    ]);
  });

  it('reports a runtime that is not installed, at its key, looking each runtime up once', async () => {
    const { adapter: nodeOnly, asked } = adapterWith(['node']);
    const result = await checkOn(
      yaml`
        actors:
          Camera:
            package: actors/generator.ts
            class: Generator
            runtime: bun
          Analysis:
            package: actors/generator.ts
            class: Generator
            runtime: deno
          Other:
            package: actors/generator.ts
            class: Generator
            runtime: bun
          Here:
            package: actors/generator.ts
            class: Generator
            runtime: node
      `,
      nodeOnly,
    );
    expect(list(result)).toEqual([
      '5:5 actor "Camera": runtime bun is not installed',
      '9:5 actor "Analysis": runtime deno is not installed',
      '13:5 actor "Other": runtime bun is not installed',
    ]);
    expect(result.diagnostics.map((diagnostic) => diagnostic.fix)).toEqual([
      'npm install -D bun (or see https://bun.sh), or remove  runtime: bun  to run it on node',
      'npm install -D deno (or see https://deno.com), or remove  runtime: deno  to run it on node',
      'npm install -D bun (or see https://bun.sh), or remove  runtime: bun  to run it on node',
    ]);
    expect(result.diagnostics[0]?.path).toEqual(['actors', 'Camera', 'runtime']);
    expect(asked.sort()).toEqual(['bun', 'deno', 'node']);
    const { adapter: bunOnly } = adapterWith(['bun']);
    expect(only(await checkOn(actorWith('runtime: node'), bunOnly)).fix).toBe(
      'install Node.js (see https://nodejs.org), or remove  runtime: node  to run it on node',
    );
    // An adapter that cannot look runtimes up (an embedding program's own) leaves it to the start.
    const { findRuntime: _, ...blind } = adapterWith([]).adapter;
    expect((await checkOn(actorWith('runtime: bun'), blind as RuntimeAdapter)).diagnostics).toEqual([]);
  });

  it('reads restart, restart_backoff and max_restarts, with never, 1 s and 5 as defaults', async () => {
    const result = await check(yaml`
      actors:
        Default:
          package: actors/generator.ts
          class: Generator
        OnFailure:
          package: actors/generator.ts
          class: Generator
          restart: on-failure
          restart_backoff: 500ms
          max_restarts: 0
        Always:
          package: actors/generator.ts
          class: Generator
          method: process
          restart: always
          restart_backoff: 2
          max_restarts: 12
        Never:
          package: actors/generator.ts
          class: Generator
          restart: never
    `);
    expect(result.diagnostics).toEqual([]);
    expect(result.config?.actors.map((actor) => [actor.restart, actor.options])).toEqual([
      [{ policy: 'never', backoffMs: 1000, maxRestarts: 5 }, {}],
      [{ policy: 'on-failure', backoffMs: 500, maxRestarts: 0 }, {}],
      [{ policy: 'always', backoffMs: 2000, maxRestarts: 12 }, {}],
      [{ policy: 'never', backoffMs: 1000, maxRestarts: 5 }, {}],
    ]);
  });

  it('reports a restart policy it does not know, with the closest one and the list', async () => {
    const policy = async (value: string) => only(await check(actorWith(`restart: ${value}`)));
    for (const typo of ['on_failure', 'onfailure', 'On-Failure']) {
      const error = await policy(typo);
      expect(error).toMatchObject({
        line: 5,
        column: 14,
        path: ['actors', 'Camera', 'restart'],
        message: `actor "Camera": restart must be one of never, on-failure, always, not "${typo}"`,
      });
      expect(error.fix).toBe(
        'did you mean "on-failure"? write  restart: on-failure  (start it again when it crashes or exits with an error) or  restart: always  (also when it ends by itself); never is the default',
      );
    }
    const yes = await policy('yes');
    expect(yes.message).toBe('actor "Camera": restart must be one of never, on-failure, always, not "yes"');
    expect(yes.fix).toMatch(/^write {2}restart: on-failure {2}.* or {2}restart: always /);
    const yesBool = await policy('true');
    expect(yesBool.message).toBe('actor "Camera": restart must be one of never, on-failure, always, not true');
    expect(yesBool.fix).toMatch(/^write {2}restart: on-failure/);
    expect((await policy('"no"')).fix).toMatch(/^did you mean "never"\? /);
    expect((await policy('false')).fix).toMatch(/^did you mean "never"\? /);
    expect((await policy('alway')).fix).toMatch(/^did you mean "always"\? /);
  });

  it('reports a max_restarts that is not a whole number >= 0', async () => {
    const restarts = async (value: string) =>
      list(await check(actorWith('restart: on-failure', `max_restarts: ${value}`)));
    expect(await restarts('-1')).toEqual([
      '6:19 actor "Camera": max_restarts must be a whole number >= 0, not number -1',
    ]);
    expect(await restarts('2.5')).toEqual([
      '6:19 actor "Camera": max_restarts must be a whole number >= 0, not number 2.5',
    ]);
    expect(await restarts('"5"')).toEqual([
      '6:19 actor "Camera": max_restarts must be a whole number >= 0, not the string "5"',
    ]);
    expect(await restarts('.inf')).toHaveLength(1);
    const error = only(await check(actorWith('restart: on-failure', 'max_restarts: -1')));
    expect(error.path).toEqual(['actors', 'Camera', 'max_restarts']);
    expect(error.fix).toBe(
      'write e.g.  max_restarts: 5  (how many restarts in a row before the actor is left failed; default 5)',
    );
  });

  it('reports a restart_backoff that is not a duration from more than 0 to 30 s', async () => {
    const backoff = async (value: string) =>
      list(await check(actorWith('restart: always', `restart_backoff: ${value}`)));
    expect(await backoff('5 sec')).toEqual([
      '6:22 actor "Camera": restart_backoff is invalid: "sec" is not a unit of time (use ms, s, m, h)',
    ]);
    expect(await backoff('0')).toEqual(['6:22 actor "Camera": restart_backoff must be more than 0, not 0']);
    expect(await backoff('-2')).toEqual(['6:22 actor "Camera": restart_backoff must be more than 0, not -2']);
    expect(await backoff('1m')).toEqual([
      '6:22 actor "Camera": restart_backoff must be at most 30s (the longest wait between restarts), not "1m"',
    ]);
    expect(await backoff('[1]')).toEqual([
      '6:22 actor "Camera": restart_backoff must be a number of seconds or a string such as "1s", not a list',
    ]);
    expect(await backoff('30s')).toEqual([]);
    const error = only(await check(actorWith('restart: always', 'restart_backoff: soon')));
    expect(error.path).toEqual(['actors', 'Camera', 'restart_backoff']);
    expect(error.fix).toBe(
      'give seconds as a number, or a string with a unit: restart_backoff: 500ms (units ms, s, m, h), more than 0 and at most 30s; it is the wait before the first restart, doubling per restart in a row up to 30 s',
    );
  });

  it('warns that restart_backoff and max_restarts do nothing without a restart policy', async () => {
    const absent = await check(actorWith('restart_backoff: 2s', 'max_restarts: 3'));
    expect(list(absent)).toEqual([]);
    expect(list(absent, 'warning')).toEqual([
      '5:5 actor "Camera": restart_backoff has no effect with restart: never (the default)',
      '6:5 actor "Camera": max_restarts has no effect with restart: never (the default)',
    ]);
    expect(absent.diagnostics[0]?.fix).toBe(
      'add  restart: on-failure  (or always) to restart the actor, or remove restart_backoff',
    );
    expect(list(await check(actorWith('restart: never', 'max_restarts: 3')), 'warning')).toEqual([
      '6:5 actor "Camera": max_restarts has no effect with restart: never',
    ]);
    // A bad policy is its own error; a bad value is not also said to have no effect.
    const bad = await check(actorWith('restart: on_failure', 'max_restarts: 3', 'restart_backoff: -1'));
    expect(list(bad, 'warning')).toEqual([]);
    expect(list(bad)).toHaveLength(2);
    expect(list(await check(actorWith('max_restarts: -3')), 'warning')).toEqual([]);
    expect(list(await check(actorWith('restart: always', 'max_restarts: 3')), 'warning')).toEqual([]);
  });

  it('refuses store: memory with an actor in its own process, at the store setting', async () => {
    const result = await check(`settings:\n  store: memory\n${actorWith('method: process')}`);
    const error = only(result);
    expect(error).toMatchObject({
      line: 2,
      column: 10,
      path: ['settings', 'store'],
      message: 'store: memory cannot be reached by actor "Camera", which runs in its own process (method: process)',
      fix: 'use  store: lmdb  (one machine; a temporary database, removed at quit, unless lmdb: { path, keep: true } is set), or  store: redis  (several machines)',
    });
    const byRuntime = await checkOn(
      `settings:\n  store: memory\n${actorWith('runtime: bun')}`,
      adapterWith(['node', 'bun']).adapter,
    );
    expect(only(byRuntime).message).toBe(
      'store: memory cannot be reached by actor "Camera", which runs in its own process (runtime: bun)',
    );
    // Workers share Nexus's memory: the memory store is fine for them.
    expect(list(await check(`settings:\n  store: memory\n${actorWith('method: worker')}`))).toEqual([]);
  });

  it('refuses --store memory (storeOverride) with an actor in its own process, at that actor, naming the flag', async () => {
    // Written or not, the store: line is not what chose the store: the error is at the actor.
    for (const settings of ['', 'settings:\n  store: lmdb\n']) {
      const result = await check(`${settings}${actorWith('method: process')}`, { storeOverride: 'memory' });
      const error = only(result);
      expect(error).toMatchObject({
        line: settings === '' ? 2 : 4,
        column: 3,
        path: ['actors', 'Camera'],
        message:
          '--store memory (given on the command line) cannot be reached by actor "Camera", which runs in its own process (method: process): the memory store lives in improv\'s own process',
      });
      expect(error.fix).toMatch(/^run with {2}--store lmdb .* or {2}--store redis/);
    }
    // --store lmdb over a written store: memory: the flag decides, and the store: line is no origin.
    const fixed = await check(`settings:\n  store: memory\n${actorWith('method: process')}`, { storeOverride: 'lmdb' });
    expect(fixed.diagnostics).toEqual([]);
    expect(fixed.config?.settings.store.driver).toBe('lmdb');
    expect(fixed.config?.settings.store.origins.store).toBeUndefined();
    expect(fixed.config?.settings.store).not.toHaveProperty('chosenFor');
  });

  it('picks lmdb when store is not written and an actor runs in its own process, saying why', async () => {
    const result = await check(`settings:\n  lmdb: { keep: true, path: data/run.lmdb }\n${actorWith('method: fork')}`);
    expect(result.diagnostics).toEqual([]);
    const store = result.config?.settings.store;
    expect(store).toMatchObject({
      driver: 'lmdb',
      chosenFor: 'actor "Camera" runs in its own process (method: fork)',
      lmdb: { keep: true, path: 'data/run.lmdb', sync: false },
    });
    expect(store?.origins.store).toBeUndefined();
    const bare = (await check(actorWith('method: process'))).config?.settings.store;
    expect(bare).toMatchObject({ driver: 'lmdb', lmdb: { keep: false, sync: false } });
    expect(bare?.lmdb.path).toBeUndefined();
    // Written, the store is the one written, and nothing was chosen.
    const written = (await check(`settings:\n  store: redis\n${actorWith('method: process')}`)).config?.settings.store;
    expect(written?.driver).toBe('redis');
    expect(written).not.toHaveProperty('chosenFor');
    // Workers only: the memory store stays the default.
    const workers = (await check(actorWith('method: thread'))).config?.settings.store;
    expect(workers?.driver).toBe('memory');
    expect(workers).not.toHaveProperty('chosenFor');
  });

  it("does not hold a picked lmdb store to the memory store's size limits, and says so about redis_config", async () => {
    const limits = { driver: 'memory', minBytes: 64, maxBytes: 2 ** 30 };
    const big = `settings:\n  store_size: 2GiB\n`;
    expect(list(await checkOn(`${big}${actorWith('method: process')}`, adapter, { storeSizeLimits: limits }))).toEqual(
      [],
    );
    expect(list(await checkOn(`${big}${actorWith('method: worker')}`, adapter, { storeSizeLimits: limits }))).toEqual([
      expect.stringMatching(/^2:15 settings: store_size of 2147483648 bytes is more than the memory store can hold/),
    ]);
    const redis = await check(`redis_config:\n  port: 6380\n${actorWith('method: process')}`);
    expect(list(redis, 'warning')).toEqual([
      '1:1 "redis_config" configures a Redis store, but this pipeline uses the lmdb store (chosen because actor "Camera" runs in its own process (method: process))',
    ]);
  });
});

describe('placement of links and hosts', () => {
  it('refuses transport: local on a connection into an actor in its own process, at the connection', async () => {
    const text = yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          method: process
        Processor:
          package: actors/sample_processor.ts
          class: Processor
      connections:
        frames:
          sources: [Generator.q_out]
          sinks: [Processor.q_in]
          transport: local
    `;
    const error = only(await check(text));
    expect(error).toMatchObject({
      line: 13,
      column: 16,
      path: ['connections', 'frames', 'transport'],
      message:
        'connection "frames" says transport: local, but actor "Generator" runs in its own process, and links between processes go over zmq',
    });
    expect(error.fix).toMatch(/^remove {2}transport: local {2}from the connection/);
    // Without it, placement picks zmq: valid.
    expect(list(await check(text.replace('    transport: local\n', '')))).toEqual([]);
  });

  it('places an actor on a host of hosts:, in a process of its own there, and picks redis for the store', async () => {
    const result = await check(yaml`
      hosts:
        rig: { address: 10.0.0.2 }
        scope: { address: scope.lab, port: 7400, token_file: keys/scope.token }
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          host: rig
          runtime: bun
        Processor:
          package: actors/sample_processor.ts
          class: Processor
    `);
    expect(list(result)).toEqual([]);
    const config = result.config!;
    expect(config.hosts).toEqual([
      {
        name: 'rig',
        address: '10.0.0.2',
        port: 7310,
        tokenFile: '~/.improv/agent.token',
        // A problem with the token file is reported where it is written (the host, when it is not).
        tokenFileOrigin: expect.objectContaining({ path: ['hosts', 'rig'], line: 2 }),
      },
      {
        name: 'scope',
        address: 'scope.lab',
        port: 7400,
        tokenFile: fixture('keys/scope.token'),
        tokenFileOrigin: expect.objectContaining({ path: ['hosts', 'scope', 'token_file'], line: 3, column: 56 }),
      },
    ]);
    expect(config.actors[0]!.process).toEqual({ host: 'rig', runtime: 'bun' });
    expect(config.actors[1]!.process).toBeUndefined();
    expect(config.settings.store.driver).toBe('redis');
    expect(config.settings.store.chosenFor).toBe('actor "Generator" runs on host rig');
  });

  it('with every host mapped to this machine (--hosts local), runs those actors in processes here, on lmdb', async () => {
    const result = await check(
      yaml`
      hosts:
        rig: { address: 10.0.0.2 }
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          host: rig
    `,
      { hostsLocal: true },
    );
    expect(list(result)).toEqual([]);
    expect(result.config!.hosts).toEqual([]);
    expect(result.config!.actors[0]!.process).toEqual({});
    expect(result.config!.settings.store.driver).toBe('lmdb');
  });

  it('reports each mistake about hosts at its line and column, with the fix', async () => {
    const result = await check(yaml`
      hosts:
        rig: { adress: 10.0.0.2 }
        scope: { address: 10.0.0.3, port: 99999 }
        cam: { address: 10.0.0.4, token_file: 7 }
        ok: { address: 10.0.0.5 }
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          host: ko
        Processor:
          package: actors/sample_processor.ts
          class: Processor
          host: rig
          method: worker
    `);
    expect(list(result)).toEqual([
      '2:3 host "rig" has no address',
      '2:10 host "rig": unknown key "adress"',
      '3:37 host "scope": port must be a whole number from 1 to 65535, not number 99999',
      '4:41 host "cam": token_file must be a path, not number 7',
      '10:11 actor "Generator": host "ko" is not in hosts:',
      '15:13 actor "Processor": method: worker runs it in a worker of Nexus\'s process, but host: rig runs it in a process of its own',
    ]);
    const unknown = result.diagnostics.find((diagnostic) => diagnostic.message.includes('"ko"'))!;
    expect(unknown.fix).toBe(
      'did you mean "ok"? hosts: has rig, scope, cam, ok; add  ko: { address: … }  under hosts:',
    );
  });

  it('refuses an address with a port in it, saying where the port goes', async () => {
    const result = await check(yaml`
      hosts:
        rig: { address: "198.18.5.2:7310" }
        v6: { address: "[::1]:7311" }
        bare6: { address: "::1" }
    `);
    expect(list(result).filter((line) => line.includes('host'))).toEqual([
      '2:19 host "rig": address "198.18.5.2:7310" has a port in it; the port is a key of its own',
      '3:18 host "v6": address "[::1]:7311" has a port in it; the port is a key of its own',
    ]);
    const fixes = result.diagnostics.filter((d) => d.message.includes('port in it')).map((d) => d.fix);
    expect(fixes).toEqual(['write  address: 198.18.5.2  and  port: 7310', 'write  address: ::1  and  port: 7311']);
  });

  it('refuses host: without a hosts: section, and a store only this machine reaches', async () => {
    const missing = only(
      await check(yaml`
      actors:
        Generator:
          package: actors/generator.ts
          class: Generator
          host: rig
    `),
    );
    expect(missing).toMatchObject({
      line: 5,
      column: 11,
      message: 'actor "Generator": host: rig names a machine, but the config has no hosts: section',
    });
    expect(missing.fix).toMatch(/hosts:\n {4}rig: \{ address: 10\.0\.0\.2 \}/);
    expect(missing.fix).toContain('--hosts local');
    for (const store of ['memory', 'lmdb']) {
      const error = only(
        await check(yaml`
        settings:
          store: ${store}
        hosts:
          rig: { address: 10.0.0.2 }
        actors:
          Generator:
            package: actors/generator.ts
            class: Generator
            host: rig
      `),
      );
      expect(error).toMatchObject({
        line: 2,
        column: 10,
        message: `store: ${store} cannot be reached by actor "Generator", which runs on host rig: it lives on this machine only`,
      });
      expect(error.fix).toMatch(/^use {2}store: redis/);
      // From --store instead: at the actor on the host, naming the flag.
      const flagged = only(
        await check(
          yaml`
          hosts:
            rig: { address: 10.0.0.2 }
          actors:
            Generator:
              package: actors/generator.ts
              class: Generator
              host: rig
        `,
          { storeOverride: store as StoreName },
        ),
      );
      expect(flagged).toMatchObject({
        line: 4,
        column: 3,
        message: `--store ${store} (given on the command line) cannot be reached by actor "Generator", which runs on host rig: the ${store} store lives on this machine only`,
      });
      expect(flagged.fix).toMatch(/^run with {2}--store redis/);
    }
  });
});

describe('several errors in one file', () => {
  it('reports all of them in one result, in file order', async () => {
    const result = await loadConfig(fixture('several-errors.yaml'), { adapter });
    expect(result.config).toBeUndefined();
    expect(list(result)).toEqual([
      '2:15 settings: store_size is invalid: "lots" is not a size (expected a number with an optional unit, e.g. "512MiB")',
      '7:12 actor "Generator": module "actors/generator.ts" has no export "Generater" (its actor classes: Generator)',
      `9:14 actor "Processor": module "actors/nowhere.ts" not found (looked in ${fixture('actors/nowhere.ts')})`,
      '11:3 actor "Viewer" has no package',
      '14:21 connection "Generator.q_out": endpoint "Procesor.q_in" names an unknown actor "Procesor"',
      '18:15 connection "frames": capacity must be a whole number of messages >= 1, not 0',
      '19:1 unknown top-level key "extra"',
    ]);
    expect(list(result, 'warning')).toEqual(['3:3 setting "control_port" is not used by improv-ts; ignored']);
  });
});

describe('loadConfig', () => {
  it('reports a missing file as a diagnostic', async () => {
    const result = await loadConfig(fixture('missing.yaml'), { adapter });
    expect(result).toEqual({
      config: undefined,
      diagnostics: [
        {
          severity: 'error',
          file: fixture('missing.yaml'),
          path: [],
          message: `config file not found: ${fixture('missing.yaml')}`,
          fix: `check the path (a relative path starts from ${adapter.cwd()})`,
        },
      ],
    });
  });

  it('reports a folder given as the config file', async () => {
    const result = await loadConfig(fixtures, { adapter });
    expect(only(result).message).toBe(`${fixtures} is a folder, not a config file`);
    expect(result.diagnostics[0]?.fix).toBe(
      `pass one of its pipeline files (improv validate ${fixtures} lists and checks them all)`,
    );
  });
});

describe('toLinkGraph', () => {
  it('makes one edge per source and sink, for fan-out and fan-in', async () => {
    const config = assertConfig(
      await resolveConfig(
        {
          actors: {
            A: { package: 'actors/generator.ts', class: 'Generator' },
            B: { package: 'actors/generator.ts', class: 'Generator' },
            C: { package: 'actors/sample_processor.ts', class: 'Processor' },
            D: { package: 'actors/sample_processor.ts', class: 'Processor' },
          },
          connections: {
            'A.q_out': ['C.q_in', 'D.q_in'],
            merge: { sources: ['A.log', 'B.log'], sinks: 'D.logs', capacity: 8, policy: 'drop-oldest' },
          },
        },
        { baseDir: fixtures, adapter },
      ),
    );
    const edge = (from: string, to: string, connection: string, capacity = 1024, policy = 'block') => {
      const [fromActor, fromLink] = from.split('.');
      const [toActor, toLink] = to.split('.');
      return {
        connection,
        from: { actor: fromActor, link: fromLink },
        to: { actor: toActor, link: toLink },
        capacity,
        policy,
      };
    };
    expect(toLinkGraph(config)).toEqual({
      edges: [
        edge('A.q_out', 'C.q_in', 'A.q_out'),
        edge('A.q_out', 'D.q_in', 'A.q_out'),
        edge('A.log', 'D.logs', 'merge', 8, 'drop-oldest'),
        edge('B.log', 'D.logs', 'merge', 8, 'drop-oldest'),
      ],
    });
  });
});

describe('formatting and throwing', () => {
  const diagnostic: Diagnostic = {
    severity: 'error',
    message: 'actor "Processor": module "actors/proc.ts" not found (looked in /lab/actors/proc.ts)',
    fix: "correct the path: relative packages start from the config file's folder, /lab",
    file: '/lab/pipeline.yaml',
    line: 12,
    column: 5,
    path: ['actors', 'Processor', 'package'],
  };

  it('formats file:line:column, severity, message and fix', () => {
    expect(formatDiagnostic(diagnostic, { cwd: '/lab' })).toBe(
      'pipeline.yaml:12:5: error: actor "Processor": module "actors/proc.ts" not found (looked in /lab/actors/proc.ts)\n' +
        "  fix: correct the path: relative packages start from the config file's folder, /lab",
    );
    expect(formatDiagnostic(diagnostic, { cwd: '/elsewhere' })).toMatch(/^\/lab\/pipeline\.yaml:12:5: error: /);
    expect(formatDiagnostic(diagnostic)).toMatch(/^\/lab\/pipeline\.yaml:12:5: error: /);
  });

  it('formats a config path when there is no file, and indents a multi-line fix', () => {
    const { file: _file, line: _line, column: _column, ...fromObject } = diagnostic;
    expect(formatDiagnostic({ ...fromObject, severity: 'warning', fix: 'write it as\n  settings:' })).toBe(
      'actors.Processor.package: warning: actor "Processor": module "actors/proc.ts" not found (looked in /lab/actors/proc.ts)\n' +
        '  fix: write it as\n         settings:',
    );
    expect(formatDiagnostics([diagnostic, diagnostic], { cwd: '/lab' }).split('\n')).toHaveLength(4);
    expect(
      formatDiagnostic({ severity: 'error', message: 'import failed: Transform failed:\nbroken.ts:2:0', path: [] }),
    ).toBe('error: import failed: Transform failed:\n  broken.ts:2:0');
  });

  it('throws a ConfigError listing every error, and passes a valid config through', async () => {
    const result = await loadConfig(fixture('several-errors.yaml'), { adapter });
    expect(configError(result)).toBeInstanceOf(ConfigError);
    let thrown: unknown;
    try {
      assertConfig(result, { cwd: fixtures });
    } catch (error) {
      thrown = error;
    }
    expect(ConfigError.isInstance(thrown)).toBe(true);
    const error = thrown as ConfigError;
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.diagnostics).toEqual(result.diagnostics);
    const lines = error.message.split('\n');
    expect(lines[0]).toBe('invalid pipeline config (7 errors):');
    expect(lines.filter((line) => line.startsWith('several-errors.yaml:'))).toHaveLength(7);
    expect(error.message).not.toContain('control_port');

    const good = await loadConfig(fixture('good.yaml'), { adapter });
    expect(configError(good)).toBeUndefined();
    expect(assertConfig(good)).toBe(good.config);
  });
});
