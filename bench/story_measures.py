"""What a reader of a long story sees, measured paragraph by paragraph (bench.story's figures).

Each measure is a pure function of a story's text (and, for the MiniLM ones, of an embedder:
any callable from texts to normalised vectors, so tests can pass a tiny fake one):

- `meta_talk`: the phrases where a paragraph talks about the story, the writing or the reader
  instead of telling the story ("The tale goes on", "In the following paragraphs", "#adventure");
- `retold`: continuations whose MiniLM cosine to an earlier paragraph reaches RETELL_COSINE;
- `reused_phrases`: the share of a continuation's 3-word phrases that the story already had;
- `followed`: whether a paragraph is closer to its own direction than to the story's others;
- `keeps_name`: whether a paragraph uses a word of a name the opening introduced;
- `invented_words`: lower-case words that English does not have (wordfreq knows none of them);
- `unfinished_lines`: lines that stop mid-sentence (a next paragraph begun and cut off);
- `looping_paragraphs` and `distinct_4`: verbatim repetition.

`mark_story` puts them together: one `Marks` per paragraph, which bench.story sums and prints.

The meta-talk detector is the bench's own, on purpose broader than the phrases the engine bans
while writing (bot/engine/banned_phrases.py): a model that only rephrases its meta-talk must
still be caught here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from wordfreq import zipf_frequency

Embed = Callable[[list[str]], torch.Tensor]  # texts -> (N, D) unit vectors
LOOP_NGRAM = 8  # words in the sequences that make a paragraph a loop
LOOP_SHARE = 0.2  # a paragraph with more than this share of its 8-word sequences seen before loops
RETELL_COSINE = 0.85  # MiniLM cosine at which a paragraph says again what an earlier one said
REUSE_NGRAM = 3  # words in the phrases reused_phrases counts
MIN_INVENTED_LETTERS = 3  # "ok", "um" and initials are not words a reader would call invented

# The text as a thing: nouns a story uses for itself when it talks about itself.
# Not "passage" (a secret passage) nor plural stories ("our stories are what make us").
_TEXT = (r"(?:story|tale|narrative|saga|chronicle|paragraphs?|chapters?|excerpt|retelling|continuation|sequel|"
         r"installment|instalment)")
_ADJACENT = r"(?:next|following|previous|preceding|earlier|above|below|subsequent|original)"
_NOT_A_LIFE = r"(?!\s+(?:of|in)\s+(?:her|his|their|my|our|your|its|the)\s+(?:life|lives|history|journey))"
# Each pattern names one way of talking about the text; all ignore case.
_PHRASE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("this/our + text", rf"\b(?:this|these|our|today's)\s+{_TEXT}\b{_NOT_A_LIFE}"),
    ("in the + text", rf"\b(?:in|throughout)\s+the\s+{_TEXT}\b"),
    # "In this scene, the story of a baker ... is interrupted": not "in this part of the forest".
    ("in the + text", r"\bin\s+(?:this|the\s+next|the\s+following|the\s+previous|the\s+last)\s+(?:scene|segment|"
                      r"installment|episode|section|part)\b(?!\s+of\b)"),
    ("next/previous + text", rf"\b{_ADJACENT}\s+(?:few\s+|two\s+|three\s+)?(?:{_TEXT}|parts?|sections?|lines)\b{_NOT_A_LIFE}"),
    ("text as subject", r"\bthe\s+(?:story|tale|narrative|saga|plot)\s+(?:continues|goes\s+on|unfolds|begins|"
                        r"ends|began|ended|follows|resumes|picks\s+up|moves\s+on|takes\s+(?:a|us|place)|is\s+(?:about|set|told|"
                        r"not)|revolves|cent(?:er|re)s|explores|shifts|so\s+far|thus\s+far)\b"),
    # "The story of a bakery who opens a haunted market stall is a tale of desperation": the topic
    # summed up ("a bakery ...": topics name their subject so; "The story of the old king" may be narration).
    ("text as subject", r"(?:^|[.!?]\s+)(?:the|this|our)\s+(?:story|tale|narrative)\s+of\s+(?:a|an)\b|\bis\s+a\s+(?:story|tale)\s+"
                        r"(?:of|about)\b|\bthe\s+scene\s+(?:unfolds|shifts|opens|changes|cuts|is\s+set)\b"),
    ("text as subject", r"\b(?:a|the)\s+(?:short\s+|new\s+|little\s+)?(?:story|tale)\s+(?:about|of\s+how|that\s+"
                        r"(?:explores|tells|follows))\b"),
    ("text words", r"\b(?:retelling|continuation|sequel|prequel|storyline|plotline|plot\s+twist|protagonists?|"
                   r"main\s+characters?|the\s+narrator|moral\s+of\s+the\s+story|"
                   r"end\s+of\s+(?:the|this|our)\s+(?:story|tale|chapter)|to\s+be\s+continued|stay\s+tuned)\b"),
    ("the writer", r"\bI(?:\s+am|'m)\s+(?:so\s+)?(?:pleased|happy|excited|delighted|glad|thrilled|honou?red|proud)"
                   r"\s+to\s+(?:share|present|continue|tell|write|bring|introduce|offer|announce)\b"),
    ("the writer", rf"\bI(?:\s+will|'ll|\s+shall|\s+am\s+going\s+to|\s+would\s+like\s+to|\s+want\s+to)(?:\s+now)?"
                   rf"\s+(?:continue|tell|share|write|narrate|recount|present|describe|explore|introduce)"
                   rf"(?:\s+[\w']+){{0,4}}?\s+(?:{_TEXT}|themes?|ideas?|concepts?|characters|events)\b"),
    ("the writer", r"\blet\s+me\s+(?:tell\s+you|share|continue|explain|describe|introduce|take\s+you|walk\s+you|"
                   r"paint|know|begin|start)\b"),
    ("the writer", r"\blet's\s+(?:continue|explore|dive|delve|begin|get\s+started|take\s+a\s+look|find\s+out|see\s+how)\b"),
    ("the writer", r"\bhere(?:'s|\s+is|\s+are)\s+(?:the|a|my|your|an|another)\s+(?:next\s+|new\s+|short\s+|"
                   rf"revised\s+)?(?:{_TEXT}|version|rewrite|draft|part|paragraphs?)\b"),
    # A chat reply's opening ("Sure, here is..."), not a narrator's "Of course, I knew".
    ("the writer", r"\b(?:sure|certainly|of\s+course|absolutely)[,!.]\s+here\b"),
    ("the writer", r"\b(?:as\s+an\s+ai|language\s+model|i\s+hope\s+you\s+(?:enjoy|enjoyed|like|liked)|i\s+hope\s+this"
                   r"\s+(?:story|helps|continuation)|feel\s+free\s+to|thank\s+you\s+for\s+reading)\b"),
    ("the reader", r"\b(?:dear|the|our|my|you,\s+the)\s+readers?\b|\breaders\s+(?:will|can|may|are)\b"),
    # Not "as we follow the river": first-person narrators walk, follow and explore.
    ("the reader", r"\bas\s+we\s+(?:delve|have\s+seen|will\s+see|read\s+on|learn\s+more)\b|\b(?:we|you)(?:\s+will|'ll"
                   r"|\s+shall)\s+(?:delve|learn\s+about|read\s+about|discover\s+how|see\s+how|find\s+out\s+how)\b"),
    ("summing up", r"\b(?:in\s+conclusion|in\s+summary|to\s+sum\s+up|to\s+summari[sz]e|to\s+conclude|all\s+in\s+all,)"),
)
# Layout no paragraph of prose has: labels, headings, lists, hashtags, markdown.
_FORMAT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("label", r"^\s*(?:title|chapter\s*\w*|part\s+\w+|prompt|summary|continuation|paragraph\s*\d*|note|moral|"
              r"setting|characters?|genre|theme|story|tale|the\s+end)\s*[:\u2013\u2014]"),
    ("heading", r"^\s*(?:#{1,6}\s|\*\*[^*\n]+\*\*\s*$|chapter\s+(?:\d+|[ivxlc]+|one|two|three|four|five|six|seven|eight|nine|ten)\b)"),
    ("numbered list", r"^\s*\d{1,2}[.)]\s"),
    ("bullet list", r"^\s*[-*\u2022]\s"),
    ("hashtag", r"(?<![\w&#/])#[A-Za-z]\w*"),
    ("the end", r"(?:^|[.!?]\s+)the\s+end[.!]*\s*$"),  # not "they fought until the end."
)
_PHRASES = [(label, re.compile(pattern, re.IGNORECASE)) for label, pattern in _PHRASE_PATTERNS]
_FORMATS = [(label, re.compile(pattern, re.IGNORECASE | re.MULTILINE)) for label, pattern in _FORMAT_PATTERNS]
# A character's speech may say anything ("Let me in!", "This story is true," he said): narration.
_EDGES = " \t\n.!?"  # trimmed from a match as shown
_QUOTED = re.compile(r"\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d")
# "she told the story of her father": a story inside the story, told by someone in it.
_TELLING = re.compile(r"\b(?:told|tell|tells|telling|heard|hear|hears|read|reads|reading|knew|know|knows|remembered|"
                      r"remember|recalled|recounted|wrote|writes|write|writing|finished|loved|love|loves|liked|"
                      r"shared|share|shares|favou?rite|bedtime|ghost|fairy|old)\s+(?:(?:a|an|the|that|this|every|"
                      r"another|same|whole|old|them|him|her|us|me|you|\w+'s)\s+)*$", re.IGNORECASE)


def meta_talk(paragraph: str) -> list[str]:
    """The phrases where `paragraph` talks about the story instead of telling it, each as
    `label: matched text`; empty for plain narration."""
    found = [f"{label}: {m.group().strip(_EDGES)}" for label, pattern in _FORMATS for m in pattern.finditer(paragraph)]
    narration = _QUOTED.sub(lambda m: " " * len(m.group()), paragraph)
    for label, pattern in _PHRASES:
        for match in pattern.finditer(narration):
            if _TELLING.search(narration[max(0, match.start() - 40):match.start()]) and label != "the writer":
                continue
            found.append(f"{label}: {match.group().strip(_EDGES)}")
    return found


_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]*_]*$")


def unfinished_lines(paragraph: str) -> list[str]:
    """The lines of `paragraph` that stop mid-sentence: a next paragraph begun and cut ("Alex"),
    text cut off at the length limit, a code or label line. Empty for finished prose."""
    return [line.strip() for line in paragraph.splitlines() if line.strip() and not _SENTENCE_END.search(line.strip())]


def talks_about_story(paragraph: str) -> bool:
    """Does a reader find the paragraph talking about the story rather than telling it?"""
    return bool(meta_talk(paragraph))


_WORDS = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def words_in(text: str) -> list[str]:
    """The words of `text` as written (hyphenated compounds split, apostrophes kept)."""
    return _WORDS.findall(text.replace("\u2019", "'"))


def invented_words(text: str) -> list[str]:
    """Lower-case words of `text` that wordfreq has never seen in English, in order, with
    repeats. Capitalised words may be names and are not judged; "'s" is not part of a word."""
    invented = []
    for word in words_in(text):
        stem = word.removesuffix("'s")
        if len(stem) >= MIN_INVENTED_LETTERS and stem.islower() and zipf_frequency(stem, "en") == 0:
            invented.append(stem)
    return invented


def name_words(names: Sequence[str]) -> set[str]:
    """The words of a cast's names ("Elena Rosa" -> Elena, Rosa)."""
    return {word for name in names for word in name.split() if len(word) > 1}


def keeps_name(words: set[str], paragraph: str) -> bool:
    """Does `paragraph` use one of these name words exactly (case-sensitive, a whole word:
    "Kagemrosu's" keeps Kagemrosu, "Kagemrosokai" does not)?"""
    return any(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", paragraph) for word in words)


def retold(paragraphs: list[str], embed: Embed) -> list[float]:
    """For each continuation (paragraphs[1:]): its highest MiniLM cosine to any earlier
    paragraph of the story; at RETELL_COSINE or more it retells one."""
    vectors = embed([p or "." for p in paragraphs])
    similarity = vectors @ vectors.T  # (P, P)
    return [float(similarity[k, :k].max()) for k in range(1, len(paragraphs))]


def followed(paragraphs: list[str], directions: list[str | None], embed: Embed,
             rivals: Sequence[str] = ()) -> list[bool]:
    """For each paragraph that had a direction: is its own direction the closest (MiniLM cosine)
    of all the directions this story used, and of `rivals` too?"""
    used = list(dict.fromkeys(d for d in directions if d))
    if not used:
        return []
    candidates = used + [r for r in dict.fromkeys(rivals) if r not in used]
    pairs = [(p, d) for p, d in zip(paragraphs, directions, strict=True) if d]
    similarity = embed([p or "." for p, _ in pairs]) @ embed(candidates).T  # (directed paragraphs, candidates)
    return [int(similarity[i].argmax()) == candidates.index(d) for i, (_, d) in enumerate(pairs)]


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def looping_paragraphs(paragraphs: list[str]) -> list[bool]:
    """For each paragraph: do more than LOOP_SHARE of its 8-word sequences occur earlier in the story?"""
    seen: set[tuple[str, ...]] = set()
    loops = []
    for paragraph in paragraphs:
        own = grams(words_of(paragraph), LOOP_NGRAM)
        repeated = 0
        for gram in own:
            repeated += gram in seen
            seen.add(gram)
        loops.append(bool(own) and repeated / len(own) > LOOP_SHARE)
    return loops


def reused_phrases(paragraphs: list[str], n: int = REUSE_NGRAM) -> list[float]:
    """For each continuation (paragraphs[1:]): the share of its n-word sequences that an earlier
    paragraph already has. A retelling in other words keeps its phrases ("a brilliant and
    resourceful lighthouse keeper") where MiniLM, put off by a change of person, may not see it."""
    seen: set[tuple[str, ...]] = set(grams(words_of(paragraphs[0]), n)) if paragraphs else set()
    shares = []
    for paragraph in paragraphs[1:]:
        own = grams(words_of(paragraph), n)
        shares.append(sum(g in seen for g in own) / len(own) if own else 0.0)
        seen.update(own)
    return shares


def distinct_4(paragraphs: list[str]) -> float:
    """Unique 4-word sequences over all 4-word sequences of a whole story."""
    story = grams(words_of(" ".join(paragraphs)), 4)
    return len(set(story)) / len(story) if story else 0.0


@dataclass
class Marks:
    """What a reader finds in one paragraph of a story (None: the measure does not apply)."""

    meta: list[str] = field(default_factory=list)  # meta_talk's phrases
    closest_earlier: float | None = None  # highest cosine to an earlier paragraph (not for the opening)
    reused: float | None = None  # share of its 3-word phrases an earlier paragraph has (not for the opening)
    followed: bool | None = None  # for a paragraph that had a direction
    # ...and closest of every direction the bench has: with two directions a story, a paragraph
    # that follows neither still "follows" one half the time; against all of them it rarely does.
    followed_of_all: bool | None = None
    kept_name: bool | None = None  # for a continuation of an opening that has a name
    invented: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # unfinished_lines
    words: int = 0  # words as invented_words counts them
    loops: bool = False

    @property
    def retells(self) -> bool:
        return self.closest_earlier is not None and self.closest_earlier >= RETELL_COSINE


def mark_story(paragraphs: list[str], directions: list[str | None], opening_names: Sequence[str],
               embed: Embed, all_directions: Sequence[str] = ()) -> list[Marks]:
    """The marks of every paragraph of one story, the opening first; `all_directions` are the
    ones a paragraph's own direction must also beat for `followed_of_all`."""
    marks = [Marks(meta_talk(p), invented=invented_words(p), unfinished=unfinished_lines(p), words=len(words_in(p)),
                   loops=loop)
             for p, loop in zip(paragraphs, looping_paragraphs(paragraphs), strict=True)]
    for mark, closest, reused in zip(marks[1:], retold(paragraphs, embed), reused_phrases(paragraphs), strict=True):
        mark.closest_earlier, mark.reused = closest, reused
    directed = iter(zip(followed(paragraphs, directions, embed),
                        followed(paragraphs, directions, embed, all_directions), strict=True))
    for mark, direction in zip(marks, directions, strict=True):
        if direction:
            mark.followed, mark.followed_of_all = next(directed)
    words = name_words(opening_names)
    for mark, paragraph in zip(marks[1:], paragraphs[1:], strict=True):
        mark.kept_name = keeps_name(words, paragraph) if words else None
    return marks
