"""Registry: names to factories, with third-party entries read lazily from entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from fulmen_core import Registry

GROUP = "fulmen.test_widgets"
PLUGIN = "fulmen_core_test_plugin"


class Widget:
    def __init__(self, label: str = "widget") -> None:
        self.label = label


def test_register_and_create() -> None:
    """create() calls the registered factory and returns a new instance each time."""
    registry: Registry[Widget] = Registry("widget")
    registry.register("plain", Widget)
    first = registry.create("plain")
    second = registry.create("plain")
    assert isinstance(first, Widget) and first.label == "widget"
    assert first is not second


def test_duplicate_name_raises_unless_override() -> None:
    """Registering a name twice raises ValueError naming it; override=True replaces the factory."""
    registry: Registry[Widget] = Registry("widget")
    registry.register("w", Widget)
    with pytest.raises(ValueError, match=r"widget 'w' is already registered.*override=True"):
        registry.register("w", lambda: Widget("other"))
    assert registry.create("w").label == "widget"
    registry.register("w", lambda: Widget("other"), override=True)
    assert registry.create("w").label == "other"


def test_unknown_name_lists_known_names() -> None:
    """create() with an unknown name raises ValueError that lists every known name."""
    registry: Registry[Widget] = Registry("widget")
    registry.register("beta", Widget)
    registry.register("alpha", Widget)
    with pytest.raises(ValueError, match=r"unknown widget 'gamma'; known widgets: 'alpha', 'beta'"):
        registry.create("gamma")


def test_unknown_name_in_empty_registry_says_none() -> None:
    """An empty registry's error says no names are known."""
    with pytest.raises(ValueError, match="known widgets: none"):
        Registry[Widget]("widget").create("x")


def test_names_contains_and_iteration() -> None:
    """names() is sorted; ``in`` and iteration see the same names."""
    registry: Registry[Widget] = Registry("widget")
    for name in ("b", "c", "a"):
        registry.register(name, Widget)
    assert registry.names() == ["a", "b", "c"]
    assert list(registry) == ["a", "b", "c"]
    assert "b" in registry and "z" not in registry


# ---------------------------------------------------------------------- entry points


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A plugin module on sys.path (not imported) and a fake ``entry_points`` that offers its factory."""
    (tmp_path / f"{PLUGIN}.py").write_text(
        textwrap.dedent(
            """
            CALLS = []

            def factory():
                CALLS.append("called")
                return "made by plugin"

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, PLUGIN, raising=False)
    state: dict[str, Any] = {"queries": [], "points": [metadata.EntryPoint("fake", f"{PLUGIN}:factory", GROUP)]}

    def fake_entry_points(**params: Any) -> list[metadata.EntryPoint]:
        state["queries"].append(params)
        return [point for point in state["points"] if point.group == params.get("group")]

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    yield state
    sys.modules.pop(PLUGIN, None)


def test_entry_points_are_loaded_lazily(plugin: dict[str, Any]) -> None:
    """Entry points are not read at construction or registration, nor imported until their name is created."""
    registry: Registry[Any] = Registry("widget", group=GROUP)
    registry.register("builtin", Widget)
    assert isinstance(registry.create("builtin"), Widget)
    assert "builtin" in registry
    assert plugin["queries"] == []  # names registered in code never scan entry points

    assert registry.names() == ["builtin", "fake"]
    assert plugin["queries"] == [{"group": GROUP}]
    assert PLUGIN not in sys.modules  # listed, but its module is not imported yet

    assert registry.create("fake") == "made by plugin"
    assert sys.modules[PLUGIN].CALLS == ["called"]
    assert registry.create("fake") == "made by plugin"
    assert sys.modules[PLUGIN].CALLS == ["called", "called"]
    assert plugin["queries"] == [{"group": GROUP}]  # the group is read once


def test_entry_point_found_on_first_lookup(plugin: dict[str, Any]) -> None:
    """Looking up an entry-point name first (without names()) finds and builds it."""
    registry: Registry[Any] = Registry("widget", group=GROUP)
    assert "fake" in registry
    assert PLUGIN not in sys.modules
    assert registry.create("fake") == "made by plugin"


def test_unknown_name_lists_entry_point_names(plugin: dict[str, Any]) -> None:
    """An unknown name's error lists names from entry points too, without importing them."""
    registry: Registry[Any] = Registry("widget", group=GROUP)
    registry.register("builtin", Widget)
    with pytest.raises(ValueError, match="known widgets: 'builtin', 'fake'"):
        registry.create("missing")
    assert PLUGIN not in sys.modules


def test_code_registration_wins_over_entry_point(plugin: dict[str, Any]) -> None:
    """A name registered in code is not replaced by an entry point of the same name."""
    registry: Registry[Any] = Registry("widget", group=GROUP)
    registry.register("fake", Widget)
    assert registry.names() == ["fake"]
    assert isinstance(registry.create("fake"), Widget)
    assert PLUGIN not in sys.modules


def test_entry_point_to_non_callable_raises(plugin: dict[str, Any]) -> None:
    """An entry point that loads to something not callable raises TypeError naming it."""
    plugin["points"].append(metadata.EntryPoint("number", f"{PLUGIN}:NOT_CALLABLE", GROUP))
    registry: Registry[Any] = Registry("widget", group=GROUP)
    with pytest.raises(TypeError, match="entry point 'number'"):
        registry.create("number")


def test_registry_without_group_never_reads_entry_points(plugin: dict[str, Any]) -> None:
    """A registry with no entry-point group never queries installed distributions."""
    registry: Registry[Widget] = Registry("widget")
    assert registry.names() == []
    assert "fake" not in registry
    assert plugin["queries"] == []
