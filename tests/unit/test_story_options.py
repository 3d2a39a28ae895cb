"""What a story's paragraph is written with, among the options the story keeps, and how its footer
says so (bot.story_options, bot.paragraph_facts)."""

from __future__ import annotations

from bot.paragraph_facts import FOOTER_STYLE_CHARS, ParagraphFacts, facts_text
from bot.storage import KeptChoice, Story
from bot.story_options import StoryOptions, story_options

OFFERED = ("smollm2", "lstm", "llamacpp")


def story(*choices: KeptChoice) -> Story:
    return Story(1, 1, 10, None, 7, "a harbour", "smollm2", None, 0.0, True, choices=choices)


STARTED = story(KeptChoice(1, {"model": "llamacpp", "style": "noir"}))


def test_a_new_story_keeps_its_own_model_strategy_and_style_but_not_its_length() -> None:
    options = story_options(None, {"model": "lstm", "strategy": "greedy", "max_new_tokens": 40, "style": None}, 1,
                            OFFERED)
    assert options == StoryOptions({"model": "lstm", "strategy": "greedy", "max_new_tokens": 40},
                                   {"model": "lstm", "strategy": "greedy"})


def test_a_continuation_takes_the_kept_options_and_says_from_which_paragraph() -> None:
    options = story_options(STARTED, None, 2, OFFERED)
    assert options == StoryOptions({"model": "llamacpp", "style": "noir"}, {}, {"model": 1, "style": 1})


def test_a_continuations_own_option_wins_and_is_kept_from_then_on() -> None:
    options = story_options(STARTED, {"model": "lstm", "strategy": None}, 3, OFFERED)
    assert options.overrides == {"model": "lstm", "style": "noir"}
    assert options.chosen == {"model": "lstm"} and options.kept == {"style": 1}


def test_giving_the_kept_value_again_is_no_new_choice() -> None:
    assert story_options(STARTED, {"model": "llamacpp"}, 2, OFFERED).chosen == {}


def test_written_again_a_paragraph_s_own_choice_is_not_called_kept() -> None:
    switched = story(*STARTED.choices, KeptChoice(2, {"model": "lstm"}))
    options = story_options(switched, None, 2, OFFERED)
    assert options.overrides == {"model": "lstm", "style": "noir"} and options.kept == {"style": 1}


def test_a_kept_model_no_longer_offered_gives_way_to_the_settings_here() -> None:
    options = story_options(STARTED, None, 2, ("smollm2", "lstm"))
    assert options.overrides == {"style": "noir"} and options.kept == {"style": 1}


def test_the_footer_says_what_the_story_kept_and_from_where() -> None:
    facts = ParagraphFacts("llamacpp", "greedy", seed=None, style="noir", kept={"model": 1, "strategy": 3, "style": 1})
    assert facts_text(facts) == ("llamacpp (kept from the story's start) · greedy (kept from paragraph 3) · "
                                 "style noir (kept from the story's start)")


def test_the_footer_shows_the_start_of_a_long_style() -> None:
    shown = facts_text(ParagraphFacts("smollm2", "sample", style="x" * 200))
    assert f"style {'x' * (FOOTER_STYLE_CHARS - 1)}…" in shown and len(shown) < 80


def test_a_kept_model_that_fell_back_is_not_called_kept() -> None:
    options = story_options(STARTED, None, 2, OFFERED)
    marked = options.marked(ParagraphFacts("smollm2", "sample"), model_asked="llamacpp")
    assert marked.kept == {"style": 1} and facts_text(marked).startswith("smollm2 · sample · style noir (kept")


def test_facts_stored_before_kept_options_read_as_before() -> None:
    old = ParagraphFacts.from_dict({"model": "smollm2", "strategy": "sample", "seed": 3})
    assert old is not None and facts_text(old) == "smollm2 · sample · seed 3"
