"""The offline ``rules`` teacher: the default, so the whole method runs with no network.

It is what it says: a rule-based stand-in that reads the same prompts an LLM
teacher reads and answers in the format the prompts ask for, so the pipeline
runs and can be tested end to end. It is not a language model; real runs use
an LLM teacher (``teacher.backend: openai``).

- Summarizer prompts: sentence-level sentiment (a small lexicon with negation)
  over a domain aspect vocabulary gives ``Positive Aspects`` / ``Negative
  Aspects`` / ``User Preference Elements``.
- Reasoner prompts: which of the user's preferences the item's praised and
  criticised features meet or miss, and a verdict; temperature > 0 varies the
  wording and emphasis (seeded by prompt and sample index, so reproducible);
  a rating hint, when present, sets the verdict's direction.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from typing import Any

from reason4rec import prompts
from reason4rec.teacher.core import TeacherRequest

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

SUMMARY_SIGNATURE = "Summarize the reasons behind the given rating"
REASON_SIGNATURE = "Analyze whether the user will like the new"


class RulesBackend:
    name = "rules"

    def __init__(self, model: str = "rules-v1"):
        self.model = model

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model}

    def call(self, request: TeacherRequest) -> tuple[str, int, int]:
        if SUMMARY_SIGNATURE in request.prompt:
            text = summarize_review(_field(request.prompt, "Review"))
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


def _aspects_of(section: str, field: str) -> Counter:
    counts: Counter = Counter()
    for line in section.splitlines():
        if line.startswith(field + ":"):
            for item in line.split(":", 1)[1].split(","):
                item = item.strip().lower()
                if item and item != prompts.NONE_MARK.lower():
                    counts[item] += 1
    return counts


def compose_reason(prompt: str, temperature: float, sample_index: int) -> str:
    """A preference-matching rationale from the histories in a reasoner prompt."""
    sections = prompts.split_sections(prompt)
    user = sections.get(prompts.USER_HISTORY_HEADER, "")
    item = sections.get(prompts.ITEM_HISTORY_HEADER, "")
    task = sections.get(prompts.TASK_HEADER, "")
    domain_match = re.search(r'like the new (.+?) "', task)
    domain = domain_match.group(1).lower() if domain_match else "item"
    hint_match = re.search(r"rated the item ([0-9.]+) stars", task)

    cares = _aspects_of(user, prompts.SUMMARY_FIELDS[2]) + _aspects_of(user, prompts.SUMMARY_FIELDS[0])
    dislikes = _aspects_of(user, prompts.SUMMARY_FIELDS[1])
    praised = _aspects_of(item, prompts.SUMMARY_FIELDS[0])
    criticised = _aspects_of(item, prompts.SUMMARY_FIELDS[1])
    matches = [a for a, _ in cares.most_common() if praised[a] > criticised[a]]
    misses = [a for a, _ in (cares + dislikes).most_common() if criticised[a] > praised[a]]
    evidence = len(matches) - 1.5 * len(misses) + 0.3 * (sum(praised.values()) - sum(criticised.values())) / max(1, sum(praised.values()) + sum(criticised.values()))

    if hint_match:
        rating = float(hint_match.group(1))
        direction = "like" if rating >= 4 else "dislike" if rating <= 2 else "mixed"
    else:
        direction = "like" if evidence > 0.5 else "dislike" if evidence < -0.5 else "mixed"

    rng = random.Random(int(hashlib.sha256(f"{prompt}|{sample_index}".encode()).hexdigest()[:16], 16))
    pick = (lambda options: rng.choice(options)) if temperature > 0 else (lambda options: options[0])
    if temperature > 0:
        rng.shuffle(matches)
        rng.shuffle(misses)
    top_praised = [a for a, _ in praised.most_common(3)]
    top_criticised = [a for a, _ in criticised.most_common(3)]
    user_cares = _listing([a for a, _ in cares.most_common(3)]) or "a well-made " + domain

    sentences = [pick([f"The user tends to value {user_cares}.", f"From past reviews, the user cares most about {user_cares}."])]
    if direction == "like":
        strengths = _listing(matches[:3] or top_praised) or "its overall quality"
        sentences.append(pick([f"Other reviewers praise this {domain} for {strengths}, which matches those preferences.", f"This {domain} is appreciated for {strengths}, in line with what the user looks for."]))
        if misses and temperature > 0 and rng.random() < 0.5:
            sentences.append(f"Some criticism of its {_listing(misses[:1])} may matter less to this user.")
        sentences.append(pick(["Overall the user is likely to enjoy it.", "The user will probably like it."]))
    elif direction == "dislike":
        flaws = _listing(misses[:3] or top_criticised) or "the qualities the user usually looks for"
        sentences.append(pick([f"However, reviewers often criticise this {domain} for its {flaws}, which the user is sensitive to.", f"Yet this {domain} falls short on {flaws}, exactly where the user is demanding."]))
        sentences.append(pick(["The user is likely to be disappointed.", "The user will probably not like it."]))
    else:
        strengths = _listing(matches[:2] or top_praised[:2]) or "some of its features"
        flaws = _listing(misses[:2] or top_criticised[:2]) or "a few weaker points"
        sentences.append(pick([f"The {domain} offers {strengths} but is also criticised for {flaws}.", f"It meets the user's taste in {strengths} while {flaws} may disappoint."]))
        sentences.append(pick(["The user will likely find it acceptable but not outstanding.", "The user may have mixed feelings about it."]))
    return " ".join(sentences)


def _listing(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
