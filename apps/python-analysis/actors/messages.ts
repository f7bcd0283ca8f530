/**
 * What travels on the three links of the loop. Python sends plain dicts, lists and numbers; msgpack
 * turns them into these objects.
 */

/** A stimulus: where to shine the light. `id` counts the analysis's decisions; `cell` is its index for the cell. */
export interface Target {
  id: number;
  cell: number;
  x: number;
  y: number;
}

/** Camera → Analysis: a frame's store key, when it was made (`Date.now()`), its number, and the stimulus on while it was made. */
export interface FrameMessage {
  key: string;
  t: number;
  n: number;
  stimulus: Target | null;
}

/** What the analysis found out about a cell at the end of a trial (a stretch of frames with the cell stimulated). */
export interface TrialResult {
  cell: number;
  x: number;
  y: number;
  /** Activity while stimulated minus the cell's baseline. */
  response: number;
  responds: boolean;
}

/** Analysis → Stimulus, one per frame. */
export interface AnalysisMessage {
  n: number;
  /** The frame's `t`, passed on: the stimulus actor measures the loop's latency from it. */
  t: number;
  /** Per cell: the mean of a small window around it, over the frame's background. Empty until cells are found. */
  activity: number[];
  /** The cells the analysis found, `[x, y]` each. */
  cells: [number, number][];
  /** The next stimulus, as the analysis decided it (`null`: none yet, or no cell left that responds). */
  stimulus: Target | null;
  /** Set on the frame that ended a trial. */
  result?: TrialResult;
}

/** Stimulus → Camera (`q_ctl`): the stimulus to apply from now on. */
export type ControlMessage = Target | null;
