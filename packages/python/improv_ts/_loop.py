"""How code that waits (a link's get or put) lets the actor process go on serving its control channel.

An actor process runs one thread: the actor's steps, its link calls and the control channel from
Nexus (signals, and the mirrored shared memory of `@improv/core`'s ProcessChannel) all run on it, as
a TypeScript actor's event loop does. A link that has to wait therefore never blocks on its sockets
alone: it calls `loop.wait(sockets, timeout)`, which also reads the control channel and acts on what
came (a signal may hold or close the very link that waits), then returns. A return says only that
something may have changed: the caller looks at its sockets and its own state again.
"""

import time

import zmq


class Loop:
    """The waiting of a process with no control channel (a test, a script): only the sockets."""

    def wait(self, sockets, timeout):
        """Waits until one of `sockets` is readable, `timeout` seconds passed (None: no limit), or something else happened."""
        if not sockets:
            time.sleep(0.01 if timeout is None else min(timeout, 0.01))
            return
        poller = zmq.Poller()
        for socket in sockets:
            poller.register(socket, zmq.POLLIN)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000)))

    def flush(self):
        """Sends the changes made to mirrored shared memory now (a control channel does; here there is none)."""


_context = None


def context():
    """The process's one ZeroMQ context."""
    global _context
    if _context is None:
        _context = zmq.Context()
    return _context
