"""Review's rules about what a patch touches and adds (pure): workflow/CI and dependency files, new network or
subprocess calls on the added lines of the diff, and whether the failure was reproduced.

Each rule returns plain values; `domain.assess` turns them into levels and reasons.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

# Files that run code on CI or on people's machines, by path (glob over the whole path).
WORKFLOW_PATTERNS: tuple[str, ...] = (
    ".github/workflows/*",
    ".github/actions/*",
    ".gitlab-ci.yml",
    ".gitlab/ci/*",
    "Jenkinsfile",
    "*/Jenkinsfile",
    ".circleci/*",
    ".travis.yml",
    "azure-pipelines.yml",
    "bitbucket-pipelines.yml",
    ".buildkite/*",
    ".drone.yml",
    ".pre-commit-config.yaml",
)
# What a repository installs, by file name at any depth (monorepos have one per package).
DEPENDENCY_NAMES: tuple[str, ...] = (
    "requirements*.txt",
    "constraints*.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    ".npmrc",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "Cargo.toml",
    "Cargo.lock",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "gradle.lockfile",
    "composer.json",
    "composer.lock",
)


def is_workflow(path: str) -> bool:
    """A CI/workflow definition: `.github/workflows/**`, `.gitlab-ci.yml`, `Jenkinsfile`, ..."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in WORKFLOW_PATTERNS)


def is_dependency_file(path: str) -> bool:
    """A manifest or lockfile that decides what gets installed (`requirements*.txt`, `package.json`, ...)."""
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in DEPENDENCY_NAMES) or (
        PurePosixPath(path).parent.name == "requirements" and name.endswith(".txt")
    )


# ---------------------------------------------------------------- added lines


@dataclass(frozen=True)
class AddedLine:
    file: str
    line: int  # in the new file (0 when the diff could not be parsed and the number is unknown)
    text: str


def added_lines(patch: str) -> list[AddedLine]:
    """Every line the patch adds, with its file and line number in the new version (unidiff; a diff unidiff
    refuses is still scanned line by line, without numbers, so a malformed patch hides nothing)."""
    try:
        parsed = PatchSet(patch)
    except (UnidiffParseError, ValueError):
        return _added_lines_plainly(patch)
    found: list[AddedLine] = []
    for patched in parsed:
        path = _strip_prefix(patched.path)
        for hunk in patched:
            for line in hunk:
                if line.is_added:
                    found.append(AddedLine(path, line.target_line_no or 0, line.value.rstrip("\n")))
    return found


def _strip_prefix(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def _added_lines_plainly(patch: str) -> list[AddedLine]:
    found: list[AddedLine] = []
    current = "?"
    for raw in patch.splitlines():
        if raw.startswith("+++ "):
            current = _strip_prefix(raw[4:].strip().split("\t")[0])
        elif raw.startswith("+") and not raw.startswith("+++"):
            found.append(AddedLine(current, 0, raw[1:]))
    return found


# What opens a connection or starts a process, in the languages pagerpatch reads (Python, JS/TS, Go, Java, Ruby).
_NETWORK = re.compile(
    r"""
    \b(?:import|from)\s+(?:requests|httpx|aiohttp|urllib3?|urllib\.request|http\.client|socket|ftplib|smtplib
        |telnetlib|paramiko|websockets?|grpc)\b
    | \b(?:requests|httpx|aiohttp)\.(?:get|post|put|patch|delete|head|request
        |Client|AsyncClient|Session|ClientSession)\b
    | \burlopen\s*\( | \burllib\.request\b | \bsocket\.(?:socket|create_connection)\s*\(
    | (?<![.\w])fetch\s*\( | \b(?:window|globalThis|self)\.fetch\s*\(
    | \baxios\b | \bXMLHttpRequest\b | \bnew\s+WebSocket\s*\(
    | \brequire\s*\(\s*['"](?:node:)?(?:https?|net|dgram|tls|axios|node-fetch|undici)['"]\s*\)
    | \bfrom\s+['"](?:node:)?(?:https?|net|dgram|tls|axios|node-fetch|undici)['"]
    | \bhttps?\.(?:get|request)\s*\( | "net/http" | \bhttp\.(?:Get|Post|NewRequest)\s*\(
    | \bHttpClient\b | \bNet::HTTP\b | \bURL\s*\(.*\)\.openConnection
    """,
    re.VERBOSE,
)
_PROCESS = re.compile(
    r"""
    \b(?:import|from)\s+(?:subprocess|pty)\b
    | \bsubprocess\.(?:run|Popen|call|check_call|check_output|getoutput|getstatusoutput)\b
    | \bos\.(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|fork)\s*\(
    | \basyncio\.create_subprocess_(?:exec|shell)\b | \bpty\.spawn\b
    | \brequire\s*\(\s*['"](?:node:)?child_process['"]\s*\) | \bfrom\s+['"](?:node:)?child_process['"]
    | \bchild_process\b | \b(?:execSync|execFileSync|spawnSync)\s*\(
    | "os/exec" | \bexec\.Command\s*\( | \bRuntime\.getRuntime\(\)\.exec\b | \bProcessBuilder\b
    | \bKernel\.(?:system|exec|spawn)\b | \bIO\.popen\b | \bOpen3\.
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class NewCall:
    kind: str  # "network" or "subprocess"
    file: str
    line: int
    text: str

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def new_calls(patch: str) -> list[NewCall]:
    """Network and subprocess calls on the lines the patch adds (removed and context lines never count)."""
    found: list[NewCall] = []
    for added in added_lines(patch):
        for kind, pattern in (("network", _NETWORK), ("subprocess", _PROCESS)):
            if pattern.search(added.text):
                found.append(NewCall(kind, added.file, added.line, added.text.strip()[:120]))
    return found


# ---------------------------------------------------------------- reproduction

MODEL_STRATEGY_PREFIX = "model"  # fixgen's `model-patch`: a patch the fix agent wrote


def is_model_fix(strategy: str) -> bool:
    return strategy.startswith(MODEL_STRATEGY_PREFIX)


def reproduction_gap(strategy: str, reproduced: bool | None, note: str = "") -> str | None:
    """Why the failure was not reproduced (the risk goes up one level), or None when nothing is missing.

    `reproduced is False`: a regression test was written but did not fail at the base commit (it already passes
    there, or fails another way), so it reproduces nothing. `None` for a model-written fix: no reproduction was
    possible. A revert without a reproduction is judged by its proof alone (its own rules).
    """
    detail = f" ({note.strip()[:200]})" if note.strip() else ""
    if reproduced is False:
        return f"the regression test does not reproduce the failure: it did not fail at the base commit{detail}"
    if reproduced is None and is_model_fix(strategy):
        return f"model-written fix without a reproduction of the failure{detail}"
    return None
