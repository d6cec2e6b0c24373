"""docs/reference is what the usage texts say, page for page (hub.docs)."""

from __future__ import annotations

from pathlib import Path

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
