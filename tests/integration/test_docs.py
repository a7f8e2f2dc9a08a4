"""The README and the docs: their Python examples run, and they speak of the project only.

Every fenced ```python block of README.md and docs/*.md runs here, the blocks of one
page in order in one namespace (a page reads as one session of a notebook), from a
temporary working directory."""


from __future__ import annotations

import pytest

from tests.unit.test_docs import PAGES, REPO, python_blocks


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_python_examples_run(page, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"example_{page.stem}"}
    for number, block in enumerate(python_blocks(page), 1):
        code = compile(block, f"{page.name} python block {number}", "exec")
        exec(code, namespace)  # noqa: S102  (the documentation's own examples)
