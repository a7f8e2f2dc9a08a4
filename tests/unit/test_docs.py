"""The README and the docs: their Python examples run, and they speak of the project only.

Every fenced ```python block of README.md and docs/*.md runs here, the blocks of one
page in order in one namespace (a page reads as one session of a notebook), from a
temporary working directory."""


from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text())


def test_every_page_with_code_is_found():
    assert any(python_blocks(p) for p in PAGES if p.name == "README.md")
    assert sum(bool(python_blocks(p)) for p in PAGES) >= 3


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def _tracked_files() -> list[str]:
    try:
        listing = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in listing.splitlines() if (REPO / f).is_file()]


def test_no_file_mentions_the_history_of_its_development():
    pattern = re.compile(r"session [0-9]|issue [0-9]|\bsession-[0-9]", re.I)
    found = []
    for name in _tracked_files():
        try:
            text = (REPO / name).read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1)
                  if pattern.search(line)]
    assert not found


def test_docs_and_docstrings_refer_to_no_file_outside_the_repository():
    # The data root (../shared/data) is where the README's commands find MovieLens; any
    # other path above the repository, or the specification it was written from, is not
    # something a reader of the package has.
    outside = re.compile(r"SPEC §|SPEC\.md|\.\./shared/(?!data\b)|shared/papers")
    names = [n for n in _tracked_files()
             if n.endswith((".md", ".py", ".cfg", ".yaml", ".yml", ".toml"))
             and not n.startswith("tests/mutation/")
             and n not in ("tests/unit/test_docs.py", "tests/integration/test_docs.py")]
    found = [f"{n}:{i}" for n in names
             for i, line in enumerate((REPO / n).read_text().splitlines(), 1)
             if outside.search(line)]
    assert not found


def test_api_reference_covers_every_module():
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(REPO / "docs"))
    modules = set(hooks.public_modules())
    for path in (REPO / "tfrs_userlevel").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] != "__main__":
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            assert module in modules, module
    reference = hooks.api_reference()
    assert all(f"::: {m}\n" in reference for m in modules)
    assert "GPRec" in hooks.public_names()["tfrs_userlevel.gprec.layer"]


def test_results_are_organised_by_study_with_an_index():
    results = REPO / "results"
    index = (results / "README.md").read_text()
    loose = [p.name for p in results.iterdir() if p.is_file() and p.name != "README.md"]
    assert not loose
    studies = [p.name for p in results.iterdir() if p.is_dir()]
    assert studies and all(f"`{s}/`" in index for s in studies)
    from tfrs_userlevel.experiments.report import study_of
    # Every table written by experiments.py lies in the folder it would be written to.
    checked = 0
    for path in results.glob("*/*.json"):
        payload = json.loads(path.read_text())
        first = payload[0] if isinstance(payload, list) and payload else payload
        if isinstance(first, dict) and "experiments.py" in first.get("command", ""):
            assert study_of(path.stem) == path.parent.name, path
            checked += 1
    assert checked >= 20
