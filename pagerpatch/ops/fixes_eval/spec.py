"""Reading the `eval fixes` scenarios from their files: each is data (scenarios/*.toml, package data, or the
`*.toml` files of a `--dataset` folder), history.build is the one builder for all of them.

A file holds the Scenario's fields (name, title, expected, trigger, oracle, and any of letter, language, bug,
cosmetic, mentions, code_root, generated, setup_command, test_command, frame_vars, installed_copy) and its commits as
`[[steps]]`: key, message, author (alice, bob, carol or dan), date, then `files` (whole files), `delete` (paths) and
`[[steps.edits]]` (file, old, new). `package = "name"` on a step adds what a flat Python package's first commit
always has: .gitignore, pyproject.toml and `name/__init__.py`. An unknown key, a missing one, a value of the wrong
type or a step key that names no step fails the load with `file: field: message` (ScenarioFileError), so a typo
never quietly builds another history. docs/eval-fixes.md describes the format for people.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

from pagerpatch.ops.demo_repo import ALICE, BOB, CAROL, Edit, Person
from pagerpatch.ops.fixes_eval.history import BuildError, Expected, Language, Scenario, Step
from pagerpatch.ops.fixes_eval.node import NODE_TEST_COMMAND

__all__ = [
    "AUTHORS", "DAN", "GITIGNORE", "SCENARIO_FOLDER", "ScenarioFileError", "load_dataset", "load_scenarios",
    "parse_scenario", "pyproject",
]  # fmt: skip

SCENARIO_FOLDER = "scenarios"  # package data next to this module: one file a scenario
DAN = Person("Dan Okafor", "dan.okafor@shopcart.example")
AUTHORS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dan": DAN}
GITIGNORE = "__pycache__/\n.pytest_cache/\n"

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")  # it names a repository and a service: eval-fixes-<name>
_LETTER = re.compile(r"^[a-z0-9]{1,3}$")

T = TypeVar("T")
_Convert = Callable[[Any], Any]


class ScenarioFileError(BuildError):
    """A scenario file that is not a scenario: `file: field: message` (the command exits 2 on it)."""


def pyproject(name: str) -> str:
    """A scenario's pyproject.toml: the package's name and pytest's test folder (no build step)."""
    return (
        f'[project]\nname = "{name}"\nversion = "1.0.0"\nrequires-python = ">=3.10"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )


def load_scenarios(folder: Traversable | None = None, *, named: Callable[[str], str] = str) -> tuple[Scenario, ...]:
    """Every scenario file in `folder` (the shipped ones by default): lettered ones first, by letter, then by name.

    `named` turns a file's name into how errors name it (a dataset's errors give the path).
    """
    folder = folder or resources.files(__package__) / SCENARIO_FOLDER
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    scenarios = [parse_scenario(f.read_text(encoding="utf-8"), named(f.name)) for f in files]
    return tuple(sorted(scenarios, key=lambda s: (not s.letter, s.letter, s.name)))


def load_dataset(folder: Path) -> tuple[Scenario, ...]:
    """The scenarios of a `--dataset` folder (its `*.toml` files); ScenarioFileError when there are none."""
    if not folder.is_dir():
        raise ScenarioFileError(f"{folder}: dataset: not a folder")
    if not any(p.suffix == ".toml" for p in folder.iterdir()):
        raise ScenarioFileError(f"{folder}: dataset: no scenario files (*.toml) in it")
    return load_scenarios(folder, named=lambda name: str(folder / name))


def parse_scenario(source: str, origin: str = "<scenario>") -> Scenario:
    """The scenario a TOML text describes (`origin` names it in errors: `origin: field: message`)."""
    try:
        table = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioFileError(f"{origin}: toml: {exc}") from exc
    try:
        return _checked(_read(Scenario, _SCENARIO_FIELDS, table))
    except TypeError as exc:
        raise ScenarioFileError(f"{origin}: {exc}") from exc


def _checked(s: Scenario) -> Scenario:
    """The rules a scenario obeys beyond its fields' types; a JavaScript one gets node's test command by default."""
    keys = [step.key for step in s.steps]
    problems = {
        "name": "lowercase letters, digits and dashes (it names a repository)" if not _NAME.match(s.name) else "",
        "letter": "one to three lowercase letters or digits" if s.letter and not _LETTER.match(s.letter) else "",
        "steps": f"step keys must differ: {', '.join(keys)}" if len(set(keys)) != len(keys) else "",
        "bug": f"names no step (keys: {', '.join(keys)})" if s.bug not in keys else "",
        "cosmetic": f"names no step: {', '.join(k for k in s.cosmetic if k not in keys)}"
        if not set(s.cosmetic) <= set(keys) else "",
        "frame_vars": "Python scenarios only" if s.frame_vars and s.language != "python" else "",
        "installed_copy": "Python scenarios only" if s.installed_copy and s.language != "python" else "",
    }  # fmt: skip
    for field_name, problem in problems.items():
        if problem:
            raise TypeError(f"{field_name}: {problem}")
    if s.language == "javascript" and s.test_command == _DEFAULT_TEST_COMMAND:
        return dataclasses.replace(s, test_command=NODE_TEST_COMMAND)
    return s


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


_DEFAULT_TEST_COMMAND = next(f.default for f in dataclasses.fields(Scenario) if f.name == "test_command")


def _step(table: dict[str, Any]) -> Step:
    """A step; `package` and `delete` are ways of writing its files."""
    files: dict[str, str | None] = dict(_field("files", _text_table, table.pop("files", {})))
    if "package" in table:
        name = _field("package", _text, table.pop("package"))
        files |= {".gitignore": GITIGNORE, "pyproject.toml": pyproject(name), f"{name}/__init__.py": ""}
    files |= dict.fromkeys(_field("delete", _texts, table.pop("delete", [])))
    return _read(Step, _STEP_FIELDS, {**table, "files": files})


def _field(key: str, convert: _Convert, value: Any) -> Any:
    """`value` converted for field `key`; a failure names the field."""
    try:
        return convert(value)
    except TypeError as exc:
        raise TypeError(f"{key}: {exc}") from exc


def _read(cls: type[T], known: Mapping[str, _Convert], value: Any) -> T:
    """`cls` made from a TOML table, each value converted for its field; an unknown or missing key fails."""
    table = _table(value)
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise TypeError(f"{unknown[0]}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    required = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # fmt: skip
    missing = [name for name in required if name not in table]
    if missing:
        raise TypeError(f"{missing[0]}: missing (required: {', '.join(required)})")
    return cls(**{key: _field(key, known[key], v) for key, v in table.items()})


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


def _language(value: Any) -> Language:
    if value in get_args(Language):
        return cast(Language, value)
    raise TypeError(f"expected one of {', '.join(get_args(Language))}, not {value!r}")


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
    "language": _language,
}  # fmt: skip
_STEP_FIELDS: dict[str, _Convert] = {
    "key": _text, "message": _message, "author": _author, "date": _text, "files": dict, "edits": _edits,
}  # fmt: skip
_EDIT_FIELDS: dict[str, _Convert] = {"file": _text, "old": _text, "new": _text}
