"""docs/reference is what the usage texts say, page for page (hub.docs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hub import docs
from hub.commands import COMMANDS

ROOT = Path(__file__).parents[2]


def test_committed_reference_matches_the_usage_texts() -> None:
    problems = docs.check(ROOT / docs.DEFAULT_DIR)
    assert not problems, "docs/reference drifted; run: python -m hub.docs\n" + "\n".join(problems)


def test_every_command_driver_and_filter_has_a_page() -> None:
    made = docs.pages()
    for name in ("hub4com", *COMMANDS):
        assert f"commands/{name}.md" in made
    assert set(docs.COMMAND_MODULES) == set(COMMANDS)
    assert "drivers/tcp-multi.md" in made and "filters/telnet.md" in made
    # the page is the usage text itself
    assert "--reconnect=<t>" in made["drivers/tcp.md"]
    assert "--max-clients=<n>" in made["commands/com2tcp-rfc2217.md"]
    for rel in made:
        if rel != "index.md":
            assert f"]({rel})" in made["index.md"], f"index does not link {rel}"


def test_check_names_a_changed_a_missing_and_a_stale_page(tmp_path: Path) -> None:
    assert docs.main([str(tmp_path)]) == 0
    assert docs.check(tmp_path) == []
    page = tmp_path / "drivers" / "tcp.md"
    page.write_text(page.read_text().replace("--reconnect=<t>", "--reconnect=<ms>"))
    (tmp_path / "filters" / "telnet.md").unlink()
    (tmp_path / "filters" / "gone.md").write_text("# gone\n")
    problems = docs.check(tmp_path)
    assert any("drivers/tcp.md: differs" in p for p in problems)
    assert any("filters/telnet.md: missing" in p for p in problems)
    assert any("filters/gone.md: no usage text" in p for p in problems)
    assert docs.main(["--check", str(tmp_path)]) == 1
    assert docs.main([str(tmp_path)]) == 0  # regenerates and removes the stale page
    assert docs.check(tmp_path) == [] and not (tmp_path / "filters" / "gone.md").exists()


PICTURES = ROOT / "docs" / "pictures"


def test_every_picture_is_committed_drawn_and_shown_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    sources = sorted(PICTURES.glob("*.dot"))
    assert len(sources) >= 3
    for src in sources:
        svg = src.with_suffix(".svg")
        assert svg.exists(), f"{svg.name} missing: run docs/pictures/make.sh"
        assert f"](docs/pictures/{svg.name})" in readme


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_the_pictures_are_what_their_sources_draw(tmp_path: Path) -> None:
    for f in [*PICTURES.glob("*.dot"), PICTURES / "make.sh"]:
        shutil.copy2(f, tmp_path / f.name)
    subprocess.run(["sh", str(tmp_path / "make.sh")], check=True, timeout=120)
    for svg in PICTURES.glob("*.svg"):
        assert (tmp_path / svg.name).read_text() == svg.read_text(), f"run docs/pictures/make.sh ({svg.name})"


LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes for the headings of `markdown`."""
    found: set[str] = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            n, base = 0, slug
            while slug in found:
                n += 1
                slug = f"{base}-{n}"
            found.add(slug)
    return found


def test_every_link_of_the_readme_and_docs_leads_somewhere() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        text = page.read_text()
        for target in LINK_RE.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path_text, _, anchor = target.partition("#")
            path = (page.parent / path_text).resolve() if path_text else page
            assert path.exists(), f"{page.relative_to(ROOT)}: no file {target}"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path.read_text()), f"{page.relative_to(ROOT)}: no heading #{anchor}"
