"""``fovea export`` argument handling, with a recorded fake recipe instead of a real export."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from export import cli


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    recipe = types.ModuleType("fake_recipe")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--epochs", type=int, default=3)

    def build(model_store: Path, cache: Path, **options: Any) -> Path:
        calls.append({"model_store": model_store, "cache": cache, **options})
        return model_store / "fake"

    recipe.add_arguments, recipe.build = add_arguments, build  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_recipe", recipe)
    monkeypatch.setitem(cli.RECIPES, "fake", ("fake_recipe", "a recorded recipe"))
    return calls


def test_common_options_before_or_after_the_recipe(recorded: list[dict[str, Any]]) -> None:
    assert cli.main(["--model-store", "a", "fake", "--cache", "c"]) == 0
    assert cli.main(["fake", "--model-store", "b", "--epochs", "7"]) == 0
    first, second = recorded
    assert first == {"model_store": Path("a"), "cache": Path("c"), "epochs": 3}
    assert second["model_store"] == Path("b") and second["epochs"] == 7
    assert second["cache"] == cli.default_cache()


def test_help_lists_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    assert "mobilenet_v2" in capsys.readouterr().out


def test_recipe_help_shows_its_options(
    recorded: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fake", "--help"])
    assert exit_.value.code == 0
    assert "--epochs" in capsys.readouterr().out and recorded == []


@pytest.mark.parametrize("argv", [[], ["no_such_recipe"], ["fake", "--bogus"]])
def test_bad_arguments_exit_2(recorded: list[dict[str, Any]], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and recorded == []
