"""A fake GitHub REST API: a real HTTP server on 127.0.0.1 that the real PyGithub talks to through `base_url`.

The git data endpoints are backed by a real bare repository per fake repository (`git hash-object`, a scratch
index + `write-tree`, `commit-tree`, `update-ref`), so a test can clone the pull request's head and see the fix.
Answers are the recorded shapes in tests/fixtures/apis/github (octokit/fixtures, PyGithub ReplayData, the 422
bodies from issue threads; see SOURCES.md there), with ids, shas and urls filled in. Failure injection per
method and path: any status with body and headers (5xx, 429/403 with Retry-After, 401), or a delay (timeouts).
Tokens: `tokens` (personal/installation); a GitHub App's JWT is accepted when its `iss` is `app_id`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_github_shapes import Call, FakeRepo, Injected, Templates, _git
from tests.support.http_server import ThreadedServer


class FakeGithub:
    """`add_repo(full_name, source)`, `inject(...)`, `requests`, `pulls(full_name)`, `merge`/`close`."""

    def __init__(self, root: Path, *, token: str = "ghp_fake_token", app_id: str = "4242") -> None:
        self.root = root
        self.tokens: set[str] = {token}
        self.app_id = app_id
        self.installation_id = 77
        self.token_ttl_s = 3600.0
        self.installation_tokens: list[str] = []
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Call] = []
        self.t = Templates()
        self._injected: list[Injected] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._http: ThreadedServer | None = None
        self.url = ""

    # ------------------------------------------------------------------ test controls
    def add_repo(self, full_name: str, source: Path, default_branch: str = "main") -> FakeRepo:
        bare = self.root / f"{full_name.replace('/', '__')}.git"
        subprocess.run(["git", "clone", "--quiet", "--bare", str(source), str(bare)], check=True)
        self.repos[full_name] = FakeRepo(full_name, bare, default_branch)
        return self.repos[full_name]

    def inject(self, method: str, path: str, status: int = 500, body: Any = None, *,
               headers: dict[str, str] | None = None, times: int = 1, delay_s: float = 0.0) -> None:  # fmt: skip
        """The next `times` requests matching `method` and the `path` regex get this answer (or this delay)."""
        body = {"message": "Server Error"} if body is None and status >= 500 else body
        with self._lock:
            self._injected.append(
                Injected(method.upper(), re.compile(path), status, body, headers or {}, times, delay_s)
            )

    def calls(self, method: str, path: str) -> list[Call]:
        return [c for c in self.requests if c.method == method and re.search(path, c.path)]

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        return self.repos[full_name].pulls

    def branch_sha(self, full_name: str, branch: str) -> str | None:
        try:
            return _git(self.repos[full_name].bare, "rev-parse", "--verify", "-q", f"refs/heads/{branch}").strip()
        except subprocess.CalledProcessError:
            return None

    def show(self, full_name: str, rev: str, path: str) -> str:
        return _git(self.repos[full_name].bare, "show", f"{rev}:{path}")

    def merge(self, full_name: str, number: int) -> None:
        pr = self._pull(full_name, number)
        pr.update(state="closed", merged=True, merged_at=_now(), closed_at=_now())

    def close(self, full_name: str, number: int) -> None:
        self._pull(full_name, number).update(state="closed", closed_at=_now())

    # ------------------------------------------------------------------ server
    def start(self) -> FakeGithub:
        app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PATCH", "DELETE"])])
        self._http = ThreadedServer(app, "fake GitHub")
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    async def _dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"].removeprefix("api/v3/")
        raw = await request.body()
        body = json.loads(raw) if raw else None
        auth = request.headers.get("authorization", "")
        self.requests.append(Call(request.method, path, dict(request.query_params), body, auth))
        hit = self._take_injected(request.method, path)
        if hit is not None:
            if hit.delay_s:
                await _sleep(hit.delay_s)
            if hit.status:
                return self._json(hit.body, hit.status, hit.headers)
        base = str(request.base_url).rstrip("/")
        for method, pattern, handler in self._routes():
            m = re.fullmatch(pattern, path)
            if m and method == request.method:
                denied = self._check_auth(auth, app_route=path.startswith("/app/") or path.endswith("/installation"))
                if denied is not None:
                    return denied
                repo = self.repos.get(f"{m['o']}/{m['r']}") if "o" in m.groupdict() else None
                if "o" in m.groupdict() and repo is None:
                    return self._json(
                        {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404
                    )
                result = handler(base, repo, m.groupdict(), body or {}, dict(request.query_params))
                status, payload = result if isinstance(result, tuple) else (200, result)
                return self._json(payload, status)
        return self._json({"message": "Not Found"}, 404)

    def _take_injected(self, method: str, path: str) -> Injected | None:
        with self._lock:
            for inj in self._injected:
                if inj.method == method and inj.path.search(path) and inj.times > 0:
                    inj.times -= 1
                    return inj
        return None

    def _check_auth(self, auth: str, *, app_route: bool) -> Response | None:
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "bearer":
            try:
                claims = jwt.decode(credential, options={"verify_signature": False})
            except jwt.PyJWTError:
                claims = {}
            if app_route and str(claims.get("iss")) == self.app_id:
                return None
        elif scheme.lower() == "token" and credential in self.tokens and not app_route:
            return None
        return self._json(self.t.bad_credentials, 401)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        hdrs = dict(self.t.rate_headers)
        hdrs.update(headers or {})
        if payload is None:
            return Response(status_code=status, headers=hdrs)
        return JSONResponse(payload, status_code=status, headers=hdrs)

    # ------------------------------------------------------------------ handlers
    def _routes(self) -> list[tuple[str, str, Any]]:
        r = r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)"
        return [
            ("GET", r, self._get_repo),
            ("GET", rf"{r}/installation", lambda *a: {"id": self.installation_id, "app_id": int(self.app_id)}),
            ("POST", r"/app/installations/(?P<id>\d+)/access_tokens", self._access_token),
            ("GET", rf"{r}/git/ref/(?P<ref>.+)", self._get_ref),
            ("POST", rf"{r}/git/refs", self._create_ref),
            ("PATCH", rf"{r}/git/refs/(?P<ref>.+)", self._update_ref),
            ("GET", rf"{r}/git/commits/(?P<sha>[0-9a-f]+)", lambda b, repo, m, *_: self._commit(b, repo, m["sha"])),
            ("POST", rf"{r}/git/blobs", self._create_blob),
            ("POST", rf"{r}/git/trees", self._create_tree),
            ("POST", rf"{r}/git/commits", self._create_commit),
            ("GET", rf"{r}/pulls", self._list_pulls),
            ("POST", rf"{r}/pulls", self._create_pull),
            ("GET", rf"{r}/pulls/(?P<n>\d+)", lambda b, repo, m, *_: self._pull(repo.full_name, int(m["n"]))),
            ("POST", rf"{r}/issues/(?P<n>\d+)/labels", self._add_labels),
            ("POST", rf"{r}/pulls/(?P<n>\d+)/requested_reviewers", self._request_reviewers),
            ("GET", rf"{r}/contents/(?P<path>.+)", self._get_contents),
        ]

    def _get_repo(self, base: str, repo: FakeRepo, *_: Any) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(self.t.repo)
        owner, name = repo.full_name.split("/")
        out.update(name=name, full_name=repo.full_name, default_branch=repo.default_branch,
                   url=f"{base}/repos/{repo.full_name}", html_url=f"{base}/{repo.full_name}")  # fmt: skip
        out["owner"] = {**out["owner"], "login": owner}
        return out

    def _access_token(self, *_: Any) -> tuple[int, dict[str, Any]]:
        token = f"ghs_fake_installation_{len(self.installation_tokens) + 1}"
        self.tokens.add(token)
        self.installation_tokens.append(token)
        expires = datetime.now(UTC) + timedelta(seconds=self.token_ttl_s)
        perms = {"contents": "write", "pull_requests": "write", "metadata": "read"}
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {"token": token, "expires_at": stamp, "permissions": perms, "repository_selection": "all"}

    def _ref(self, base: str, repo: FakeRepo, ref: str, sha: str) -> dict[str, Any]:
        out: dict[str, Any] = copy.deepcopy(self.t.ref)
        url = f"{base}/repos/{repo.full_name}"
        out.update(ref=f"refs/{ref}", url=f"{url}/git/refs/{ref}")
        out["object"] = {"sha": sha, "type": "commit", "url": f"{url}/git/commits/{sha}"}
        return out

    def _get_ref(self, base: str, repo: FakeRepo, m: dict[str, str], *_: Any) -> Any:
        sha = self.branch_sha(repo.full_name, m["ref"].removeprefix("heads/"))
        if sha is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/git/refs"}
        return self._ref(base, repo, m["ref"], sha)

    def _create_ref(self, base: str, repo: FakeRepo, _m: Any, body: dict[str, Any], *_: Any) -> Any:
        ref = str(body["ref"]).removeprefix("refs/")
        if self.branch_sha(repo.full_name, ref.removeprefix("heads/")) is not None:
            return 422, self.t.ref_exists
        _git(repo.bare, "update-ref", f"refs/{ref}", body["sha"])
        return 201, self._ref(base, repo, ref, body["sha"])

    def _update_ref(self, base: str, repo: FakeRepo, m: dict[str, str], body: dict[str, Any], *_: Any) -> Any:
        _git(repo.bare, "update-ref", f"refs/{m['ref']}", body["sha"])
        return self._ref(base, repo, m["ref"], body["sha"])

    def _commit(self, base: str, repo: FakeRepo, sha: str) -> Any:
        try:
            raw = _git(repo.bare, "cat-file", "commit", sha)
        except subprocess.CalledProcessError:
            return 404, {"message": "No commit found for SHA: " + sha, "documentation_url": "https://docs.github.com"}
        head, _, message = raw.partition("\n\n")
        url = f"{base}/repos/{repo.full_name}/git"
        out = copy.deepcopy(self.t.commit)
        out.update(sha=sha, url=f"{url}/commits/{sha}", html_url=f"{base}/{repo.full_name}/commit/{sha}",
                   message=message, parents=[])  # fmt: skip
        for line in head.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                out["tree"] = {"sha": value, "url": f"{url}/trees/{value}"}
            elif key == "parent":
                out["parents"].append({"sha": value, "url": f"{url}/commits/{value}", "html_url": ""})
            elif key in ("author", "committer"):
                who = re.fullmatch(r"(.*) <(.*)> (\d+) ([+-]\d{4})", value)
                assert who is not None
                when = datetime.fromtimestamp(int(who[3]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                out[key] = {"name": who[1], "email": who[2], "date": when}
        return out

    def _create_blob(self, base: str, repo: FakeRepo, _m: Any, body: dict[str, Any], *_: Any) -> Any:
        data = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
        sha = _git(repo.bare, "hash-object", "-w", "--stdin", input=data).strip()
        return 201, {**self.t.blob, "sha": sha, "url": f"{base}/repos/{repo.full_name}/git/blobs/{sha}"}

    def _create_tree(self, base: str, repo: FakeRepo, _m: Any, body: dict[str, Any], *_: Any) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if body.get("base_tree"):
                _git(repo.bare, "read-tree", body["base_tree"], env=env)
            lines = []
            for e in body["tree"]:
                sha = e.get("sha")
                if "content" in e:
                    sha = _git(repo.bare, "hash-object", "-w", "--stdin", input=e["content"].encode()).strip()
                lines.append(f"0 {'0' * 40}\t{e['path']}" if sha is None else f"{e['mode']} {sha}\t{e['path']}")
            _git(repo.bare, "update-index", "--index-info", input=("\n".join(lines) + "\n").encode(), env=env)
            tree = _git(repo.bare, "write-tree", env=env).strip()
        out = copy.deepcopy(self.t.tree)
        out.update(sha=tree, url=f"{base}/repos/{repo.full_name}/git/trees/{tree}", tree=[], truncated=False)
        return 201, out

    def _create_commit(self, base: str, repo: FakeRepo, _m: Any, body: dict[str, Any], *_: Any) -> Any:
        env = {}
        for role, who in (("AUTHOR", body.get("author")), ("COMMITTER", body.get("committer") or body.get("author"))):
            who = who or {"name": "GitHub", "email": "noreply@github.com", "date": _now()}
            env.update({f"GIT_{role}_NAME": who["name"], f"GIT_{role}_EMAIL": who["email"],
                        f"GIT_{role}_DATE": who.get("date") or _now()})  # fmt: skip
        parents = [arg for p in body.get("parents", []) for arg in ("-p", p)]
        sha = _git(repo.bare, "commit-tree", body["tree"], *parents, "-F", "-", input=body["message"].encode(), env=env)
        return 201, self._commit(base, repo, sha.strip())

    def _list_pulls(self, base: str, repo: FakeRepo, _m: Any, _b: Any, query: dict[str, str]) -> Any:
        state, head = query.get("state", "open"), query.get("head")
        found = [p for p in repo.pulls if (state == "all" or p["state"] == state) and (head is None or p["head"]["label"] == head)]  # fmt: skip # noqa: E501
        return found or list(self.t.no_pulls)

    def _create_pull(self, base: str, repo: FakeRepo, _m: Any, body: dict[str, Any], *_: Any) -> Any:
        owner = repo.full_name.split("/")[0]
        label = f"{owner}:{body['head']}"
        if any(p["head"]["label"] == label and p["state"] == "open" for p in repo.pulls):
            exists = copy.deepcopy(self.t.pr_exists)
            exists["errors"][0]["message"] = f"A pull request already exists for {label}."
            return 422, exists
        head_sha, base_sha = (
            self.branch_sha(repo.full_name, body["head"]),
            self.branch_sha(repo.full_name, body["base"]),
        )
        if head_sha is None or base_sha is None:
            field_name = "head" if head_sha is None else "base"
            invalid = [{"resource": "PullRequest", "field": field_name, "code": "invalid"}]
            docs = "https://docs.github.com/rest/pulls/pulls"
            return 422, {"message": "Validation Failed", "errors": invalid, "documentation_url": docs}
        n = next(self._numbers)
        pr = copy.deepcopy(self.t.pull)
        api = f"{base}/repos/{repo.full_name}"
        pr.update(id=1000 + n, number=n, url=f"{api}/pulls/{n}", html_url=f"{base}/{repo.full_name}/pull/{n}",
                  issue_url=f"{api}/issues/{n}", title=body["title"], body=body.get("body"), state="open",
                  draft=bool(body.get("draft")), merged=False, merged_at=None, closed_at=None, labels=[],
                  requested_reviewers=[], requested_teams=[], created_at=_now(), updated_at=_now())  # fmt: skip
        pr["head"] = {**pr["head"], "label": label, "ref": body["head"], "sha": head_sha}
        pr["base"] = {**pr["base"], "label": f"{owner}:{body['base']}", "ref": body["base"], "sha": base_sha}
        repo.pulls.append(pr)
        return 201, pr

    def _pull(self, full_name: str, number: int) -> dict[str, Any]:
        return next(p for p in self.repos[full_name].pulls if p["number"] == number)

    def _add_labels(self, base: str, repo: FakeRepo, m: dict[str, str], body: Any, *_: Any) -> Any:
        pr = self._pull(repo.full_name, int(m["n"]))
        names = body["labels"] if isinstance(body, dict) else body
        for name in names:
            if name not in [lb["name"] for lb in pr["labels"]]:
                pr["labels"].append(
                    {**self.t.label, "name": name, "url": f"{base}/repos/{repo.full_name}/labels/{name}"}
                )
        return pr["labels"]

    def _request_reviewers(self, base: str, repo: FakeRepo, m: dict[str, str], body: dict[str, Any], *_: Any) -> Any:
        pr = self._pull(repo.full_name, int(m["n"]))
        for login in body.get("reviewers", []):
            if login not in [u["login"] for u in pr["requested_reviewers"]]:
                pr["requested_reviewers"].append({**pr["user"], "login": login})
        for slug in body.get("team_reviewers", []):
            pr["requested_teams"].append({"slug": slug, "name": slug})
        return 201, pr

    def _get_contents(self, base: str, repo: FakeRepo, m: dict[str, str], _b: Any, query: dict[str, str]) -> Any:
        ref = query.get("ref", repo.default_branch)
        try:
            data = subprocess.run(["git", "show", f"{ref}:{m['path']}"], cwd=repo.bare, capture_output=True,
                                  check=True).stdout  # fmt: skip
        except subprocess.CalledProcessError:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/contents"}
        out = {**self.t.content, "path": m["path"], "name": m["path"].rsplit("/", 1)[-1], "size": len(data)}
        out["content"] = base64.b64encode(data).decode()
        return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@contextlib.contextmanager
def serving(root: Path) -> Iterator[FakeGithub]:
    """A fake GitHub storing its repositories under `root`, stopped on exit (`.url` is github.api_url)."""
    root.mkdir(parents=True, exist_ok=True)
    server = FakeGithub(root).start()
    try:
        yield server
    finally:
        server.stop()
