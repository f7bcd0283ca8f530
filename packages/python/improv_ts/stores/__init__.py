"""The pipeline's store, from its descriptor: the same data, layout and lifetimes as the TypeScript drivers."""


def connect_store(descriptor, *, batch_deletes=False):
    """A client of the store `descriptor` describes (`driver`: lmdb or redis). `batch_deletes`: an lmdb
    client commits deletes together (see `lmdb.py`); a redis client deletes at once either way."""
    driver = descriptor.get("driver")
    if driver == "lmdb":
        from . import lmdb

        return lmdb.connect(descriptor, batch_deletes=batch_deletes)
    if driver == "redis":
        from . import redis

        return redis.connect(descriptor)
    raise ValueError(
        f"a Python actor cannot reach a store of driver {driver!r}: it lives in one process's memory; "
        "set  store: lmdb  (this machine) or  store: redis  (several machines) under settings"
    )


def keys_in(message, store):
    """Every key of `store` found in `message` (strings at any depth), once each, in order."""
    found = []
    seen = set()

    def visit(value):
        if isinstance(value, str):
            if value not in seen and store.is_key(value):
                seen.add(value)
                found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(key)
                visit(item)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                visit(item)

    visit(message)
    return found
