"""improv's actor API on improv for TypeScript: improv's own actor files run unchanged.

This package stands in for project-improv/improv inside a Python actor process started by improv-ts.
It is loaded only by actor files that import it (`from improv.actor import Actor`), and maps what
improv's actors use onto `improv_ts`:

- `improv.actor`: `AbstractActor`, `ManagedActor` (= `Actor`), `AsyncActor`, `ZmqActor`, and
  `RunManager`/`AsyncRunManager` (accepted; improv-ts's actor host drives the signals itself);
- `self.client` (`improv.store.StoreInterface`): `put(obj, name=None)`, `get(key_or_name)`,
  `getID(key)`, `get_list`/`getList`, `delete`, `reset`, `release`, on the pipeline's store;
- `self.q_in` / `self.q_out` / `self.links[...]`: the pipeline's links, whose `get(timeout=...)`
  raises `queue.Empty` and `put(...)` waits for room, as improv's do;
- `runStep` or `run_step`; `logging` reaches the pipeline's log;
- `self.publish(name, value)` and `self.publishing` (not improv's: improv_ts's, for the dashboard).
"""

__version__ = "0.3.0+improv-ts"
