"""Loading an actor's file (`load_class`), as the actor process and `improv validate` do."""

import importlib

from improv_ts._host import load_class

ACTOR = """from improv_ts import Actor


class Shadow(Actor):
    def run_step(self):
        pass
"""


def test_an_actor_file_named_like_a_standard_module_hides_nothing(tmp_path):
    for name in ("random", "queue"):
        (tmp_path / f"{name}.py").write_text(ACTOR)
    cls = load_class((tmp_path / "random.py").as_uri(), "Shadow")
    assert cls.__name__ == "Shadow"
    # Python's own modules are still Python's own, here and for whatever imports them later.
    assert hasattr(importlib.import_module("random"), "random")
    assert hasattr(importlib.import_module("queue"), "Empty")



def test_links_are_attributes_of_the_actor_unless_its_class_has_the_name():
    from improv_ts import Actor

    class Mine(Actor):
        def q_out(self):
            return "a method of the class"

        def run_step(self):
            pass

    q_in, q_out, extra = object(), object(), object()
    actor = Mine._improv_create({"name": "a", "options": {}, "links": {"q_in": q_in, "q_out": q_out, "store": extra}, "store": None})
    assert actor.q_in is q_in and "q_in" in actor.__dict__
    assert actor.q_out() == "a method of the class"  # the class's name wins, as before
    assert actor.store is None  # so does an attribute of the actor's own
    assert actor.links["store"] is extra
    actor.links["late"] = extra  # a link added later is found as before (__getattr__)
    assert actor.late is extra
