/** Which runtime this actor runs on, and its process id. */
export const runtime = 'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';
export const pid = (globalThis as unknown as { process: { pid: number } }).process.pid;

/** What travels on the links: a frame's store key and where it has been. */
export interface FrameMessage {
  n: number;
  key: string;
  /** `Actor@runtime` of each actor it went through. */
  via: string[];
}

/** What the analysis sends the viewer. */
export interface SpotMessage {
  n: number;
  x: number;
  y: number;
  via: string[];
}
