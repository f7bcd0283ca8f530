import type { PipelineStatus } from '@improv/core';
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../src/output.ts';

describe('status output', () => {
  it('shows each actor’s steps, errors, restarts and process, and each link’s depth, traffic, drops and a waiting producer', () => {
    const status: PipelineStatus = {
      state: 'running',
      actors: [
        { name: 'Generator', state: 'running', steps: 1200, errors: 0, restarts: 0 },
        {
          name: 'Viewer',
          state: 'failed',
          steps: 3,
          errors: 1,
          restarts: 0,
          error: { name: 'Error', message: 'boom' },
        },
        {
          name: 'Analysis',
          state: 'running',
          steps: 40,
          errors: 0,
          restarts: 2,
          process: { runtime: 'deno', pid: 4242 },
        },
      ],
      links: [
        {
          connection: 'frames',
          from: { actor: 'Generator', link: 'q_out' },
          to: { actor: 'Viewer', link: 'q_in' },
          capacity: 16,
          policy: 'block',
          depth: 16,
          sent: 1200,
          dropped: 7,
          waiting: true,
          waitingMs: 6200,
        },
      ],
    };
    expect(formatStatus(status).split('\n')).toEqual([
      'pipeline: running',
      '  Generator  running  1200 steps',
      '  Viewer     failed   3 steps, 1 error  boom',
      '  Analysis   running  40 steps, restarted 2×  [deno process 4242]',
      'links:',
      '  Generator.q_out → Viewer.q_in  16/16 waiting, 1200 sent, 7 dropped  blocked: Generator has waited 6.2 s for room',
    ]);
  });
});
