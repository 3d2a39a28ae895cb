"""Bad input, fuzzed: every option of /write, /continue and /settings.

Whatever a user (or a hostile client) sends, the bot never crashes: it answers with a short,
clear refusal that names what was wrong, or with a valid result; and nothing it stores breaks a
later read. The service runs with a real SQLite file and a real engine on the tiny GPT-2.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.console import Console
from bot.discord.pages import export_filename, story_markdown, thread_name
from bot.engine.requests import Event, GenerationRequest
from bot.limits import MAX_DIRECTION_CHARS, MAX_TOPIC_CHARS, THREAD_NAME_CHARS
from bot.messages import UserError
from bot.preferences import ALL_SETTINGS as SETTINGS
from bot.preferences import parse_setting
from bot.service import Generation, Place, Service
from models.base import Prompt
from models.params import STRATEGIES, GenerationParams, SettingError, check_value
from tests.conftest import GUILD

CHANNEL, THREAD, USER = 10, 20, 100
IN_CHANNEL = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD)
IN_THREAD = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD, thread_id=THREAD)
# A refusal is one or two lines: it must fit a reply with room to spare, whatever was typed.
CLEAR_MESSAGE_CHARS = 300

# Every example shares one service and database (that is the point: a later read sees what
# earlier examples stored), so the function-scoped fixture is deliberate.
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- what hostile text is made of ----------------------------------------------------------------
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
RIGHT_TO_LEFT = ["\u202e", "\u202b", "\u200f", "\u061c", "\u2067", "שלום", "مرحبا"]
CONTROL = ["\x00", "\x07", "\x08", "\x1b", "\x7f", "\x85", "\x9b", "\r", "\t", "\n", "\u2028", "\ud83d"]
MARKDOWN = ["```", "```python\nprint('hi')\n```", "**bold**", "||spoiler||", "> quote", "# Heading",
            "~~gone~~", "[link](https://example.com)", "`tick`", "_under_", "\\"]
MENTIONS = ["@everyone", "@here", "<@123456789012345678>", "<@!1>", "<@&2>", "<#3>", "</write:4>"]
OTHER = ["e\u0301", "🐉", "👩\u200d👩\u200d👧", "漢字", "Zoë", "\u3000", "\u00a0", " ", "a lighthouse keeper",
         "'; DROP TABLE turns; --", "%s %d {0}", "nan", "inf", "-1", "1e309"]
PIECES = ZERO_WIDTH + RIGHT_TO_LEFT + CONTROL + MARKDOWN + MENTIONS + OTHER


def hostile_text(max_pieces: int = 25) -> st.SearchStrategy[str]:
    """Text stitched from the pieces above and arbitrary unicode."""
    piece = st.one_of(st.sampled_from(PIECES), st.text(max_size=12),
                      st.characters(codec=None, exclude_categories=()).map(str))
    return st.lists(piece, max_size=max_pieces).map("".join)


def long_text(low: int, high: int = 6000) -> st.SearchStrategy[str]:
    """One piece repeated to `low`..`high` characters (Discord allows 6,000 in an option)."""
    return st.tuples(st.sampled_from([*PIECES, "word "]), st.integers(low, high)).map(
        lambda pair: (pair[0] * pair[1])[: pair[1]])


TEXT = st.one_of(st.text(), hostile_text(), long_text(250))
NUMBERS = st.one_of(st.integers(), st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 2**64, -0.0]))
NUMBER_TEXT = st.one_of(NUMBERS.map(str), st.sampled_from(
    ["", " ", "nan", "NaN", "inf", "-Infinity", "1e309", "1e-400", "0x10", "1_000", "١٢", "１２", "12abc", "4.5",
     "on", "off", "unset", "none", "random", "True", "--1", "1,5", "½"]))


# -- the service under test: the `service` fixture (tests/conftest.py) ----------------------------
async def finish(generation: Generation) -> Event:
    """Stream a generation to its end, as the fronts do (the turn is stored before "done")."""
    events = [e async for e in generation.events()]
    return events[-1]


def assert_clear(error: Exception, *names: str) -> None:
    """A refusal a user can act on: short, printable, and naming one of `names`."""
    message = str(error)
    assert message.strip() and len(message) <= CLEAR_MESSAGE_CHARS, message
    assert message.isprintable(), f"the message repeats raw invisible characters: {message!r}"
    assert any(name in message for name in names), f"{message!r} names none of {names}"


def assert_clean(text: str, limit: int) -> None:
    """What the service keeps of free text: visible characters, single spaces, within the limit."""
    assert 0 < len(text) <= limit and text.isprintable(), repr(text)
    assert text == " ".join(text.split()), repr(text)


async def assert_everything_reads_back(service: Service, place: Place) -> None:
    """The reads a later command makes: settings, the story, its turns, and what Discord shows."""
    assert (await service.settings_for(place)).validate()
    for scope, scope_id in (("guild", GUILD), ("channel", CHANNEL), ("thread", THREAD)):
        for name, value in (await service.storage.get_settings(scope, scope_id)).items():
            checked = check_value(SETTINGS[name], value)
            checked = list(checked) if isinstance(checked, tuple) else checked  # JSON keeps lists
            assert checked == value, (scope, name, value)
    story = await service.storage.latest_story(place.conversation_id)
    if story is None:
        return
    turns = await service.storage.turns(story.id)
    for turn in turns:
        assert GenerationParams(**turn.settings).validate()  # strictly: not just skipped on read
    assert 0 < len(thread_name(story.topic)) <= THREAD_NAME_CHARS
    assert story_markdown(story, turns).startswith(f"# {story.topic}\n")
    assert export_filename(story).endswith(".md")


# -- /write topic [model] [strategy] [length] ------------------------------------------------------
# Absent and valid values are drawn more often than hostile ones, so that a good share of the
# examples gets past validation and writes (and stores) a paragraph.
MODELS = st.one_of(st.none(), st.none(), st.sampled_from(
    ["smollm2", "lstm", "markov", "markov-0", "markov--3", "gpt2", "", " ", "../../etc/passwd", "@everyone",
     "m" * 200, "m" * 201]), TEXT)
STRATEGY_OPTIONS = st.one_of(st.none(), st.none(), st.sampled_from(STRATEGIES), st.sampled_from(STRATEGIES),
                             TEXT)
LENGTHS = st.one_of(st.none(), st.none(), st.integers(8, 24), st.integers(8, 24),
                    st.sampled_from([512, 513, 7, 0, -1, 2**63]), NUMBERS, st.booleans(), st.text(max_size=5))


async def write_or_refuse(service: Service, topic: str, overrides: dict[str, Any]) -> None:
    """/write: a paragraph that is stored and reads back, or a clear refusal that stored nothing."""
    before = await service.storage.counts()
    try:
        generation = await service.write(IN_CHANNEL, topic, overrides)
    except (UserError, SettingError) as error:
        event("refused")
        assert_clear(error, "topic", "model", "strategy", "max_new_tokens")
        assert await service.storage.counts() == before, "a refused /write stored something"
        return
    event("written")
    final = await finish(generation)
    assert final.kind == "done", final
    assert_clean(generation.topic, MAX_TOPIC_CHARS)
    if final.text.strip():
        story = await service.storage.latest_story(CHANNEL)
        assert story is not None and story.topic == generation.topic
        assert [t.text for t in await service.storage.turns(story.id)] == [final.text]
    await assert_everything_reads_back(service, IN_CHANNEL)


@FUZZ
@given(topic=TEXT)
@example(topic=("@everyone ```" * 500)[:6000])
@example(topic="\u200b\u202e\x00 ")
@example(topic="a\u3000lighthouse\u00a0keeper")
async def test_write_answers_any_topic_with_a_paragraph_or_a_clear_refusal(service: Service, topic: str) -> None:
    await write_or_refuse(service, topic, {})


async def test_every_kind_of_space_still_separates_words_of_a_topic(service: Service) -> None:
    generation = await service.write(IN_CHANNEL, "a\u3000lighthouse\u00a0keeper\u2028at\u200b\tdusk")
    assert (await finish(generation)).kind == "done"
    assert generation.topic == "a lighthouse keeper at dusk"


@settings(FUZZ, max_examples=100)
@given(topic=st.one_of(st.sampled_from(["owls", "a lighthouse keeper"]), TEXT), model=MODELS,
       strategy=STRATEGY_OPTIONS, length=LENGTHS)
@example(topic="owls", model="\ud83d", strategy=None, length=None)  # a lone surrogate
@example(topic="owls", model="gpt2\u202e", strategy="\u200bbeam", length=None)
@example(topic="owls", model=None, strategy=None, length="12")  # a hostile client's "integer"
@example(topic="owls", model=None, strategy=None, length=math.nan)
@example(topic="owls", model=None, strategy=None, length=-math.inf)
@example(topic="owls", model=None, strategy=None, length=True)
@example(topic="owls", model=None, strategy=None, length=8.0)  # a whole number, as a float
@example(topic="owls", model=None, strategy=None, length=1e260)
@example(topic="owls", model=None, strategy=None, length=10**400)
@example(topic="🐉" * MAX_TOPIC_CHARS, model=None, strategy="beam", length=512)
async def test_write_answers_any_options_with_a_paragraph_or_a_clear_refusal(
        service: Service, topic: str, model: Any, strategy: Any, length: Any) -> None:
    await write_or_refuse(service, topic, {"model": model, "strategy": strategy, "max_new_tokens": length})


# -- /continue [direction] --------------------------------------------------------------------------
@FUZZ
@given(direction=st.one_of(st.none(), TEXT))
@example(direction="漢字" * 100)  # fits the limit, but not the tiny model's window as a header
@example(direction="\u200b\u2060" * 10)
@example(direction="x" * (MAX_DIRECTION_CHARS + 1))
async def test_continue_answers_any_direction_with_a_paragraph_or_a_clear_refusal(
        service: Service, direction: str | None) -> None:
    if await service.storage.latest_story(CHANNEL) is None:
        assert (await finish(await service.write(IN_CHANNEL, "a lighthouse keeper"))).kind == "done"
    before = await service.storage.counts()
    try:
        generation = await service.continue_story(IN_CHANNEL, direction)
    except UserError as error:
        event("refused")
        assert_clear(error, "direction")
        assert await service.storage.counts() == before
        return
    event("written")
    final = await finish(generation)
    assert final.kind == "done", final
    if generation.direction is not None:
        assert_clean(generation.direction, MAX_DIRECTION_CHARS)
    if final.text.strip():
        assert generation.story is not None
        last = (await service.storage.turns(generation.story.id))[-1]
        assert (last.kind, last.text, last.direction) == ("continue", final.text, generation.direction)
    await assert_everything_reads_back(service, IN_CHANNEL)


# -- /settings set name value [scope] and /settings reset [scope] ---------------------------------
def spelled(name: str) -> st.SearchStrategy[str]:
    """A real setting name as people type it: any case, dashes, padding."""
    return st.sampled_from([name, name.upper(), name.replace("_", "-"), f"  {name} ", name.title()])


def good_value(name: str) -> st.SearchStrategy[str]:
    """A value the setting accepts, as a user would type it."""
    spec = SETTINGS[name]
    if spec.choices:  # in any case, with dashes or spaces for underscores, padded
        return st.sampled_from(spec.choices).flatmap(lambda c: st.sampled_from(
            [c, f" {c} ", c.title(), c.upper().replace("_", "-"), c.replace("_", " ")]))
    if spec.kind is bool:
        return st.sampled_from(["on", "off", "yes", "no", "1", "0"]).flatmap(
            lambda c: st.sampled_from([c, c.upper(), f" {c} "]))
    if spec.kind is str:
        return st.text(st.characters(categories=["L", "N", "P", "S"], include_characters=" "),
                       max_size=int(spec.maximum or 0))
    low, high = spec.minimum or 0, spec.maximum or 0
    numbers = st.integers(int(low), int(high)) if spec.kind is int else st.floats(low, high)
    return st.one_of(numbers.map(str), st.just("unset")) if spec.optional else numbers.map(str)


NAMES = st.one_of(st.sampled_from(list(SETTINGS)).flatmap(spelled), TEXT)
VALUES = st.one_of(NUMBER_TEXT, st.sampled_from([*STRATEGIES, "sample ", "GREEDY", "yes", "0", "1"]), TEXT)
GOOD_PAIRS = st.sampled_from(list(SETTINGS)).flatmap(lambda n: st.tuples(spelled(n), good_value(n)))
# Half the pairs are a real setting with a value it takes, so that many changes go through.
PAIRS = st.one_of(GOOD_PAIRS, st.tuples(NAMES, VALUES))
SCOPES = st.one_of(st.sampled_from(["server", "channel", "thread"]), st.sampled_from(["channel", "server"]),
                   st.sampled_from(["Channel", "guild", ""]), TEXT)


@FUZZ
@given(action=st.sampled_from(["set", "set", "set", "reset"]), pair=PAIRS, scope=SCOPES,
       place=st.sampled_from([IN_CHANNEL, IN_THREAD]))
@example(action="set", pair=("model", "\ud83d"), scope="channel", place=IN_CHANNEL)
@example(action="set", pair=("stop", "\u202eend"), scope="thread", place=IN_THREAD)
@example(action="set", pair=("Temperature", "nan"), scope="server", place=IN_CHANNEL)
@example(action="set", pair=("top-k", "1e309"), scope="channel", place=IN_CHANNEL)
@example(action="set", pair=("seed", "unset"), scope="thread", place=IN_CHANNEL)
@example(action="set", pair=("top_k", "5"), scope="everywhere " * 600, place=IN_CHANNEL)
@example(action="reset", pair=("", ""), scope="thread", place=IN_CHANNEL)
@example(action="set", pair=("story_channel", "on"), scope="server", place=IN_CHANNEL)  # no Message Content
async def test_settings_answer_any_name_value_and_scope_with_a_change_or_a_clear_refusal(
        service: Service, action: str, pair: tuple[str, str], scope: str, place: Place) -> None:
    name, value = pair
    rows = {scope_name: await service.storage.get_settings(scope_name, scope_id)  # type: ignore[arg-type]
            for scope_name, scope_id in (("guild", GUILD), ("channel", CHANNEL), ("thread", THREAD))}
    try:
        if action == "set":
            answer = await service.set_setting(place, name, value, scope)
        else:
            answer = await service.reset_settings(place, scope)
    except (UserError, SettingError) as error:
        event("refused")
        assert_clear(error, "scope", "server", "thread", "setting", *SETTINGS)
        for scope_name, scope_id in (("guild", GUILD), ("channel", CHANNEL), ("thread", THREAD)):
            assert await service.storage.get_settings(scope_name, scope_id) == rows[scope_name]  # type: ignore[arg-type]
        return
    event(f"{action} done")
    assert len(answer) <= CLEAR_MESSAGE_CHARS and scope in answer
    if action == "set":
        key, parsed = parse_setting(name, value)
        db_scope, scope_id = {"server": ("guild", GUILD), "channel": ("channel", CHANNEL),
                              "thread": ("thread", THREAD)}[scope]
        stored = await service.storage.get_settings(db_scope, scope_id)  # type: ignore[arg-type]
        as_stored = list(parsed) if isinstance(parsed, tuple) else parsed  # JSON keeps phrases as a list
        assert stored.get(key) == as_stored and answer.startswith(f"{key} is now ")
    await assert_everything_reads_back(service, place)


# -- the settings parser and stored rows on their own ----------------------------------------------
@settings(max_examples=300, deadline=None)
@given(pair=PAIRS)
def test_parse_setting_gives_a_checked_value_or_a_clear_error(pair: tuple[str, str]) -> None:
    name, text = pair
    try:
        key, value = parse_setting(name, text)
    except SettingError as error:
        assert_clear(error, "setting", *SETTINGS)
        return
    assert check_value(SETTINGS[key], value) == value
    if isinstance(value, float):
        assert math.isfinite(value)


@settings(max_examples=200, deadline=None)
@given(pair=GOOD_PAIRS)
def test_every_value_inside_a_settings_range_is_accepted(pair: tuple[str, str]) -> None:
    key, value = parse_setting(*pair)
    assert key == pair[0].strip().lower().replace("-", "_")
    assert check_value(SETTINGS[key], value) == value


JSON = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(), inner, max_size=3), max_leaves=5)


@settings(max_examples=200, deadline=None)
@given(row=st.dictionaries(st.one_of(st.sampled_from(list(SETTINGS)), st.text()), JSON))
def test_any_stored_settings_row_reads_back_as_valid_settings(row: dict[str, Any]) -> None:
    params = GenerationParams.from_dict(row)
    assert params.validate() is params


# -- the offline console: the same commands, typed ---------------------------------------------------
COMMANDS = st.sampled_from(["/write ", "/write topic: ", "/continue ", "/continue direction: ", "/settings ",
                            "/settings set ", "/settings set stop ", "/settings reset ", "/regenerate ", "/"])
OPTION_WORDS = st.sampled_from([" topic: ", " model: ", " length: ", " strategy: ", " direction: ", " https://",
                                " Chapter 1: ", ' "', " '", " \\", " temperature: "])
LINES = st.tuples(COMMANDS, st.lists(st.one_of(OPTION_WORDS, hostile_text(8), NUMBER_TEXT), max_size=6)).map(
    lambda parts: parts[0] + "".join(parts[1]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=LINES)
@example(line='/settings set stop "The End')
@example(line="/settings set stop The End\\")
@example(line="/write topic: Chapter 1: the storm at https://example.com length: 8")
async def test_the_console_answers_any_line_without_dying(service: Service, line: str) -> None:
    out = io.StringIO()
    console = Console(service, out=out, place=IN_CHANNEL)
    assert await console.handle(line.strip()) is True  # True: the console goes on
    assert out.getvalue().strip()
    await assert_everything_reads_back(service, IN_CHANNEL)


async def test_a_topic_with_colons_and_a_url_is_text_not_options(service: Service) -> None:
    out = io.StringIO()
    line = "/write topic: Chapter 1: the storm at https://example.com model: nowhere length: 8"
    await Console(service, out=out, place=IN_CHANNEL).handle(line)
    # "model:" was read as the option it is: a model the owner does not offer is refused by name.
    assert "model must be one of" in out.getvalue() and "got 'nowhere'" in out.getvalue()
    await Console(service, out=out, place=IN_CHANNEL).handle(line.replace(" model: nowhere", ""))
    story = await service.storage.latest_story(CHANNEL)
    assert story is not None and story.topic == "Chapter 1: the storm at https://example.com"


async def test_an_unclosed_quote_in_the_console_gets_a_clear_answer(service: Service) -> None:
    out = io.StringIO()
    assert await Console(service, out=out, place=IN_CHANNEL).handle('/settings set stop "The End') is True
    assert out.getvalue() == ("Sorry: I can't read that line (no closing quotation): "
                              'put a value with spaces in "double quotes"\n')


# -- the model's context window --------------------------------------------------------------------
async def test_a_prompt_longer_than_the_model_window_still_gets_a_paragraph(service: Service) -> None:
    topic = "🐉" * MAX_TOPIC_CHARS  # four bytes each: far more tokens than the tiny model's 512
    final = await finish(await service.write(IN_CHANNEL, topic, {"max_new_tokens": 512}))
    assert final.kind == "done" and final.text.strip(), final


async def test_one_users_long_prompt_never_breaks_anothers_paragraph(
        service: Service, tiny_gpt2_dir: Path) -> None:
    # Positions past the window fail the decode step of the whole batch, not just one row.
    steady = GenerationParams(model=str(tiny_gpt2_dir), max_new_tokens=480, min_new_tokens=0,
                              stop_at_paragraph=False, ignore_eos=True)
    engine = service.engine
    others = engine.submit(GenerationRequest(Prompt("a quiet harbour"), steady, fairness_key="a", user_id=1))
    long_prompt = Prompt("漢字" * 40)  # about 240 tokens: with 400 more, past the 512-token window
    hostile = engine.submit(GenerationRequest(long_prompt, steady.replace(max_new_tokens=400),
                                              fairness_key="b", user_id=2))
    results = [await others.result(), await hostile.result()]
    assert [r.kind for r in results] == ["done", "done"], results
