"""Where a repeating error comes from (`improv_ts._host.place_of`): the actor's own line, as the
TypeScript host's summaries say it (`packages/core/src/worker/_error-log.ts`)."""

import json
import os
import sys
import textwrap

from improv_ts import _host


def test_place_is_the_actors_line_not_a_librarys_or_improvs(tmp_path):
    actor = tmp_path / "my_actor.py"
    actor.write_text(
        textwrap.dedent(
            """\
            import json

            def run_step(text):
                return json.loads(text)
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import my_actor
    finally:
        sys.path.remove(str(tmp_path))
    try:
        my_actor.run_step("{")
    except ValueError as error:
        # json's decoder raised it; the actor's line 4 called it.
        assert _host.place_of(error) == f"JSONDecodeError at {actor}:4"
    else:
        raise AssertionError("json.loads('{') raised nothing")


def test_place_falls_back_to_the_innermost_frame_when_none_is_the_users():
    try:
        json.loads("{")
    except ValueError as error:
        error.__traceback__ = error.__traceback__.tb_next  # only the standard library's frames left
        place = _host.place_of(error)
    assert place.startswith("JSONDecodeError at ")
    assert os.sep + "json" + os.sep in place, place  # json's own decoder: no frame of the user's is left
