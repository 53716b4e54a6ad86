"""The one registry helper every extension point uses."""

import pytest

from hwmodels.errors import InputError
from hwmodels.registry import Registry


def test_register_decorator_and_lookup():
    reg = Registry("scheduler")

    @reg.register("fcfs")
    class FCFS:
        """First come, first served."""

    reg.register("lifo", object(), help="last in, first out")
    assert reg.get("fcfs") is FCFS
    assert reg.names() == ["fcfs", "lifo"]
    assert reg.help("fcfs") == "First come, first served."
    assert reg.help("lifo") == "last in, first out"
    assert "fcfs" in reg and len(reg) == 2 and list(reg) == ["fcfs", "lifo"]
    assert reg.describe().splitlines() == ["fcfs  First come, first served.", "lifo  last in, first out"]


def test_unknown_name_lists_choices_and_suggests():
    reg = Registry("scheduler")
    reg.register("fcfs", 1)
    reg.register("sarathi", 2)
    with pytest.raises(InputError) as err:
        reg.get("sarathy", path="scheduler")
    text = str(err.value)
    assert "unknown scheduler 'sarathy'" in text
    assert "fcfs, sarathi" in text
    assert "did you mean 'sarathi'" in text
    assert err.value.problems[0].path == "scheduler"


def test_reregistering_replaces_and_notifies():
    reg = Registry("cost")
    calls = []
    reg.on_change(lambda: calls.append(1))
    reg.register("x", 1)
    reg.register("x", 2)
    assert reg["x"] == 2 and reg.names() == ["x"] and len(calls) == 2


def test_empty_name_is_a_programming_error():
    with pytest.raises(ValueError):
        Registry("thing").register("", 1)


def test_get_with_a_default_and_unregister_notify():
    reg = Registry("cost")
    calls = []
    reg.on_change(lambda: calls.append(1))
    reg.register("x", 1)
    assert reg.get("y", 0) == 0 and reg.get("x", 0) == 1      # dict.get's default
    reg.unregister("x")
    reg.unregister("never")                                    # absent: nothing to notify
    assert "x" not in reg and len(calls) == 2
    with pytest.raises(InputError):
        reg.get("x")


def test_help_is_the_first_sentence_of_the_docstring():
    reg = Registry("kind")

    @reg.register("a")
    class A:
        """One sentence over
        two lines, e.g. this. A second sentence.

        Another paragraph."""

    assert reg.help("a") == "One sentence over two lines, e.g. this."


def test_a_name_that_is_not_a_string_is_not_registered():
    # a YAML file can hand a list or a mapping where a name belongs (`job: []`)
    reg = Registry("job")
    reg.register("analyze", object())
    assert [] not in reg and {"a": 1} not in reg and 3 not in reg
    with pytest.raises(InputError, match="unknown job '\\[\\]'"):
        reg.get([], path="base.job")
