"""GithubScm (the real PyGithub) against the fake GitHub REST server backed by a real bare repository: the branch
through the Git Data API, the pull request looked up before it is opened, the 422 "already exists" answers taken
as success, and every failure classified (rate limit -> Transient with the wait, 5xx/timeout -> ScmUnavailable,
401/404 -> ScmRejected). Also a GitHub App: installation found, token minted and refreshed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pagerpatch.kernel.errors import Transient
from pagerpatch.scm import PullRequestSpec, ScmRejected, ScmUnavailable
from pagerpatch.scm.github import GithubScm
from pagerpatch.settings import GithubSettings, RepoConfig
from tests.support.fake_github import FakeGithub, serving
from tests.support.git import Repo

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[FakeGithub]:
    with serving(tmp_path / "fake-github") as server:
        yield server


WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
BRANCH = "pagerpatch/0e9d8c7b-6a5f-4e3d-8c1b-a0f9e8d7c6b5"


def source(tmp_path: Path) -> tuple[Repo, str, str]:
    """A repository with a bug, and the patch that fixes it (edits one file, adds one, deletes one)."""
    repo = Repo.init(tmp_path / "src")
    base = repo.commit(
        {"shop/cart.py": "def total(items):\n    return sum(items) * 2\n", "old.txt": "bye\n",
         ".github/CODEOWNERS": "*.md @docs-team\nshop/ @alice @acme/payments\n"},
        "cart",
    )  # fmt: skip
    (repo.path / "shop/cart.py").write_text("def total(items):\n    return sum(items)\n")
    (repo.path / "shop/test_cart.py").write_text(
        "from shop.cart import total\n\ndef test_total():\n    assert total([1]) == 1\n"
    )
    (repo.path / "old.txt").unlink()
    repo.git("add", "--all")
    patch = repo.git("diff", "--cached", "--binary")
    repo.git("reset", "-q", "--hard")
    return repo, base, patch


def scm(fake: FakeGithub, **over: object) -> GithubScm:
    values: dict[str, object] = {"api_url": fake.url, "token": "ghp_fake_token", "write_interval_s": 0, "timeout_s": 2}
    return GithubScm(GithubSettings.model_validate({**values, **over}))


def repo_config(src: Repo) -> RepoConfig:
    return RepoConfig(name="shop", path=str(src.path), github={"repo": "acme/shop", "labels": ["pagerpatch"]})


def spec(**over: object) -> PullRequestSpec:
    values: dict[str, object] = {"repo": "acme/shop", "branch": BRANCH, "base": "main", "title": "fix: total",
                                 "body": "Proved: ...", "labels": ("pagerpatch", "bug"),
                                 "reviewers": ("alice",)}  # fmt: skip
    return PullRequestSpec(**{**values, **over})  # type: ignore[arg-type]


def test_push_then_open_a_pull_request_the_fix_is_on_its_head(fake_github: FakeGithub, tmp_path: Path) -> None:
    src, base, patch = source(tmp_path)
    fake_github.add_repo("acme/shop", src.path)
    gh = scm(fake_github)
    pushed = gh.push_fix(
        repo_config(src), branch=BRANCH, base_commit=base, patch=patch, message="fix: total\n", when=WHEN
    )
    assert not pushed.already_there and fake_github.branch_sha("acme/shop", BRANCH) == pushed.head_commit
    assert (
        fake_github.show("acme/shop", pushed.head_commit, "shop/cart.py")
        == "def total(items):\n    return sum(items)\n"
    )
    assert "test_total" in fake_github.show("acme/shop", pushed.head_commit, "shop/test_cart.py")
    with pytest.raises(subprocess.CalledProcessError):
        fake_github.show("acme/shop", pushed.head_commit, "old.txt")
    # the commit GitHub made is the one made locally (same tree, parent, identity and dates): a retry sees it
    again = gh.push_fix(
        repo_config(src), branch=BRANCH, base_commit=base, patch=patch, message="fix: total\n", when=WHEN
    )
    assert again.already_there and again.head_commit == pushed.head_commit
    assert len(fake_github.calls("POST", r"/git/commits$")) == 1

    opened = gh.open_pull_request(spec())
    assert (opened.number, opened.head_commit, opened.state) == (1, pushed.head_commit, "open")
    pr = fake_github.pulls("acme/shop")[0]
    assert [lb["name"] for lb in pr["labels"]] == ["pagerpatch", "bug"]
    assert [u["login"] for u in pr["requested_reviewers"]] == ["alice"]
    assert gh.find_pull_request("acme/shop", BRANCH) == opened
    assert gh.open_pull_request(spec()) == opened and len(fake_github.pulls("acme/shop")) == 1  # looked up first
    assert "@alice @acme/payments" in (gh.codeowners("acme/shop", base) or "")


def test_already_exists_answers_are_success(fake_github: FakeGithub, tmp_path: Path) -> None:
    src, base, patch = source(tmp_path)
    fake_github.add_repo("acme/shop", src.path)
    gh = scm(fake_github)
    # A first attempt wrote the ref, but its ref lookup raced: the create answers 422 "Reference already exists".
    pushed = gh.push_fix(repo_config(src), branch=BRANCH, base_commit=base, patch=patch, message="fix\n", when=WHEN)
    fake_github.inject("GET", r"/git/ref/heads/", 404, {"message": "Not Found"})
    again = gh.push_fix(repo_config(src), branch=BRANCH, base_commit=base, patch=patch, message="fix\n", when=WHEN)
    assert again.head_commit == pushed.head_commit
    create_ref = fake_github.calls("POST", r"/git/refs$")
    assert len(create_ref) == 2 and fake_github.calls("PATCH", r"/git/refs/") == []  # 422, then found at our commit
    # The PR lookup missed (eventual consistency): the create answers 422 "A pull request already exists".
    first = gh.open_pull_request(spec())
    fake_github.inject("GET", r"/pulls$", 200, [])
    assert gh.open_pull_request(spec()) == first
    assert len(fake_github.pulls("acme/shop")) == 1 and len(fake_github.calls("POST", r"/pulls$")) == 2


def test_failures_are_classified(fake_github: FakeGithub, tmp_path: Path) -> None:
    src, base, patch = source(tmp_path)
    fake_github.add_repo("acme/shop", src.path)
    gh = scm(fake_github)
    limit_body, limit_headers = fake_github.t.secondary_limit  # the recorded 403 with Retry-After: 60
    fake_github.inject("GET", r"/repos/acme/shop$", 403, limit_body, headers=dict(limit_headers))
    with pytest.raises(Transient, match="rate limited") as limited:
        gh.open_pull_request(spec())
    assert limited.value.retry_after_s == 60
    reset = str(int(datetime.now(UTC).timestamp()) + 30)
    fake_github.inject("POST", r"/pulls$", 429, {"message": "API rate limit exceeded for user ID 1."},
                       headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})  # fmt: skip
    gh.push_fix(repo_config(src), branch=BRANCH, base_commit=base, patch=patch, message="fix\n", when=WHEN)
    with pytest.raises(Transient) as limited:
        gh.open_pull_request(spec())
    assert 25 <= limited.value.retry_after_s <= 31
    fake_github.inject("POST", r"/pulls$", 502)
    with pytest.raises(ScmUnavailable, match="502"):
        gh.open_pull_request(spec())
    fake_github.inject("GET", r"/pulls$", 0, delay_s=3)  # longer than the client's 2 s timeout
    with pytest.raises(ScmUnavailable, match="Timeout"):
        gh.open_pull_request(spec())
    assert fake_github.pulls("acme/shop") == []
    with pytest.raises(ScmRejected, match="401 Bad credentials"):
        scm(fake_github, token="ghp_revoked").open_pull_request(spec())
    with pytest.raises(ScmRejected, match="404"):
        gh.open_pull_request(spec(repo="acme/elsewhere"))
    unpushed = src.commit({"notes.md": "local only\n"}, "not on GitHub")
    with pytest.raises(ScmRejected, match=f"base commit {unpushed[:12]} in acme/shop: 404"):
        gh.push_fix(repo_config(src), branch="other", base_commit=unpushed, patch=patch, message="m\n", when=WHEN)


def test_github_app_installation_token_minted_and_refreshed(fake_github: FakeGithub, tmp_path: Path) -> None:
    src, _base, _patch = source(tmp_path)
    fake_github.add_repo("acme/shop", src.path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fake_github.token_ttl_s = 10  # inside PyGithub's 20 s refresh margin: each use mints a fresh token
    gh = scm(fake_github, token=None, app_id=fake_github.app_id, app_private_key=pem.decode())
    assert gh.find_pull_request("acme/shop", BRANCH) is None
    assert gh.find_pull_request("acme/shop", BRANCH) is None
    assert len(fake_github.calls("GET", r"/repos/acme/shop/installation$")) == 1
    assert len(fake_github.installation_tokens) >= 2
    used = {c.auth for c in fake_github.calls("GET", r"/pulls$")}
    assert used <= {f"token {t}" for t in fake_github.installation_tokens} and len(used) == 2
