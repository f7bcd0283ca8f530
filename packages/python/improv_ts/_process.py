"""The entry of a Python actor process (`python -m improv_ts._process`), started by Nexus.

It connects to the Unix socket Nexus made for this process alone, proves itself with the one-time
token, says hello once this package is loaded, and hands the channel to the actor host. When the
channel is lost (Nexus died or closed it) the process ends: no actor outlives its Nexus. An error
of the host itself is reported on the channel before the process ends with code 1.
"""

import logging
import os
import signal
import socket
import sys
import threading
import time


def _end_with_parent():
    """Ends this process when its parent, Nexus, is gone, even while the actor never yields.

    The process also ends when its control channel closes, but only the thread that serves the
    actor sees that, and an actor stuck in a loop never lets it. A thread of its own looks at the
    parent twice a second. (Not the kernel's PR_SET_PDEATHSIG: that fires when the thread that
    started this process ends, and a runtime may start it from a thread of a pool.)
    """
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="improv-parent-watch", daemon=True).start()


def _left_to_nexus(_number, _frame):
    """SIGINT, SIGTERM and SIGHUP: Nexus quits the actor (see main)."""


def main():
    path = os.environ.pop("IMPROV_PROCESS_SOCKET", None)
    token = os.environ.pop("IMPROV_PROCESS_TOKEN", None)
    for name in ("IMPROV_PROCESS_ENTRY", "IMPROV_PROCESS_CHANNEL"):
        os.environ.pop(name, None)
    if not path or not token:
        sys.exit("improv_ts._process is the entry of an improv actor process; Nexus starts it, not you")
    # A Ctrl-C in the terminal, the SIGTERM of `timeout`, systemd or `docker stop`, and the SIGHUP of
    # a closed terminal reach the whole process group: Nexus takes them and quits every actor in order
    # (each stop() runs), so the actor process must not end on them by itself. Nexus ends it with
    # SIGKILL if it must. A handler that does nothing, not SIG_IGN: a program the actor starts gets
    # the default back at exec. (Windows has no SIGHUP.)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        signal.signal(number, _left_to_nexus)
    _end_with_parent()

    # `python -m` put the working directory first on the path: an actor imports from its own folder
    # (as improv's actors do from their config's), not from wherever Nexus was started.
    cwd = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", cwd)]

    from ._channel import Channel
    from ._host import ActorHost, _Forward, serialize_error

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    channel = Channel(sock)
    channel.send({"token": token})
    host = ActorHost(channel)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(host)]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    channel.send({"type": "__improv_hello"})
    try:
        host.serve()
    except BaseException as error:  # noqa: BLE001 - reported, then the process ends
        channel.send({"type": "__improv_error", "error": serialize_error(error)})
        channel.close()
        os._exit(1)
    channel.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
