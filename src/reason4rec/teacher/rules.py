"""The offline ``rules`` teacher: the default, so the whole method runs with no network.

It is what it says: a rule-based stand-in that reads the same prompts an LLM
teacher reads and answers in the format the prompts ask for, so the pipeline
runs and can be tested end to end. It is not a language model; real runs use
an LLM teacher (``teacher.backend: openai``).

- Summarizer prompts: sentence-level sentiment (a small lexicon with negation)
  over a domain aspect vocabulary gives ``Positive Aspects`` / ``Negative
  Aspects`` / ``User Preference Elements``.
- Review-inferred prompts (the paper's Table 4 and 5 rows): the aspects the
  user's review of the item praises and criticises, and the verdict they give.
- Reasoner prompts: one short paragraph naming the aspects the user keeps
  coming back to in their own reviews that other reviewers praise or
  criticise in this item (the user's interests or the item's features alone
  only when nothing is shared), and a verdict on a four-step scale (love,
  like, mixed, dislike). A rating hint, when present, sets the verdict;
  without one the balance of praise and faults does. Each case has one
  wording; temperature > 0 varies only the order of the aspects named (seeded
  by prompt and sample index, so reproducible), so a pair's hinted resamples
  are near-identical. Nothing in a reason is a digit or a word that would
  reveal a rating.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reason4rec import prompts
from reason4rec.completions.client import CompletionRequest

# Aspect -> keywords (substring match on the lower-cased sentence).
ASPECT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "vocals": ("vocal", "voice", "singing", "singer", "sings"),
    "lyrics": ("lyric", "the words", "words are", "words really"),
    "melody": ("melod", "tune", "catchy"),
    "production": ("production", "produced", "the mix", "mix is"),
    "rhythm": ("rhythm", "groove", "beat", "drum"),
    "instrumentation": ("instrument", "guitar", "strings", "keyboard", "arrangement", "piano", "bass"),
    "originality": ("original", "unique", "fresh", "derivative", "everything else", "nothing new", "nothing else"),
    "emotional depth": ("moving", "emotion", "feeling", "hollow", "leaves me cold", "hit me"),
    "energy": ("energy", "exciting", "rocks", "sluggish", "lifeless"),
    "sound quality": ("sound quality", "recording", "tinny", "noisy", "speakers", "sounds great"),
    "value": ("value", "price", "money", "bargain", "overpriced", "expensive", "worth"),
    "build quality": ("well made", "sturdy", "durable", "flimsy", "broke", "quality"),
    "ease of use": ("easy to", "easy", "simple to", "difficult", "hard to", "setup"),
    "sound": ("sound", "tone"),
    "fit": ("fits", "fit ", "size"),
}

POSITIVE_WORDS = {
    "great", "love", "loved", "excellent", "superb", "stunning", "warm", "clear", "thoughtful", "clever", "catchy",
    "lovely", "polished", "beautiful", "beautifully", "crisp", "tight", "locked", "rich", "fresh", "unique", "moving",
    "exciting", "rocks", "clean", "bargain", "worth", "good", "nice", "perfect", "happy", "enjoyed", "enjoy", "best",
    "easy", "sturdy", "solid", "recommend", "works", "fine", "awesome", "amazing", "fantastic", "well", "full",
    "stays", "says", "feeling", "original", "durable",
}
NEGATIVE_WORDS = {
    "weak", "strained", "flat", "shallow", "clumsy", "lazy", "forgettable", "nowhere", "muddy", "overproduced", "mess",
    "drags", "stiff", "sloppy", "thin", "bland", "cheap", "derivative", "cold", "hollow", "sluggish", "dull",
    "lifeless", "poor", "noisy", "tinny", "overpriced", "expensive", "disappointed", "disappointing", "bad", "broke",
    "broken", "terrible", "awful", "worst", "problem", "returned", "difficult", "junk", "useless", "flimsy", "lacks",
    "lack", "hard",
}
NEGATORS = {"not", "no", "never", "nothing", "don't", "doesn't", "isn't", "wasn't", "didn't", "without"}

# Part of the backend's identity, so answers cached from earlier rules (and
# distillation journals built on them) are not reused once the rules answer differently.
RULES_REVISION = 5

SUMMARY_SIGNATURE = "Summarize the reasons behind the given rating"
REASON_SIGNATURE = "Analyze whether the user will like the new"


class RulesBackend:
    name = "rules"

    def __init__(self, model: str = "rules-v1"):
        self.model = model

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "revision": RULES_REVISION}

    def call(self, request: CompletionRequest) -> tuple[str, int, int]:
        if SUMMARY_SIGNATURE in request.prompt:
            text = summarize_review(_field(request.prompt, "Review"))
        elif prompts.REVIEW_HEADER in request.prompt:
            text = review_inferred_reason(prompts.split_sections(request.prompt).get(prompts.REVIEW_HEADER, ""))
        elif REASON_SIGNATURE in request.prompt:
            text = compose_reason(request.prompt, request.temperature, request.sample_index)
        else:
            raise ValueError("the rules teacher answers only the summarizer and reasoner prompts")
        return text, len(request.prompt.split()), len(text.split())


def _field(prompt: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*?)(?:\n\n|\Z)", prompt, re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else ""


def sentence_sentiment(sentence: str) -> int:
    words = re.findall(r"[a-z']+", sentence.lower())
    score = sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
    return -score if any(w in NEGATORS for w in words) else score


def aspects_in(sentence: str) -> list[str]:
    lowered = sentence.lower()
    return [aspect for aspect, keys in ASPECT_KEYWORDS.items() if any(k in lowered for k in keys)]


def summarize_review(review: str) -> str:
    """Aspect-sentiment extraction into the three-field summary format."""
    positive, negative, mentioned = [], [], []
    for sentence in re.split(r"(?<=[.!?])\s+", review):
        sentiment = sentence_sentiment(sentence)
        for aspect in aspects_in(sentence):
            mentioned.append(aspect)
            if sentiment > 0:
                positive.append(aspect)
            elif sentiment < 0:
                negative.append(aspect)

    def titled(items: list[str]) -> list[str]:
        return [a.title() for a in dict.fromkeys(items)]

    return prompts.format_summary(titled(positive), titled(negative), titled(mentioned))


# At most this many aspects are named in a reason: rationales stay short, and a
# user's ratings are seldom driven by more.
MAX_NAMED = 4
# An aspect counts as something the user cares about when at least this share of
# the user's reviews that name any aspect name it; rarer ones are incidental.
CARE_SHARE = 0.5


def compose_reason(prompt: str, temperature: float, sample_index: int) -> str:
    """A short rationale: the aspects this user cares about that the item is praised or faulted for, and a verdict.

    On data where ratings are caused by aspects (the synthetic world), the
    aspects that drive a rating are the ones the user cares about *and* the
    item is notable for, so those are the ones named; the user's other
    interests or the item's other features are named only when nothing is shared.
    """
    evidence = evidence_in(prompt)
    hint = re.search(r"rated the item ([0-9.]+) stars", prompt.rsplit("\n", 1)[-1])  # the hint is the prompt's last line
    verdict = _hinted_verdict(float(hint.group(1))) if hint else evidence.verdict()
    rng = random.Random(int(hashlib.sha256(f"{prompt}|{sample_index}".encode()).hexdigest()[:16], 16))
    style = _Style(rng if temperature > 0 else None)
    return " ".join([_finding(evidence, style), _closing(verdict, evidence)])


@dataclass
class Evidence:
    """What the histories say: the user's lasting interests and how others judge the item on them."""

    cares: list[str]  # most often named first
    praised: list[str]  # shared aspects: the user cares, other reviewers mostly praise
    faulted: list[str]  # shared aspects: the user cares, other reviewers mostly criticise
    item_known_for: list[str]  # the item's most discussed aspects, whoever cares

    @property
    def balance(self) -> int:
        return len(self.praised) - len(self.faulted)

    def verdict(self) -> str:
        """Without a hint, one step per unit of balance. Ratings lean favourable, so with nothing
        shared (or a tie) the user is expected to like the item; one more praised point than
        faults, to love it; one more fault, mixed; two or more, dislike. On the synthetic world
        the four steps have mean true ratings of about 4.7, 4.2, 3.7 and 3.4
        (bench/rules_teacher_signal.py)."""
        return "love" if self.balance > 0 else "like" if self.balance == 0 else "mixed" if self.balance == -1 else "dislike"


def evidence_in(reasoner_prompt: str) -> Evidence:
    """The evidence of a reasoner prompt's two history sections, in either prompt wording."""
    return read_evidence(*prompts.review_history_sections(reasoner_prompt))


def read_evidence(user: str, item: str) -> Evidence:
    """Shared aspects are the user's lasting interests on which other reviewers of the item come
    down on one side; a tie says nothing about the item."""
    cares = _lasting_interests(user)
    praise, criticism, mentions = (_field_counts(item, field) for field in prompts.SUMMARY_FIELDS)
    shared = [a for a in cares if praise[a] != criticism[a]][:MAX_NAMED]
    return Evidence(
        cares=cares,
        praised=[a for a in shared if praise[a] > criticism[a]],
        faulted=[a for a in shared if praise[a] < criticism[a]],
        item_known_for=[a for a, _ in (mentions + praise + criticism).most_common(2)],
    )


def _lasting_interests(user: str) -> list[str]:
    """Aspects named in at least ``CARE_SHARE`` of the user's reviews that name any: what the
    user keeps coming back to, not an aspect one review happened to mention."""
    # dict.fromkeys, not set: ties in most_common() keep the order the aspects were first named,
    # where a set's order (string hashes, random per process) would change the reason from run to run.
    reviews = [list(dict.fromkeys(_listed(line))) for line in _field_lines(user, prompts.SUMMARY_FIELDS[2])]
    reviews = [aspects for aspects in reviews if aspects]
    counts = Counter(a for aspects in reviews for a in aspects)
    return [a for a, n in counts.most_common() if n >= CARE_SHARE * len(reviews)]


def _field_counts(section: str, field: str) -> Counter:
    return Counter(a for line in _field_lines(section, field) for a in _listed(line))


def _field_lines(section: str, field: str) -> list[str]:
    return [line.split(":", 1)[1] for line in section.splitlines() if line.startswith(field + ":")]


def _listed(line: str) -> list[str]:
    """The aspects of one summary field, lower-cased; ``None`` and anything that would read as a
    rating (a digit, "stars") are left out, so no reason can leak one through an aspect's name."""
    aspects = (item.strip().lower() for item in line.split(","))
    return [a for a in aspects if a and a != prompts.NONE_MARK.lower() and not re.search(r"\d", a) and not prompts.reveals_rating(a)]


def _hinted_verdict(rating: float) -> str:
    return "love" if rating >= 4.5 else "like" if rating >= 3.5 else "mixed" if rating >= 2.5 else "dislike"


class _Style:
    """The order aspects are listed in: as found at temperature 0, seeded random above it."""

    def __init__(self, rng: random.Random | None):
        self.rng = rng

    def listing(self, items: list[str]) -> str:
        """Items joined in English; their order varies when sampling, which shifts the emphasis."""
        items = list(items)
        if self.rng:
            self.rng.shuffle(items)
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _finding(evidence: Evidence, style: _Style) -> str:
    """The sentence that names aspects: shared ones when there are, else a fallback; one wording per case."""
    praised, faulted = evidence.praised, evidence.faulted
    if praised and faulted:
        return f"Other reviewers praise its {style.listing(praised)} but criticise its {style.listing(faulted)}, all of which this user cares about."
    if praised:
        return f"Other reviewers praise its {style.listing(praised)}, which this user cares about."
    if faulted:
        return f"Other reviewers criticise its {style.listing(faulted)}, which this user cares about."
    if evidence.cares:
        return f"This user cares about {style.listing(evidence.cares[:2])}, which other reviewers have not judged here."
    if evidence.item_known_for:
        return f"This user's taste is unclear; other reviewers mostly discuss its {style.listing(evidence.item_known_for)}."
    return "The histories say little about this user's taste or about this item."


def review_inferred_reason(review: str) -> str:
    """A "Review-inferred Reason" (the paper's Table 4 and 5): the aspects the user's own review of
    the item praises and criticises, and the verdict their balance gives, in the reasons' wording."""
    summary = prompts.parse_summary(summarize_review(review)) or {}
    praised, faulted = ([a.strip().lower() for a in summary.get(k, "").split(",") if a.strip() and a.strip() != prompts.NONE_MARK] for k in ("positive", "negative"))
    evidence = Evidence(cares=[], praised=praised[:MAX_NAMED], faulted=faulted[:MAX_NAMED], item_known_for=[])
    style = _Style(None)
    if praised and faulted:
        finding = f"In the review the user praises its {style.listing(evidence.praised)} but criticises its {style.listing(evidence.faulted)}."
    elif praised or faulted:
        finding = f"In the review the user {'praises' if praised else 'criticises'} its {style.listing(evidence.praised or evidence.faulted)}."
    else:
        finding = "The review names no particular aspect of it."
    return " ".join([finding, _closing(evidence.verdict(), evidence)])


VERDICTS = {
    "love": "the user will very likely love it.",
    "like": "the user will probably enjoy it.",
    "mixed": "the user may have mixed feelings about it.",
    "dislike": "the user will probably be disappointed.",
}
SIDE = {"love": 1, "like": 1, "mixed": 0, "dislike": -1}


def verdict_of(reason: str) -> str:
    """The verdict a reason closes with, read from its words (one of ``VERDICTS``), or ``other``
    when it has none of their closing sentences: how a reasoner trained on these reasons is
    checked for giving the teacher's verdicts rather than one for everybody."""
    lowered = reason.lower()
    found = [verdict for verdict, sentence in VERDICTS.items() if sentence.rstrip(".") in lowered]
    return found[0] if len(found) == 1 else "other"


def _closing(verdict: str, evidence: Evidence) -> str:
    """The closing sentence; it concedes ("Still, ...") when it goes against the aspects just named."""
    against = SIDE[verdict] * evidence.balance < 0
    return _capitalise(("Still, " if against else "Overall, ") + VERDICTS[verdict])


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
