"""Every ```python block of README.md and docs/*.md runs on its own as written."""
from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def code_blocks():
    for doc in DOCUMENTS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 2
            yield pytest.param(m.group(1), id=f"{doc.relative_to(ROOT)}:{line}")


def imported_modules(code: str):
    return {m.split(".")[0] for m in re.findall(r"^\s*(?:import|from)\s+([\w.]+)", code, re.M)}


def test_the_documents_have_code():
    assert sum(1 for _ in code_blocks()) >= 8


@pytest.mark.parametrize("code", list(code_blocks()))
def test_code_block_runs(code, tmp_path, monkeypatch):
    for module in imported_modules(code):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the block imports {module}, which is not installed")
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_block__"})


CPP_BLOCK = re.compile(r"^```cpp\n(.*?)^```", re.S | re.M)


def test_cpp_blocks_are_excerpts_of_the_examples():
    """The C++ of the docs is quoted from examples/cpp, which tests/test_cpp_api.py builds and runs:
    each block's paragraphs appear line for line (up to indentation) in one example file."""
    sources = [[line.strip() for line in f.read_text().splitlines()] for f in (ROOT / "examples" / "cpp").glob("*.cpp")]
    blocks = [m.group(1) for doc in DOCUMENTS for m in CPP_BLOCK.finditer(doc.read_text())]
    assert blocks
    for block in blocks:
        for paragraph in block.strip().split("\n\n"):
            lines = [line.strip() for line in paragraph.splitlines()]
            assert any(lines == src[i:i + len(lines)] for src in sources for i in range(len(src))), paragraph
