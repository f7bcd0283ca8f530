"""The bench's Python sink (`--placement python`): `BenchSink` of `actors.ts`, step for step, as a Python actor.

It runs in a Python process of its own (improv_ts's actor host), behind a zmq link from a TypeScript
source, on the pipeline's lmdb or redis store. Like the TypeScript sink it checks every value (for
store rows it reads it with `store.get`, so the hop includes the store read), records the latency of
paced messages, deletes the key and reports the phase on the board.

The board and the samples buffer are SharedArrayBuffers of the bench's process; here they are
`bytearray`s that the actor's control channel mirrors (`improv_ts/_channel.py`). Two consequences:

- the phase's parameters reach this process through the mirror, so the first message of a phase can
  come before them: the sink pumps the control channel until the phase word says that phase;
- what the sink writes reaches the bench at the next mirror round, so it keeps its samples in a list
  while the phase runs (a mirror round diffs every changed buffer, which would cost time between
  messages) and writes them, its counters and the phase it finished only at the end, then sends
  them at once.

Timestamps: the source stamps `t` on the bench's clock (µs since `epochMs`); `clockOffsetUs` turns
this process's CLOCK_MONOTONIC (`time.monotonic_ns`, which Node's `process.hrtime` also reads) into
that clock, so `now() - t` is the one-way latency without an echo.
"""

import struct
import time

from improv_ts import Actor, Empty

# The board (board.ts): Int32 words, Float64 parameters and counters.
W_PHASE = 0
W_DONE = 8
PARAMS_OFFSET = 256
STATS_OFFSET = 512
STATS_STRIDE = 8

P_MODE = 0
P_PATH = 1
P_SIZE = 2
P_COUNT = 3
P_SOURCE_DELETES = 6

S_RECEIVED = 1
S_END_US = 4
S_ERRORS = 5

MODE_LATENCY = 1
PATH_PUT_DELETE = 4

#: How long a step waits for a message before it returns (so signals and stop are served).
GET_TIMEOUT_S = 1.0
#: How long a wait for the phase word pumps the control channel at a time.
PHASE_POLL_S = 0.002

_I32 = struct.Struct("<i")
_F64 = struct.Struct("<d")


class BenchSink(Actor):
    def setup(self):
        options = self.options
        self.board = options["board"]
        self.index = int(options["index"])
        self.sources = int(options.get("sources", 1))
        samples = options.get("samples")
        self.samples_buffer = samples
        self.capacity = 0 if samples is None else len(samples) // 8
        self.offset_us = float(options["clockOffsetUs"])
        self.phase = -1
        self.latency = False
        self.size = 0
        self.sink_deletes = True
        self.reads_data = True
        self.expected = 0
        self.received = 0
        self.ends = 0
        self.taken = []

    def now(self):
        """µs on the bench's clock."""
        return time.monotonic_ns() / 1000 + self.offset_us

    def run_step(self):
        try:
            message = self.q_in.get(timeout=GET_TIMEOUT_S)
        except Empty:
            return
        phase = message["p"]
        if phase != self.phase:
            # The parameters come through the mirror; they are there once the phase word is.
            while _I32.unpack_from(self.board, 4 * W_PHASE)[0] < phase:
                self.sleep(PHASE_POLL_S)
            self.begin(phase)
        index = message["i"]
        if index < 0:
            self.ends += 1
            if self.ends == self.sources:
                self.end()
            return
        key = message.get("k")
        if self.reads_data:
            data = message.get("d") if key is None else self.store.get(key)
            size = getattr(data, "size", -1)
            if size != self.size or (size > 0 and data.item(0) != (index & 255)):
                self.count_error()
        if self.latency and self.received < self.capacity:
            self.taken.append(self.now() - message["t"])
        if key is None:
            if not self.reads_data:
                self.count_error()
        elif self.sink_deletes and not self.store.delete(key) and not self.reads_data:
            self.count_error()
        self.received += 1
        if self.latency and self.received == self.expected:
            self.end()

    def param(self, slot):
        return _F64.unpack_from(self.board, PARAMS_OFFSET + 8 * slot)[0]

    def set_stat(self, slot, value):
        _F64.pack_into(self.board, STATS_OFFSET + 8 * (self.index * STATS_STRIDE + slot), float(value))

    def count_error(self):
        at = STATS_OFFSET + 8 * (self.index * STATS_STRIDE + S_ERRORS)
        _F64.pack_into(self.board, at, _F64.unpack_from(self.board, at)[0] + 1)

    def begin(self, phase):
        self.phase = phase
        self.latency = self.param(P_MODE) == MODE_LATENCY
        self.size = int(self.param(P_SIZE))
        self.sink_deletes = self.param(P_SOURCE_DELETES) != 1
        self.reads_data = self.param(P_PATH) != PATH_PUT_DELETE
        self.expected = int(self.param(P_COUNT)) * self.sources
        self.received = 0
        self.ends = 0
        self.taken = []

    def end(self):
        end_us = self.now()
        if self.taken:
            struct.pack_into(f"<{len(self.taken)}d", self.samples_buffer, 0, *self.taken)
            self.taken = []
        self.set_stat(S_RECEIVED, self.received)
        self.set_stat(S_END_US, end_us)
        _I32.pack_into(self.board, 4 * (W_DONE + self.index), self.phase)
        # Now, not at the next mirror round: the bench waits for the phase word.
        self.sleep(0)
