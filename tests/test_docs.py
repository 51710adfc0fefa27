"""docs/derivation/ stays true: every `file.py:function` it names exists, and docs/make_figures.py (which makes every
figure and number in it) runs, here at its small size."""
import ast
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DERIVATION = ROOT / "docs" / "derivation"
REFERENCE = re.compile(r"`([\w./-]+\.py):([\w.]+)`")


def defined_names(path):
    """Top-level functions, classes and assignments of a Python file, and Class.method for each class's methods."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def references():
    """(chapter, file, name) for every `file.py:name` in the derivation."""
    return [(md.name, m.group(1), m.group(2)) for md in sorted(DERIVATION.glob("*.md"))
            for m in REFERENCE.finditer(md.read_text())]


def test_every_named_function_exists():
    refs = references()
    assert len(refs) > 40, "the derivation names too few functions: has the reference format changed?"
    missing = [(chapter, f, name) for chapter, f, name in refs
               if not (ROOT / f).is_file() or name not in defined_names(ROOT / f)]
    assert not missing, f"the docs name functions that do not exist: {missing}"


def test_every_chapter_ends_with_the_code_and_its_checks():
    for md in sorted(DERIVATION.glob("0*.md")):
        sections = re.findall(r"^## (.+)$", md.read_text(), flags=re.M)
        assert sections[-2:] == ["In the code", "Checked by"], (md.name, sections[-2:])
        code, checks = md.read_text().split("## In the code")[1].split("## Checked by")
        assert REFERENCE.search(code) and REFERENCE.search(checks), f"{md.name}: a section names no file:function"


def test_index_links_every_chapter():
    index = (DERIVATION / "README.md").read_text()
    for md in sorted(DERIVATION.glob("0*.md")):
        assert f"({md.name})" in index, f"README.md does not link {md.name}"


def test_make_figures_fills_every_block(mnist_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    shutil.copytree(DERIVATION, tmp_path / "derivation")
    for md in (tmp_path / "derivation").glob("*.md"):  # empty every block, so that filling it is seen
        md.write_text(re.sub(r"(<!-- make_figures: [\w-]+ -->\n).*?(<!-- /make_figures -->)", r"\1\2",
                             md.read_text(), flags=re.S))
    make_figures.main(["--size", "small", "--out", str(tmp_path), "--data-dir", str(mnist_dir)])
    blocks = re.findall(r"<!-- make_figures: ([\w-]+) -->\n(.*?)<!-- /make_figures -->",
                        "".join(md.read_text() for md in (tmp_path / "derivation").glob("*.md")), flags=re.S)
    assert {name for name, _ in blocks} >= {"underflow", "prior-sampling", "gradient-variance", "likelihoods",
                                            "linear-lk"}
    assert all(body.count("|") > 10 for _, body in blocks), "a block was left empty"
    for md in DERIVATION.glob("*.md"):
        for figure in re.findall(r"\]\(\.\./figures/([\w.-]+\.png)\)", md.read_text()):
            assert (tmp_path / "figures" / figure).stat().st_size > 1000, figure
    numbers = (tmp_path / "figures" / "numbers.json").read_text()
    assert '"product_float64": 0.0' in numbers  # chapter 1: the untrained categorical's product underflows
    with pytest.raises(SystemExit, match="unknown make_figures block"):
        (tmp_path / "derivation" / "x.md").write_text("<!-- make_figures: nonsense -->\n<!-- /make_figures -->\n")
        make_figures.fill_blocks(tmp_path / "derivation", {})
