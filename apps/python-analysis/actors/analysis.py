"""The analysis of apps/python-analysis, in Python with numpy: an `improv_ts.Actor` like any other."""

import numpy as np

from improv_ts import Actor

# Peaks of the mean image closer than this (pixels) are one cell.
SEPARATION = 8
# Frames after a cell's stimulus ends before its activity counts toward its baseline again.
SETTLE = 15
# How fast the baseline follows a cell's activity (an exponential running mean).
ALPHA = 0.05


class Analysis(Actor):
    """Finds the cells, measures each one's activity in every frame, and decides the next stimulus.

    1. The first `warmup` frames are averaged; the cells are the peaks of that mean image standing
       `min_peak` above its background (at most `max_cells`).
    2. A cell's activity in a frame is the mean of a (2 `radius` + 1)² window on it, over the frame's
       median. Its baseline is its running mean activity while it is not stimulated.
    3. One cell at a time is stimulated for `trial` frames, counted from the first frame the camera
       made with the stimulus on (so a slow loop makes a trial later, never shorter). Its response is
       its activity over the second half of the trial minus its baseline.
    4. The next cell is the one tried least often, the least active first. A cell whose response is
       below `threshold` is left out from then on: the adaptive part.

    Each frame is deleted from the store once measured (nothing else reads it), and a small message
    goes on: `{n, t, activity, cells, stimulus}`, with `result` on the frame that ended a trial.
    """

    def setup(self):
        options = self.options
        self.warmup = int(options.get("warmup", 20))
        self.max_cells = int(options.get("max_cells", 10))
        self.min_peak = float(options.get("min_peak", 0.4))
        self.radius = int(options.get("radius", 2))
        self.trial = int(options.get("trial", 30))
        self.threshold = float(options.get("threshold", 0.4))
        self.mean_image = None
        self.frames = 0
        self.cells = []  # [x, y] of each cell found
        self.stimulus = None  # the current decision: {id, cell, x, y}
        self.decisions = 0
        self.during = []  # the stimulated cell's activity in each frame made with the stimulus on
        self.log.info(f"numpy {np.__version__}; finding cells in the first {self.warmup} frames")

    def run_step(self):
        message = self.q_in.get()  # waits without using CPU; signals still reach the actor meanwhile
        frame = self.store.get(message["key"])  # float32, shape (256, 256): the camera put it with its shape
        activity = self.measure(frame, message["n"])
        self.store.delete(message["key"])  # measured; nothing else needs the frame
        out = {
            "n": message["n"],
            "t": message["t"],
            "activity": [round(float(value), 4) for value in activity],
            "cells": self.cells,
            "stimulus": self.stimulus,
        }
        if self.cells:
            result = self.follow(activity, message["n"], message.get("stimulus"))
            if result is not None:
                out["result"] = result
            out["stimulus"] = self.stimulus
        self.q_out.put(out)

    def stop(self):
        if not self.cells:
            self.log.info(f"stopped after {self.frames} frames, before any cell was found")
            return
        rows = []
        for cell, (x, y) in enumerate(self.cells):
            responses = self.responses[cell]
            trials = f"{len(responses)} trial{'' if len(responses) == 1 else 's'}"
            mean = f"{np.mean(responses):+.2f} over {trials}" if responses else "not tried"
            rows.append(f"cell {cell} at ({x}, {y}): {mean}{' (left out)' if self.left_out[cell] else ''}")
        self.log.info(f"analysed {self.frames} frames; " + "; ".join(rows))

    # -- measuring

    def measure(self, frame, n):
        """Per-cell activity in `frame` (none until the cells are found, from the first `warmup` frames)."""
        self.frames += 1
        if not self.cells:
            self.mean_image = frame.astype(np.float64) if self.mean_image is None else self.mean_image + frame
            if self.frames >= self.warmup:
                self.find_cells(self.mean_image / self.frames)
            if not self.cells:
                return np.zeros(0)
        windows = frame[self.rows, self.cols]  # (cells, 2r+1, 2r+1), one fancy-indexing read
        return windows.mean(axis=(1, 2)) - np.median(frame)

    def find_cells(self, image):
        image = image - np.median(image)
        edge = self.radius
        work = image.copy()
        work[:edge, :] = work[-edge:, :] = work[:, :edge] = work[:, -edge:] = -np.inf
        cells = []
        while len(cells) < self.max_cells:
            y, x = np.unravel_index(np.argmax(work), work.shape)
            if work[y, x] < self.min_peak:
                break
            cells.append([int(x), int(y)])
            work[max(0, y - SEPARATION) : y + SEPARATION + 1, max(0, x - SEPARATION) : x + SEPARATION + 1] = -np.inf
        if not cells:
            self.log.warning(f"no cell stands {self.min_peak} above the background; averaging more frames")
            return
        self.cells = cells
        offsets = np.arange(-self.radius, self.radius + 1)
        xs = np.array([x for x, _ in cells])
        ys = np.array([y for _, y in cells])
        self.rows = ys[:, None, None] + offsets[None, :, None]
        self.cols = xs[:, None, None] + offsets[None, None, :]
        self.baseline = image[self.rows, self.cols].mean(axis=(1, 2))
        self.quiet_from = np.zeros(len(cells), dtype=np.int64)
        self.trials = np.zeros(len(cells), dtype=np.int64)
        self.left_out = np.zeros(len(cells), dtype=bool)
        self.responses = [[] for _ in cells]
        where = " ".join(f"({x}, {y})" for x, y in cells)
        self.log.info(f"found {len(cells)} cells in the mean of {self.frames} frames: {where}")
        self.decide(last=None)

    # -- deciding

    def follow(self, activity, n, applied):
        """Updates the baselines and the running trial with this frame; decides anew when the trial is over."""
        on = applied["cell"] if applied else None
        for cell in range(len(self.cells)):
            if cell == on:
                self.quiet_from[cell] = n + SETTLE
            elif n >= self.quiet_from[cell]:
                self.baseline[cell] += ALPHA * (activity[cell] - self.baseline[cell])
        current = self.stimulus
        if current is None or applied is None or applied["id"] != current["id"]:
            return None  # the camera has not applied the current decision yet
        cell = current["cell"]
        self.during.append(activity[cell])
        if len(self.during) < self.trial:
            return None
        response = float(np.mean(self.during[self.trial // 2 :]) - self.baseline[cell])
        responds = response >= self.threshold
        self.trials[cell] += 1
        self.responses[cell].append(response)
        x, y = self.cells[cell]
        if not responds:
            self.left_out[cell] = True
            self.log.info(
                f"cell {cell} at ({x}, {y}) does not respond ({response:+.2f} < {self.threshold}): left out from now on"
            )
        elif self.trials[cell] == 1:
            self.log.info(f"cell {cell} at ({x}, {y}) responds: {response:+.2f}")
        self.decide(last=cell)
        return {"cell": cell, "x": x, "y": y, "response": round(response, 4), "responds": bool(responds)}

    def decide(self, last):
        """The next stimulus: the cell tried least often (the least active first), not the last one if another is left."""
        candidates = [cell for cell in range(len(self.cells)) if not self.left_out[cell]]
        if len(candidates) > 1 and last in candidates:
            candidates.remove(last)
        self.during = []
        if not candidates:
            if self.stimulus is not None:
                self.log.warning("no cell responds to the stimulus; stimulating none")
            self.stimulus = None
            return
        cell = min(candidates, key=lambda c: (self.trials[c], self.baseline[c]))
        self.decisions += 1
        x, y = self.cells[cell]
        self.stimulus = {"id": self.decisions, "cell": cell, "x": x, "y": y}
