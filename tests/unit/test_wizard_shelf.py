"""The wizard's shelf of kept steps: what it gives back, to whom, and what it forgets."""

from __future__ import annotations

from usersync.web.pages.draft import Draft
from usersync.web.pages.wizard_shelf import WizardShelf

HERE = (1, 10)


def test_a_kept_step_comes_back_as_it_was_kept_as_often_as_asked() -> None:
    shelf = WizardShelf()
    draft = Draft(folder="/in", file="userdata_a.csv", user_id="id")
    token = shelf.keep(HERE, "map", draft, {"columns": "Map at least one column."})
    draft.user_id = "changed afterwards"  # the kept step is a copy

    for _ in range(2):  # Back, then Forward, come to it again
        kept = shelf.take(token, HERE)
        assert kept is not None
        assert (kept.step, kept.errors) == ("map", {"columns": "Map at least one column."})
        assert kept.draft == Draft(folder="/in", file="userdata_a.csv", user_id="id")


def test_a_step_is_given_only_to_its_workspace_and_connection() -> None:
    shelf = WizardShelf()
    token = shelf.keep(HERE, "review", Draft(), {})
    assert shelf.take(token, (2, 10)) is None
    assert shelf.take(token, (1, 11)) is None
    assert shelf.take("not-a-token", HERE) is None
    assert shelf.take(token, HERE) is not None


def test_the_steps_are_unguessable_and_each_keep_makes_a_new_one() -> None:
    shelf = WizardShelf()
    tokens = {shelf.keep(HERE, "map", Draft(), {}) for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 22 for token in tokens)


def test_beyond_its_number_of_steps_the_least_recently_used_is_forgotten() -> None:
    shelf = WizardShelf(most_steps=3)
    first, second, third = (shelf.keep(HERE, "map", Draft(), {}) for _ in range(3))
    assert shelf.take(first, HERE) is not None  # used: now the most recent
    fourth = shelf.keep(HERE, "map", Draft(), {})
    assert shelf.take(second, HERE) is None
    assert all(shelf.take(token, HERE) is not None for token in (first, third, fourth))


def test_beyond_its_characters_the_oldest_are_forgotten_until_it_fits() -> None:
    size = len(Draft(name="x" * 1000).dumps())
    shelf = WizardShelf(most_characters=3 * size)
    tokens = [shelf.keep(HERE, "review", Draft(name="x" * 1000), {}) for _ in range(3)]
    assert all(shelf.take(token, HERE) is not None for token in tokens)
    big = shelf.keep(HERE, "review", Draft(name="x" * 2000), {})
    assert [shelf.take(token, HERE) is not None for token in tokens] == [False, False, True]
    assert shelf.take(big, HERE) is not None
