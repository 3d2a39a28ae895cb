"""Pages that fit a Discord message without breaking markdown; thread names; exports."""

from __future__ import annotations

from bot.discord.pages import FENCE, PageLayout, split_pages, story_markdown, thread_name
from bot.limits import THREAD_NAME_CHARS
from bot.storage import Story, Turn

SENTENCE = "The keeper climbed the stairs and lit the lamp. "


def words(text: str) -> list[str]:
    return text.replace(FENCE, " ").split()


def test_pages_fit_and_lose_nothing() -> None:
    text = (SENTENCE * 30 + "\n\n") * 5
    pages = split_pages(text, 2000)
    assert len(pages) > 1 and all(len(p) <= 2000 for p in pages)
    assert words(" ".join(pages)) == words(text)


def test_pages_prefer_paragraph_breaks_then_sentence_ends() -> None:
    paragraphs = [SENTENCE * 12, SENTENCE * 12, SENTENCE * 12]
    pages = split_pages("\n\n".join(paragraphs), 1300)
    assert pages[0] == (paragraphs[0] + "\n\n" + paragraphs[1]).strip()
    one_long = split_pages(SENTENCE * 60, 1000)
    assert len(one_long) > 2 and all(p.rstrip().endswith(".") for p in one_long)


def test_a_cut_never_leaves_a_code_block_open() -> None:
    code = "\n".join(f"print({i})  # a line of code" for i in range(120))
    text = "Some prose first.\n\n```python\n" + code + "\n```\n\nAnd prose after."
    pages = split_pages(text, 1000)
    assert len(pages) > 2 and all(len(p) <= 1000 for p in pages)
    assert all(p.count(FENCE) % 2 == 0 for p in pages)
    assert pages[1].startswith("```python\n")
    assert words(" ".join(pages)).count("print(119)") == 1


def test_prose_around_a_short_code_block_is_cut_outside_it() -> None:
    text = SENTENCE * 15 + "\n```\nx = 1\n```\n" + SENTENCE * 15
    pages = split_pages(text, 1000)
    assert all(p.count(FENCE) % 2 == 0 for p in pages) and "x = 1" in "".join(pages)


def test_a_growing_text_keeps_its_sealed_pages_and_defuses_mentions() -> None:
    layout = PageLayout(limit=500, reserve=10)
    text = ""
    seen: list[list[str]] = []
    for _ in range(40):
        text += "@everyone look. "
        seen.append(layout.pages(text))
    final = seen[-1]
    assert len(final) > 1 and all(len(p) <= 490 for p in final)
    for earlier in seen:  # a page, once cut, never changes
        assert earlier[:-1] == final[:len(earlier) - 1]
    assert "@everyone" not in "".join(final) and "".join(final).count("@\u200beveryone") == 40


def test_thread_names_are_cut_at_a_word() -> None:
    long_topic = "a lighthouse keeper " * 10
    name = thread_name(long_topic)
    kept = name.removesuffix("…").split()
    assert len(name) <= THREAD_NAME_CHARS and name.endswith("…") and kept == long_topic.split()[:len(kept)]
    assert thread_name("owls") == "owls"


def test_story_markdown_quotes_members_and_notes_directions() -> None:
    story = Story(1, 2, 3, 4, 5, "Owls", "tiny", 6, 0.0, True)
    turns = [Turn(1, 1, 0, "write", 5, None, "First.", {}, 0.0, ()),
             Turn(2, 1, 1, "user", 7, None, "Hoot.\nHoot again.", {}, 0.0, ()),
             Turn(3, 1, 2, "continue", 5, "dawn", "Second.", {}, 0.0, ())]
    assert story_markdown(story, turns) == (
        "# Owls\n\n*Written with tiny, started 1970-01-01.*\n\nFirst.\n\n"
        "> Hoot.\n> Hoot again.\n\n*(dawn)*\n\nSecond.\n")
