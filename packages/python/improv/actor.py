"""improv's `improv.actor`, mapped onto `improv_ts.Actor` (see the package docstring)."""

import logging

from improv_ts.actor import Actor as _Actor

from .store import StoreInterface

logger = logging.getLogger(__name__)


class Signal:
    """improv's signal names."""

    @staticmethod
    def run():
        return "run"

    @staticmethod
    def setup():
        return "setup"

    @staticmethod
    def stop():
        return "stop"

    @staticmethod
    def quit():
        return "quit"

    @staticmethod
    def pause():
        return "pause"

    @staticmethod
    def resume():
        return "resume"

    @staticmethod
    def ready():
        return "ready"


class AbstractActor(_Actor):
    """improv's base actor: `name`, `links`, `client`, `q_in`, `q_out`, `q_watchout`."""

    def __init__(self, name=None, store_loc=None, method="fork", *args, **kwargs):
        self.q_watchout = None
        self.name = name
        self.links = {}
        self.method = method
        self.client = None
        self.store_loc = store_loc
        self.lower_priority = False
        self.q_in = None
        self.q_out = None

    @classmethod
    def _improv_create(cls, context):
        # As improv's Nexus does: the class is called with the name and the actor's options as
        # keywords; the store and the links are set afterwards.
        actor = cls(context["name"], **context["options"])
        actor._improv_attach(context)
        return actor

    def _improv_attach(self, context):
        super()._improv_attach(context)
        if getattr(self, "name", None) is None:
            self.name = context["name"]
        self.client = StoreInterface(context["store"])
        self.improv_logger = logging.getLogger(f"improv.actor.{context['name']}")
        self.links = dict(context["links"])
        self.q_in = self.links.get("q_in")
        self.q_out = self.links.get("q_out")
        self.q_watchout = self.links.get("q_watchout")

    def __repr__(self):
        return f"{self.name}: {self.links.keys()}"

    # improv's setters, snake_case (≥ 0.3) and camelCase (older)
    def set_store_interface(self, client):
        self.client = client

    setStoreInterface = set_store_interface

    def _get_store_interface(self):
        return self.client

    _getStoreInterface = _get_store_interface

    def set_links(self, links):
        self.links = links

    setLinks = set_links

    def set_link_in(self, q_in):
        self.q_in = q_in
        self.links["q_in"] = q_in

    setLinkIn = set_link_in

    def set_link_out(self, q_out):
        self.q_out = q_out
        self.links["q_out"] = q_out

    setLinkOut = set_link_out

    def set_link_watch(self, q_watch):
        self.q_watchout = q_watch
        self.links["q_watchout"] = q_watch

    setLinkWatch = set_link_watch

    def add_link(self, name, link):
        self.links[name] = link

    addLink = add_link

    def get_links(self):
        return self.links

    getLinks = get_links

    def put(self, idnames, q_out=None, save=None):
        """improv's old helper: puts `idnames` on `q_out` and the saved ones on `q_watchout`."""
        save = list(save or [])
        save += [False] * (len(idnames) - len(save))
        (q_out or self.q_out).put(idnames)
        for index, name in enumerate(idnames):
            if save[index] and self.q_watchout:
                self.q_watchout.put(name)

    def change_priority(self):
        if self.lower_priority:
            import os

            os.nice(19)

    changePriority = change_priority

    def setup(self):
        pass

    def stop(self):
        pass

    def run(self):
        raise NotImplementedError("improv-ts's actor host runs the actor; run() is not called")

    # improv ≥ 0.3 (G3) hooks, kept so subclasses that call them work.
    def register_with_nexus(self):
        pass

    def register_with_broker(self):
        pass

    def setup_links(self):
        pass

    def setup_logging(self):
        pass


class ManagedActor(AbstractActor):
    """improv's `ManagedActor` (= `Actor`): users define `setup`, `run_step` (or `runStep`) and `stop`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args)
        self.actions = {"setup": self.setup, "run": self._step, "stop": self.stop}

    def _step(self):
        for name in ("run_step", "runStep"):
            method = getattr(self, name, None)
            if callable(method):
                return method()
        raise NotImplementedError("define run_step()")


class AsyncActor(ManagedActor):
    """improv's `AsyncActor`: `async def setup/run_step/stop` are awaited by the actor host."""


#: improv ≥ 0.3's actor over ZeroMQ: the same here (links are always improv-ts's).
ZmqActor = ManagedActor
Actor = ManagedActor


class RunManager:
    """improv's signal loop. The actor host drives the signals, so entering it does nothing."""

    def __init__(self, name=None, actions=None, links=None, *args, **kwargs):
        self.actorName = name
        self.actions = actions
        self.links = links

    def __enter__(self):
        return None

    def __exit__(self, kind, value, trace):
        return None


class AsyncRunManager(RunManager):
    """improv's async signal loop (see `RunManager`)."""

    async def run_actor(self):
        return None

    async def __aenter__(self):
        return None

    async def __aexit__(self, kind, value, trace):
        return None
