"""The README and docs/ hold together: every relative link reaches a file (and a heading, when it
names one), every `python -m MODULE` they tell a reader to run exists, and the README stays short.

Anchors follow GitHub's rules: the heading's text in lower case, punctuation dropped, spaces
turned into hyphens, and `-1`, `-2`, ... for a heading that repeats.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 260  # a five-minute read; the rest belongs in docs/

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
_MODULE = re.compile(r"python3? -m ([A-Za-z_]\w*(?:\.\w+)*)")
_ISSUE_NUMBER = re.compile(r"\bissues? #?\d+|(?<![\w&<#])#\d+\b", re.IGNORECASE)


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans taken out: a link inside code is not a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links_in(text: str) -> list[str]:
    """Every inline link or image target of a Markdown text, outside code."""
    return [match.group(1) for match in _LINK.finditer(without_code(text))]


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:|^//", target, re.IGNORECASE)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: `## Stories (bench.story)` -> `stories-benchstory`."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its words
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(text: str) -> set[str]:
    """Every heading anchor of a page, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    anchors = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `page` that name no file, or a heading its target does not have."""
    broken = []
    for target in links_in(page.read_text(encoding="utf-8")):
        if not is_relative(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        where = f"{page.relative_to(root)}: {target}"
        if not resolved.exists():
            broken.append(f"{where} (no such file)")
        elif (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors_of(resolved.read_text(encoding="utf-8"))
        ):
            broken.append(f"{where} (no such heading)")
    return broken


def modules_named(text: str) -> list[str]:
    """The modules a text tells a reader to run with `python -m`, code included."""
    return list(dict.fromkeys(_MODULE.findall(text)))


def missing_modules(page: Path, root: Path = ROOT) -> list[str]:
    """The `python -m` modules `page` names that cannot be found from the repository root."""
    sys.path.insert(0, str(root))
    try:
        return [
            name
            for name in modules_named(page.read_text(encoding="utf-8"))
            if importlib.util.find_spec(name) is None
        ]
    finally:
        sys.path.remove(str(root))


# -- the project's own pages --------------------------------------------------------------------


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_an_existing_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_dash_m_module_a_page_names_exists(page: Path) -> None:
    assert missing_modules(page) == []


def test_the_readme_links_every_page_under_docs() -> None:
    linked = {
        target.partition("#")[0] for target in links_in((ROOT / "README.md").read_text(encoding="utf-8"))
    }
    pages = {f"docs/{page.name}" for page in doc_pages()[1:]}
    assert pages and pages <= linked


def test_the_readme_stays_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_page_names_features_not_issue_numbers(page: Path) -> None:
    assert _ISSUE_NUMBER.findall(page.read_text(encoding="utf-8")) == []


# -- the checker itself -------------------------------------------------------------------------


def test_an_anchor_is_the_heading_in_lower_case_with_hyphens_and_no_punctuation() -> None:
    assert github_anchor("Stories (bench.story)") == "stories-benchstory"
    assert github_anchor("Logs (`LOG_FORMAT=json`)") == "logs-log_formatjson"
    assert github_anchor("The story's cast") == "the-storys-cast"
    assert github_anchor("History: what made the numbers") == "history-what-made-the-numbers"


def test_a_repeated_heading_gets_a_numbered_anchor() -> None:
    assert anchors_of("# Notes\n\n## Notes\n\n## Notes\n") == {"notes", "notes-1", "notes-2"}


def test_a_heading_inside_a_code_block_is_not_a_heading() -> None:
    assert anchors_of("# Real\n\n```sh\n# a shell comment\n```\n") == {"real"}


def test_links_inside_code_are_not_links() -> None:
    text = "See [ops](docs/operations.md) and `[not](a/link.md)`.\n\n```\n[nor](this.md)\n```\n"
    assert links_in(text) == ["docs/operations.md"]


def test_a_link_to_a_missing_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("[gone](docs/gone.md) [site](https://example.com/x.md)\n")
    assert broken_links(tmp_path / "README.md", tmp_path) == ["README.md: docs/gone.md (no such file)"]


def test_a_link_to_a_missing_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Here\n\n[ok](#here) [no](b.md#there) [yes](b.md#b)\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n")
    assert broken_links(tmp_path / "docs" / "a.md", tmp_path) == ["docs/a.md: b.md#there (no such heading)"]


def test_a_module_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs_probe").mkdir()
    (tmp_path / "docs_probe" / "__init__.py").write_text("")
    (tmp_path / "docs_probe" / "run.py").write_text("")
    (tmp_path / "README.md").write_text("`python -m docs_probe.run` and `python -m docs_probe.gone.`\n")
    try:
        assert missing_modules(tmp_path / "README.md", tmp_path) == ["docs_probe.gone"]
    finally:
        sys.modules.pop("docs_probe", None)


def test_an_issue_number_is_found_and_a_feature_name_is_not() -> None:
    assert _ISSUE_NUMBER.findall("as issue 13 asked, see #25") == ["issue 13", "#25"]
    assert _ISSUE_NUMBER.findall("## Stories (bench.story), `#` and <#123>") == []
