"""The actor host of a Python actor process: what `packages/core/src/worker/host.ts` is to a TypeScript actor.

Nexus starts `python -m improv_ts._process` with this package on the path. The process connects to
the Unix socket Nexus made for it, proves itself with the token, and then speaks the control
protocol of every actor (`packages/core/src/worker/protocol.ts`): it takes `init` (the actor's file
and class, its links, the store) and the signals, and sends its states, acknowledgements, counters
and log records. Signals, states and failures behave as for a TypeScript actor:

- a Python exception while loading the file or in `setup()` fails the actor, with its traceback in
  the log; one in `run_step()` is logged (repeats summarised once a second) and the loop goes on
  after a back-off (1 ms doubling to 1 s), or fails the actor under `on_error: fail`;
- pause and stop park the actor between steps or inside a link call that waits (nothing it holds is
  lost); run and resume let it go on where it stood;
- the heartbeat word moves while the loop turns, so a `run_step()` that never returns is seen as
  stuck, as a TypeScript actor's event loop is; a crash of the interpreter ends only this process.

One thread does everything: the steps, the links' waits and the control channel (see `_loop.py`).
What the host measures for `nexus.metrics()` (step times, latency, load) and the summaries of
`nexus.tap()` are `_meter.py`'s; they go up with the counters, at most twice a second.
"""

import asyncio
import importlib
import importlib.util
import inspect
import logging
import os
import select
import struct
import sys
import sysconfig
import time
import traceback
from pathlib import Path
from urllib.parse import unquote, urlparse

import zmq

from . import _loop, _meter, _publish
from .actor import Actor
from .errors import LinkClosedError, _Quitting
from .links import OutLink, open_link
from .stores import connect_store, keys_in

CONTROL_HEARTBEAT = 1
#: How often a loop of steps that never waits still reads the control channel.
YIELD_EVERY_S = 0.005
BACKOFF_FIRST_S = 0.001
BACKOFF_MAX_S = 1.0
COUNTERS_EVERY_S = 0.5
#: How often changed shared words are sent when nothing else sends them.
MIRROR_EVERY_S = 0.01
SUMMARY_EVERY_S = 1.0
#: The store's batched deletes (lmdb) are committed at most this long after the oldest was made.
DELETES_WAIT_S = 0.002
MAX_PLACES = 200

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}


def serialize_error(error):
    """`{name, message, stack}` of a Python exception, as `serializeError` makes of a JavaScript one."""
    message = str(error)
    if isinstance(error, SyntaxError) and error.filename:
        message = f"{error.msg} ({error.filename}:{error.lineno})"
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {"name": type(error).__name__, "message": message, "stack": stack.rstrip()}


#: The folders of this package and of the `improv` compatibility package beside it (only these two:
#: their parent may be site-packages, whose other packages are the actor's business).
_OWN_FOLDERS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name) + os.sep
    for name in ("improv_ts", "improv")
)


#: Where libraries are: the standard library and the folders packages install to.
_LIBRARY_FOLDERS = tuple(
    {os.path.join(os.path.abspath(sysconfig.get_paths()[key]), "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _is_users(filename):
    path = os.path.abspath(filename)
    if path.startswith(_OWN_FOLDERS) or path.startswith(_LIBRARY_FOLDERS):
        return False
    parts = path.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts


def place_of(error):
    """`ValueError at actors/x.py:12`: the error's class and the innermost frame of its traceback in the
    user's code (not improv_ts or improv, the standard library or an installed package: where the actor
    called what raised), or else the innermost one."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    users = [frame for frame in frames if _is_users(frame.filename)]
    frame = (users or frames)[-1]
    return f"{type(error).__name__} at {frame.filename}:{frame.lineno}"


class ErrorLog:
    """Repeats of the same error (class + place) are counted and summarised at most once a second."""

    def __init__(self, log, what):
        self.log = log
        self.what = what
        self.places = {}
        self.pending = 0
        self.last_summary = 0.0

    def record(self, error, note):
        place = place_of(error)
        seen = self.places.get(place)
        text = str(error)[:200]
        if seen is None:
            if len(self.places) >= MAX_PLACES:
                self.places.clear()
            self.places[place] = [0, text]
            self.log("error", f"{self.what} threw; {note}: {type(error).__name__}: {error}", serialize_error(error)["stack"])
            return
        seen[0] += 1
        seen[1] = text
        self.pending += 1
        self.flush(False)

    def flush(self, force):
        if self.pending == 0:
            return
        now = time.monotonic()
        if not force and now - self.last_summary < SUMMARY_EVERY_S:
            return
        for place, seen in self.places.items():
            if seen[0] == 0:
                continue
            self.log("error", f"{self.what} threw {place} {seen[0]} more time{'' if seen[0] == 1 else 's'} (last: {seen[1]})")
            seen[0] = 0
        self.pending = 0
        self.last_summary = now

    def reset(self):
        self.flush(True)
        self.places.clear()


#: Lines a second one actor may log, on average; it may log as many at once (as TypeScript actors).
LOG_LINES_PER_SECOND = 1000


class LogBudget:
    """How many log lines the actor may send up, as the TypeScript host's (`core/_log-budget.ts`).

    Log records share the control channel with states and signals: an actor that logs in a tight
    loop must not bury them. Past LOG_LINES_PER_SECOND, lines are dropped and counted, and one
    warning says how many, a second after the first of them (the host's tick looks) and at the end.
    """

    def __init__(self, host, clock=time.monotonic):
        self.host = host
        self.clock = clock
        self.tokens = float(LOG_LINES_PER_SECOND)
        self.refilled = clock()
        self.dropped = 0
        self.first_drop = None

    def take(self):
        """Whether one more line may go now; when not, it is counted dropped."""
        now = self.clock()
        self.tokens = min(LOG_LINES_PER_SECOND, self.tokens + (now - self.refilled) * LOG_LINES_PER_SECOND)
        self.refilled = now
        if self.tokens < 1:
            self.dropped += 1
            if self.first_drop is None:
                self.first_drop = now
            return False
        self.tokens -= 1
        return True

    def tick(self):
        if self.first_drop is not None and self.clock() - self.first_drop >= 1:
            self.flush()

    def flush(self):
        """Reports the lines dropped since the last report, if any."""
        count, self.dropped, self.first_drop = self.dropped, 0, None
        if count == 0:
            return
        self.host.emit(
            "warn",
            f'{count} log line{"" if count == 1 else "s"} dropped: actor "{self.host.name}" logged more than '
            f"{LOG_LINES_PER_SECOND} lines a second, and signals and states come first. Log a summary now and "
            "then instead of every step, or send numbers with self.publish()",
        )


class _Forward(logging.Handler):
    """Every `logging` record of the process goes to the pipeline's log as the actor's, within its budget."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def emit(self, record):
        if not self.host.log_budget.take():
            return
        try:
            message = record.getMessage()
            stack = None
            if record.exc_info and record.exc_info[1] is not None:
                stack = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            level = _LEVELS.get(record.levelno) or ("error" if record.levelno > logging.ERROR else "debug")
            self.host.emit(level, message, stack)
        except Exception:  # a log record must never break the actor
            self.handleError(record)


class NoSuchClass(LookupError):
    """The actor's file has no class of the configured name."""

    def __init__(self, message, classes):
        super().__init__(message)
        self.classes = classes


class NotAnActor(TypeError):
    """The configured class is no actor class."""


class ActorHost(_loop.Loop):
    """Drives one actor through the signals Nexus sends, over `channel`."""

    def __init__(self, channel):
        self.channel = channel
        self.name = "(loading)"
        self.state = "starting"
        self.actor = None
        self.links = {}
        self.store = None
        self.control = None
        self.on_error = "continue"
        self.running = False
        self.set_up = False
        self.depth = 0
        self.quitting = False
        self.done = False
        self.steps = 0
        self.errors = 0
        self.reported = (0, 0)
        self.heartbeat_s = 0.1
        self.next_beat = 0.0
        self.next_counters = 0.0
        self.last_mirror = 0.0
        self.track = False
        self.taken = []
        self.error_log = ErrorLog(self.emit, "run_step()")
        self.async_loop = None
        self.run_step = None
        #: Step times, latency, load and taps (`_meter.py`).
        self.meter = _meter.Meter(self.post)
        #: `self.publish()`: kept while watched and sent up (`_publish.py`).
        self.publisher = _publish.Publisher(self.post, lambda text: self.emit("warn", text))
        #: What the actor logs (not the host's own news) goes up within this budget.
        self.log_budget = LogBudget(self)

    # -- the loop links wait in

    def wait(self, sockets, timeout):
        """Waits for `sockets`, `timeout` seconds or a control message (acted on before returning)."""
        self.tick()
        limit = self.next_beat - time.monotonic()
        if timeout is not None:
            limit = min(limit, timeout)
        # What the actor published goes up when due (~16 ms), also while it waits for a message.
        due = self.publisher.due_in()
        if due is not None:
            limit = min(limit, due)
        staged = self.store.staged_for() if self.store is not None else None
        if staged is not None:
            limit = min(limit, DELETES_WAIT_S - staged)
        limit = max(0.0, limit)
        waiting = time.perf_counter()
        if sockets:
            poller = zmq.Poller()
            poller.register(self.channel.fileno(), zmq.POLLIN)
            for socket in sockets:
                poller.register(socket, zmq.POLLIN)
            ready = dict(poller.poll(int(limit * 1000 + 0.999)))
            readable = self.channel.fileno() in ready
        else:
            readable = bool(select.select([self.channel], [], [], limit)[0])
        # Time not spent here is the host's work: its "event-loop utilisation".
        self.meter.waited += time.perf_counter() - waiting
        if readable:
            self.pump()
        self.tick()

    def flush(self):
        self.channel.flush()
        self.last_mirror = time.monotonic()

    def tick(self):
        """The heartbeat, the counters and the mirror round, when they are due."""
        now = time.monotonic()
        if self.control is not None and now >= self.next_beat:
            (beat,) = struct.unpack_from("<i", self.control, 4 * CONTROL_HEARTBEAT)
            struct.pack_into("<i", self.control, 4 * CONTROL_HEARTBEAT, (beat + 1) & 0x7FFFFFFF)
            self.next_beat = now + self.heartbeat_s
            if now >= self.next_counters:
                self.next_counters = now + COUNTERS_EVERY_S
                self.report_counters(periodic=True)
                self.error_log.flush(False)
        elif self.control is None:
            self.next_beat = now + 0.1
        self.publisher.tick()
        self.log_budget.tick()
        self.commit_deletes(DELETES_WAIT_S)
        if now - self.last_mirror >= MIRROR_EVERY_S:
            self.flush()

    def commit_deletes(self, after):
        """Commits the store's batched deletes once the oldest has waited `after` seconds (0: now)."""
        store = self.store
        if store is None:
            return
        staged = store.staged_for()
        if staged is None or staged < after:
            return
        try:
            store.flush()
        except Exception as error:
            self.emit("warn", f"the store could not commit the deletes of this actor: {error}")

    def pump(self):
        """Acts on every control message that has arrived."""
        for message in self.channel.receive():
            self.handle(message)
        if self.channel.closed:
            # Nexus is gone: no actor outlives it.
            os._exit(0)

    # -- messages

    def post(self, message):
        self.channel.send(message)

    def emit(self, level, message, stack=None):
        # A float, as Date.now() is sent from TypeScript (an int would do too: TypeScript reads a 64-bit integer in the safe range as a number).
        record = {"time": float(round(time.time() * 1000)), "level": level, "source": self.name, "message": message}
        if stack:
            record["stack"] = stack
        self.post({"type": "log", "record": record})

    def set_state(self, state, error=None, phase=None):
        self.report_counters()
        self.state = state
        message = {"type": "state", "state": state}
        if error is not None:
            message["error"] = error
        if phase is not None:
            message["phase"] = phase
        self.post(message)

    def report_counters(self, periodic=False):
        """Reports changed counters; `periodic` (twice a second) also ends the measuring window and sends what it measured."""
        changed = (self.steps, self.errors) != self.reported
        if periodic:
            message = self.meter.report(self.steps, self.errors, changed)
        else:
            message = {"type": "counters", "steps": self.steps, "errors": self.errors} if changed else None
        if message is None:
            return
        self.reported = (self.steps, self.errors)
        self.post(message)

    def handle(self, message):
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "init":
            self.init(message)
        elif kind == "signal":
            self.signal(message["signal"])
        elif kind == "tap":
            self.meter.tap(message.get("link"), message.get("on"))
        elif kind == "publish":
            self.publisher.set(message.get("on"))

    # -- init

    def init(self, message):
        actor = message["actor"]
        self.name = actor["name"]
        self.on_error = actor.get("onError", "continue")
        self.control = message["control"]
        self.heartbeat_s = message.get("heartbeatMs", 100) / 1000
        self.track = bool(message.get("storeUse", {}).get("trackMessages"))
        try:
            # Deletes are batched: the host commits them (`commit_deletes`, `before_send`, `finish`).
            self.store = connect_store(message["store"], batch_deletes=True)
            if getattr(self.store, "owner_id", None) is not None:
                self.post({"type": "store-owner", "ownerId": self.store.owner_id})
            self.meter.start(message.get("measure"), self.store)
            hooks = _LinkHooks(self)
            for name, descriptor in message["links"].items():
                self.links[name] = open_link(descriptor, self, hooks)
            links = {name: self.meter.wrap(name, _store_side(link, self)) for name, link in self.links.items()}
            cls = load_class(actor["moduleUrl"], actor["className"], actor.get("package"))
            context = {
                "name": self.name,
                "options": actor.get("options") or {},
                "links": links,
                "store": self.store,
                "loop": self,
                "publisher": self.publisher,
            }
            self.actor = cls._improv_create(context)
            self.run_step = step_method(self.actor, actor["className"])
            self.set_state("waiting")
        except BaseException as error:  # noqa: BLE001 - whatever a user's file raises (even sys.exit) fails the actor
            if isinstance(error, KeyboardInterrupt):
                raise
            self.fail("failed to load", error, "load")

    def fail(self, what, error, phase):
        self.emit("error", f"{what}: {type(error).__name__}: {serialize_error(error)['message']}", serialize_error(error)["stack"])
        self.running = False
        self.set_state("failed", serialize_error(error), phase)

    # -- signals

    def signal(self, signal):
        if signal == "quit":
            return self.quit()
        if self.actor is None or self.state == "failed":
            return
        if signal == "setup":
            if self.state != "waiting":
                return self.ignored(signal)
            try:
                self.call(self.actor.setup)
                self.step_ended("setup()")
                self.set_up = True
                self.set_state("ready")
            except Exception as error:
                self.fail("setup() failed", error, "setup")
        elif signal == "run":
            if self.state not in ("ready", "stopped"):
                return self.ignored(signal)
            self.error_log.reset()
            self.set_state("running")
            self.start()
        elif signal == "pause":
            if self.state != "running":
                return self.ignored(signal)
            self.park()
            self.set_state("paused")
        elif signal == "resume":
            if self.state != "paused":
                return self.ignored(signal)
            self.set_state("running")
            self.start()
        elif signal == "stop":
            if self.state not in ("running", "paused"):
                return self.ignored(signal)
            self.park()
            self.post({"type": "ack", "signal": "stop"})
            self.call_stop()
            self.set_state("stopped")

    def ignored(self, signal):
        self.emit("warn", f'ignored signal "{signal}" in state {self.state}')

    def start(self):
        self.running = True
        for link in self.links.values():
            link.release()

    def park(self):
        """Stops the steps and holds every link: a step parked in a link call stays there until run or resume."""
        self.running = False
        for link in self.links.values():
            link.hold(lambda: None)
        self.error_log.flush(True)

    def call_stop(self):
        try:
            self.call(self.actor.stop)
        except Exception as error:
            self.emit("error", f"stop() threw: {type(error).__name__}: {error}", serialize_error(error)["stack"])
        self.step_ended("stop()")

    def quit(self):
        if self.quitting:
            return
        self.quitting = True
        if self.actor is not None and self.set_up and self.state in ("ready", "running", "paused"):
            self.park()
            self.call_stop()
        self.running = False
        # Closing makes a parked get() raise and ends a parked put(), so a step in a link unwinds.
        for link in self.links.values():
            try:
                _close_at_end(link)
            except Exception as error:
                self.emit("warn", f"closing link {getattr(link, 'name', '?')} failed: {error}")
        if self.depth == 0:
            self.finish()

    def finish(self):
        if self.done:
            return
        self.error_log.flush(True)
        self.log_budget.flush()
        self.publisher.flush()
        # What the links' sockets still send leaves before the process ends (each lingers 1 s at most).
        _loop.context().destroy(linger=1000)
        if self.store is not None:
            try:
                self.store.close()
            except Exception as error:
                self.emit("warn", f"closing the store client failed: {error}")
        self.set_state("exited")
        self.done = True

    # -- the steps

    def call(self, method):
        """Calls one of the actor's methods (awaiting it when it is `async def`); quit finishes only outside them."""
        self.depth += 1
        try:
            result = method()
            if result is not None and inspect.isawaitable(result):
                if self.async_loop is None:
                    self.async_loop = asyncio.new_event_loop()
                result = self.async_loop.run_until_complete(result)
            return result
        except _Quitting:
            return None  # quit came while it slept: it ends here
        finally:
            self.depth -= 1

    def step_ended(self, after):
        """After a step (and setup/stop): messages taken are counted out, what was read is released, and
        what was published goes up if due."""
        try:
            if self.taken:
                taken, self.taken = self.taken, []
                self.store.track(taken, -1)
            self.store.release()
        except Exception as error:
            self.emit("warn", f"the store could not release what {after} left: {error}")
        self.commit_deletes(DELETES_WAIT_S)
        self.publisher.tick()

    def before_send(self, message, link):
        """Before a message leaves the actor: its reader sees the actor's deletes, and with `store_eviction`
        on, the message's keys are counted in flight once per sink."""
        self.commit_deletes(0)
        if self.track:
            keys = keys_in(message, self.store)
            if keys:
                self.store.track(keys, max(1, getattr(link, "sinks", 1)))

    def serve(self):
        """The process's loop: steps while running, else waits for the control channel."""
        backoff = 0.0
        last_yield = time.monotonic()
        while not self.done:
            if self.quitting:
                self.finish()
                break
            if not self.running or self.actor is None:
                self.wait([], None)
                continue
            try:
                # Timed: every step of a slow actor, a random sample of a fast one's (see _meter.py).
                started = self.meter.step_starts()
                try:
                    self.call(self.run_step)
                finally:
                    if started is not None and self.meter.measuring:
                        self.meter.step_took(time.perf_counter() - started)
                    self.step_ended("run_step()")
                self.steps += 1
                backoff = 0.0
            except Exception as error:
                # Quitting closed the links under a step: that is the end, not an error.
                if not (isinstance(error, LinkClosedError) and (self.quitting or not self.running)):
                    self.errors += 1
                    if self.on_error == "fail":
                        self.fail_run(error)
                    else:
                        self.error_log.record(error, "the loop goes on after a back-off (on_error: fail makes it fail instead)")
                        backoff = BACKOFF_FIRST_S if backoff == 0 else min(backoff * 2, BACKOFF_MAX_S)
                        self.sleep(backoff)
                        last_yield = time.monotonic()
            # Signals arrive on the channel, read when the loop waits: every few ms at least. Credit and
            # drop reports of the links go out then too, not only at their next call.
            if time.monotonic() - last_yield >= YIELD_EVERY_S:
                for link in self.links.values():
                    link.flush()
                self.wait([], 0)
                last_yield = time.monotonic()

    def sleep(self, seconds):
        """Waits `seconds`, or less when a signal comes."""
        until = time.monotonic() + seconds
        while self.running and not self.quitting:
            left = until - time.monotonic()
            if left <= 0:
                return
            self.wait([], left)

    def fail_run(self, error):
        self.running = False
        for link in self.links.values():
            _close_at_end(link)
        self.fail("run_step() threw; the actor fails (on_error: fail)", error, "run")


def _close_at_end(link):
    """Closes a link at quit or failure: a source does not wait for acknowledgements (see `OutLink.close`)."""
    if isinstance(link, OutLink):
        link.close(settle=False)
    else:
        link.close()


class _LinkHooks:
    """What the links report: a message nobody will read releases its store keys; warnings go to the log."""

    def __init__(self, host):
        self.host = host

    def dropped(self, message, reason=None):
        store = self.host.store
        if store is None:
            return
        for key in keys_in(message, store):
            try:
                store.delete(key)
            except Exception as error:
                self.host.emit("warn", f"could not release the store key {key} of a dropped message: {error}")

    def dropped_for_one_sink(self, message):
        """Fan-out: one sink will not read `message` (others may): its keys are counted out once."""
        if not self.host.track or self.host.store is None:
            return
        keys = keys_in(message, self.host.store)
        if keys:
            try:
                self.host.store.track(keys, -1)
            except Exception as error:
                self.host.emit("warn", f"could not count out the store keys of a dropped message: {error}")

    def warn(self, text):
        self.host.emit("warn", text)


class _TrackedIn:
    """`store_eviction` on: the keys a step takes are counted out of the store's in-flight counts at its end."""

    def __init__(self, link, host):
        self._link = link
        self._host = host

    def __getattr__(self, name):
        return getattr(self._link, name)

    def _taken(self, message):
        self._host.taken.extend(keys_in(message, self._host.store))
        return message

    def get(self, *args, **kwargs):
        return self._taken(self._link.get(*args, **kwargs))

    def get_nowait(self):
        return self._taken(self._link.get_nowait())


class _StoreOut:
    """The host minds the store before a message leaves (`ActorHost.before_send`)."""

    def __init__(self, link, host):
        self._link = link
        self._host = host

    def __getattr__(self, name):
        return getattr(self._link, name)

    def put(self, message):
        self._host.before_send(message, self._link)
        return self._link.put(message)

    def put_nowait(self, message):
        self._host.before_send(message, self._link)
        return self._link.put_nowait(message)


def _store_side(link, host):
    """The link as the actor sees it: outputs mind the store where it batches deletes or `store_eviction` is on;
    inputs count keys out with `store_eviction`. Otherwise the link itself, with nothing on the hot path."""
    if not hasattr(link, "get"):
        return _StoreOut(link, host) if host.track or host.store.batches_deletes else link
    return _TrackedIn(link, host) if host.track else link


def module_path(module_url):
    """The file path of a `file://` module URL."""
    parsed = urlparse(module_url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(module_url)


def load_class(module_url, class_name, package=None):
    """Imports the actor's file and returns its class (as improv does: the config's folder is on the path)."""
    path = module_path(module_url)
    dotted = package is not None and not package.endswith(".py") and "/" not in package and "." in package
    if dotted:
        root = path.parent
        for _ in package.split(".")[1:]:
            root = root.parent
        module_name = package
    else:
        root = path.parent
        module_name = path.stem
    if str(root) not in sys.path:
        # After the standard library and the installed packages: an actor's folder with a file named like
        # one of them (random.py, queue.py) must not hide it from numpy, zmq or improv_ts.
        sys.path.append(str(root))
    if dotted:
        module = importlib.import_module(module_name)
    else:
        if module_name in sys.modules or module_name in getattr(sys, "stdlib_module_names", ()):
            # actors/random.py: loaded from its file under a name of its own, not in place of Python's random.
            module_name = f"_improv_actor_{module_name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [name for name, value in vars(module).items() if isinstance(value, type) and value.__module__ == module.__name__]
        raise NoSuchClass(
            f"{path} has no class {class_name!r}" + (f" (its classes: {', '.join(classes)})" if classes else ""), classes
        )
    if not (isinstance(cls, type) and issubclass(cls, Actor)):
        raise NotAnActor(
            f"{class_name} of {path} is not an actor class: subclass improv_ts.Actor "
            "(or improv's improv.actor.Actor)"
        )
    return cls


def step_method(actor, class_name):
    """`run_step`, or improv's older `runStep`."""
    for name in ("run_step", "runStep"):
        method = getattr(type(actor), name, None)
        if callable(method):
            return getattr(actor, name)
    raise TypeError(f"actor class {class_name!r} has no run_step() method (runStep is accepted too); add one")
