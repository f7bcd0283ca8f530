"""improv's `improv.store`: `StoreInterface` over the pipeline's store (lmdb or redis)."""

import logging

from improv_ts.errors import ObjectNotFoundError

logger = logging.getLogger(__name__)


class CannotGetObjectError(Exception):
    def __init__(self, query):
        super().__init__(f"Cannot get object {query}")


class CannotConnectToStoreInterfaceError(Exception):
    def __init__(self, store_port):
        super().__init__(f"Cannot connect to store at {store_port}")


class StoreInterface:
    """improv's store client: keys are the store's own; a name given to `put` also finds the value."""

    def __init__(self, store=None, *args, **kwargs):
        self.store = store
        self.names = {}

    def put(self, obj, object_name=None, *args, **kwargs):
        """Stores `obj` (numpy arrays keep dtype and shape) and returns its key."""
        ttl = kwargs.get("ex")
        key = self.store.put(obj, ttl_ms=int(ttl * 1000)) if ttl else self.store.put(obj)
        if object_name is not None:
            self.names[object_name] = key
        return key

    def get(self, key):
        """The value of a key (or of a name given to `put`)."""
        return self.getID(self.names.get(key, key) if isinstance(key, str) else key)

    def getID(self, obj_id, hdd_only=False):
        try:
            return self.store.get(obj_id)
        except ObjectNotFoundError:
            logger.warning("Object %s cannot be found.", obj_id)
            raise

    def get_list(self, ids):
        return [self.get(key) for key in ids]

    getList = get_list

    def get_all(self):
        raise NotImplementedError("listing every value of a shared store is not offered; keep the keys you need")

    def delete(self, key):
        return self.store.delete(self.names.pop(key, key) if isinstance(key, str) else key)

    def reset(self):
        pass

    def release(self):
        self.store.release()


RedisStoreInterface = StoreInterface
PlasmaStoreInterface = StoreInterface
LMDBStoreInterface = StoreInterface
