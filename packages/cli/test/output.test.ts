import type { PipelineStatus } from '@improv/core';
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../src/output.ts';

describe('status output', () => {
  it('shows each actor’s steps and errors, and each link’s depth, traffic, drops and a waiting producer', () => {
    const status: PipelineStatus = {
      state: 'running',
      actors: [
        { name: 'Generator', state: 'running', steps: 1200, errors: 0 },
        { name: 'Viewer', state: 'failed', steps: 3, errors: 1, error: { name: 'Error', message: 'boom' } },
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
      'links:',
      '  Generator.q_out → Viewer.q_in  16/16 waiting, 1200 sent, 7 dropped  blocked: Generator has waited 6.2 s for room',
    ]);
  });
});
