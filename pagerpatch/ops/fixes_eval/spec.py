"""Reading the `eval fixes` scenarios from their files: each is data (scenarios/*.toml, package data), history.build
is the one builder for all of them.

A file holds the Scenario's fields (name, letter, title, expected, trigger, oracle, and any of bug, cosmetic,
mentions, code_root, generated, setup_command, test_command, frame_vars, installed_copy) and its commits as
`[[steps]]`: key, message, author (alice, bob, carol or dan), date, then `files` (whole files), `delete` (paths) and
`[[steps.edits]]` (file, old, new). `package = "name"` on a step adds what a flat package's first commit always has:
.gitignore, pyproject.toml and `name/__init__.py`. An unknown key or a value of the wrong type fails the load, so a
typo never quietly builds another history.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, TypeVar, cast, get_args

from pagerpatch.ops.demo_repo import ALICE, BOB, CAROL, Edit, Person
from pagerpatch.ops.fixes_eval.history import BuildError, Expected, Scenario, Step

__all__ = ["AUTHORS", "DAN", "GITIGNORE", "SCENARIO_FOLDER", "load_scenarios", "parse_scenario", "pyproject"]

SCENARIO_FOLDER = "scenarios"  # package data next to this module: one file a scenario
DAN = Person("Dan Okafor", "dan.okafor@shopcart.example")
AUTHORS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dan": DAN}
GITIGNORE = "__pycache__/\n.pytest_cache/\n"

T = TypeVar("T")
_Convert = Callable[[Any], Any]


def pyproject(name: str) -> str:
    """A scenario's pyproject.toml: the package's name and pytest's test folder (no build step)."""
    return (
        f'[project]\nname = "{name}"\nversion = "1.0.0"\nrequires-python = ">=3.10"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )


def load_scenarios(folder: Traversable | None = None) -> tuple[Scenario, ...]:
    """Every scenario file in `folder` (the shipped ones by default), in the order of their letters."""
    folder = folder or resources.files(__package__) / SCENARIO_FOLDER
    scenarios = [parse_scenario(f.read_text(encoding="utf-8"), f.name) for f in folder.iterdir()
                 if f.name.endswith(".toml")]  # fmt: skip
    return tuple(sorted(scenarios, key=lambda s: s.letter))


def parse_scenario(source: str, origin: str = "<scenario>") -> Scenario:
    """The scenario a TOML text describes (`origin` names it in errors)."""
    try:
        return _read(Scenario, _SCENARIO_FIELDS, tomllib.loads(source))
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise BuildError(f"{origin}: {exc}") from exc


def _steps(value: Any) -> tuple[Step, ...]:
    steps = _array(value)
    if not steps:
        raise TypeError("a scenario needs at least one [[steps]]")
    out: list[Step] = []
    for n, step in enumerate(steps, 1):
        try:
            out.append(_step(_table(step)))
        except TypeError as exc:
            raise TypeError(f"step {n}: {exc}") from exc
    return tuple(out)


def _step(table: dict[str, Any]) -> Step:
    """A step; `package` and `delete` are ways of writing its files."""
    files: dict[str, str | None] = dict(_text_table(table.pop("files", {})))
    if "package" in table:
        name = _text(table.pop("package"))
        files |= {".gitignore": GITIGNORE, "pyproject.toml": pyproject(name), f"{name}/__init__.py": ""}
    files |= dict.fromkeys(_texts(table.pop("delete", [])))
    return _read(Step, _STEP_FIELDS, {**table, "files": files})


def _read(cls: type[T], known: Mapping[str, _Convert], value: Any) -> T:
    """`cls` made from a TOML table, each value converted for its field; an unknown or missing key fails."""
    table = _table(value)
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise TypeError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return cls(**{key: known[key](v) for key, v in table.items()})  # a missing field: TypeError


# ---------------------------------------------------------------- TOML values as the dataclasses' field types


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in _array(value))


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, not {value!r}")
    return value


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array, not {value!r}")
    return value


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a table, not {value!r}")
    return dict(value)


def _text_table(value: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in _table(value).items()}


def _expected(value: Any) -> Expected:
    if value in get_args(Expected):
        return cast(Expected, value)
    raise TypeError(f"expected one of {', '.join(get_args(Expected))}, not {value!r}")


def _message(value: Any) -> str:
    """A commit message ends with one newline, as the scenarios have always committed it; the file may leave it out."""
    message = _text(value)
    return message if message.endswith("\n") else message + "\n"


def _author(value: Any) -> Person:
    if value not in AUTHORS:
        raise TypeError(f"expected one of {', '.join(AUTHORS)}, not {value!r}")
    return AUTHORS[value]


def _edits(value: Any) -> tuple[Edit, ...]:
    return tuple(_read(Edit, _EDIT_FIELDS, e) for e in _array(value))


_SCENARIO_FIELDS: dict[str, _Convert] = {
    "name": _text, "letter": _text, "title": _text, "steps": _steps, "trigger": _text, "expected": _expected,
    "oracle": _text, "bug": _text, "cosmetic": _texts, "code_root": _text, "generated": _text_table,
    "setup_command": _text, "test_command": _text, "frame_vars": _flag, "mentions": _text, "installed_copy": _flag,
}  # fmt: skip
_STEP_FIELDS: dict[str, _Convert] = {
    "key": _text, "message": _message, "author": _author, "date": _text, "files": dict, "edits": _edits,
}  # fmt: skip
_EDIT_FIELDS: dict[str, _Convert] = {"file": _text, "old": _text, "new": _text}
