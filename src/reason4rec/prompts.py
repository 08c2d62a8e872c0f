"""Every prompt of the method, in one place: the paper's prompt boxes (section 3),
or for the reasoner and the predictor the published scripts' words (``WORDINGS``).

The domain noun ("Digital Music", "Book", "business") comes from parameters.
Histories are the last ``prompting.history_length`` (5 by default) earlier
interactions in time order; the predictor's averages are over all earlier ones
(see :mod:`reason4rec.data.history`).
This module also holds the parsers and guards for what comes back, so the
format a prompt asks for and the code that reads it live side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

SUMMARY_FIELDS = ("Positive Aspects", "Negative Aspects", "User Preference Elements")
NONE_MARK = "None"

# The published summarizer prompt (1_Summarizer/2_construct_summarizer_train_data.py),
# word for word: its worked example is the wireless headphones review whatever the domain.
SUMMARIZER_TEMPLATE = """Task: Summarize the reasons behind the given rating of a {domain} based on the customer review.
{domain}: {title}
Rating: {rating}
Review: {review}

Analyze the above customer review for the {domain} '{title}' and summarize the reasons behind the given rating of {rating}. Please consider the positive and negative aspects mentioned in the review and provide the keywords of reasons and user preference elements.

[Example]
Product: Wireless Bluetooth Headphones
Review: I absolutely love these wireless Bluetooth headphones. They are incredibly lightweight and comfortable to wear, with a long battery life. The sound quality is clear, with deep bass and crisp highs. However, the charging case is prone to scratches, and sometimes the connection is unstable. Overall, I'm very satisfied; they are worth the price.
Output:
Positive Aspects: Comfortable, Lightweight, Long Battery Life, Clear Sound, Deep Bass, Crisp Highs
Negative Aspects: Scratch-Prone Case, Unstable Connection
User Preference Elements: Durability, Aesthetic Appeal, Reliability, Value for Money

Give your reply following the example output format. Directly give Positive Aspects, Negative Aspects, and User Preference Elements without other content.
"""

TASK_HEADER = "### Task ###"
AVERAGES_HEADER = "### Average Past Ratings ###"
ANALYSIS_HEADER = "### Personalized Recommendation Analysis ###"

# What the rating is based on: with a reason, "the above information"; without one,
# the published direct-prediction prompt's words (4_distilling_possible_reason.py),
# which Algorithm 1's `baseline: none`, Table 5's "Without Reason" row and the
# "Without Reason" ablation all use.
WITH_REASON_GROUNDS = "Based on the above information"
DIRECT_PREDICTION_GROUNDS = "Based on the user's and item's rating histories and their average past ratings"


@dataclass(frozen=True)
class Wording:
    """The words around the same content (histories, averages, reason) in the
    reasoner's and the predictor's prompts. The paper's prompt boxes (section 3)
    and the published scripts word them differently; ``prompting.wording`` chooses."""

    reasoner_intro: str  # before the histories ("" in the paper's boxes)
    predictor_intro: str
    user_reviews_header: str  # the reasoner's history sections
    item_reviews_header: str
    user_ratings_header: str  # the predictor's, whose entries carry ratings
    item_ratings_header: str
    rated_heading: str  # an entry's first line in the predictor's prompt
    entry_separator: str
    task_header: str  # before the closing instruction ("" when it follows the histories bare)
    reasoner_task: str
    hint: str  # appended to the reasoner's prompt in Algorithm 1's hinted attempts
    predictor_task: str


WORDINGS = {
    # The paper's prompt boxes (section 3), compact: no introductory paragraph.
    "paper": Wording(
        reasoner_intro="",
        predictor_intro="",
        user_reviews_header="### User Review History ###",
        item_reviews_header="### Item Review History by Other Users ###",
        user_ratings_header="### User Review History ###",
        item_ratings_header="### Item Review History by Other Users ###",
        rated_heading="{number}. {title}, Rating: {rating}",
        entry_separator="\n",
        task_header=TASK_HEADER + "\n",
        reasoner_task=(
            'Analyze whether the user will like the new {domain} "{title}" based on the user\'s preferences and the '
            "item's features. Provide your rationale in one concise paragraph."
        ),
        hint=(
            "\n\nHint: The user actually rated the item {rating:g} stars. The star ranges from 1 to 5, with 5 being "
            "the best. Use the hint but don't mention the user's rating in your response."
        ),
        predictor_task=(
            '{grounds}, please predict the user\'s rating for "{title}", (1 being the lowest and 5 '
            "being highest, directly give the rating without other content.)\n\n"
            "[Output Format] Predicted Rating: [Rating between 1 and 5]"
        ),
    ),
    # Peter-Fy/Reason4Rec's scripts word for word (2_Reasoner/4_distilling_possible_reason.py,
    # 5_construct_reasoner_train_data.py, 3_Predictor/1_construct_predictor_train_data.py),
    # typos included: what the published numbers were trained and measured on. On the
    # default run's test rows (SmolLM2's tokenizer) 61 tokens longer for the reasoner, 86 for the predictor.
    "published": Wording(
        reasoner_intro=(
            'Here is information about a user and a new {domain} "{title}" being recommended to the user. For the '
            "user, we have the user's review history. For the new item being recommended, we have the item review "
            "history by other users.\n\n"
        ),
        predictor_intro=(
            'Here is information about a user and a new {domain} "{title}" being recommended to the user. For the '
            "user, we have the user's past rating history User ratings range from 1 to 5, where 1 is the lowest and 5 "
            "is the highest. For the new item being recommended, we have the item rating history by other users.\n\n"
        ),
        user_reviews_header="### User Review History ###",
        item_reviews_header="### Item Review History by other users ###",
        user_ratings_header="### User Rating History ###",
        item_ratings_header="### Item Rating History by other users ###",
        rated_heading="{number}. {title}, {rating};",
        entry_separator="\n\n",
        task_header="",
        reasoner_task=(
            'Analyze whether the user will like the new {domain} "{title}" based on the user\'s preferences and the '
            "recommended item's features. Give you rationale in one paragraph."
        ),
        hint=(
            " \n(Hint: The user actually rated the item {rating:.1f} stars. The star range is from 1 to 5, with 5 "
            "being the best. Use the hint but don't mention user's rating in your response.)"
        ),
        predictor_task=(
            '{grounds}, please predict the user\'s rating for "{title}", (1 being the lowest and 5 '
            "being highest, directly give the rating without other content.)\n"
            "[Output Format] Predicted Rating: [A rating between 1 and 5]\tGive your reply following the output "
            "format without any extra information."
        ),
    ),
}


def wording_named(name: str) -> Wording:
    """The named wording; an unknown name fails, listing the choices."""
    if name not in WORDINGS:
        raise ValueError(f"prompting.wording must be one of {', '.join(map(repr, WORDINGS))}, not {name!r}")
    return WORDINGS[name]


# Table 4/5's "Review-inferred Reason": the teacher infers the reason from the
# user's own review of the item (the paper gives no prompt; this is the reasoner's
# task with the review added and the rating kept out of the answer).
REVIEW_HEADER = "### The User's Review of This Item ###"
REVIEW_INFERRED_TASK = (
    'The user has reviewed the new {domain} "{title}" (above). From the review, explain why the user likes or '
    "dislikes it, in terms of the user's preferences and the item's features. Provide your rationale in one concise "
    "paragraph, and don't mention the user's rating."
)

RATING_ANSWER_PREFIX = "Predicted Rating: "

# Reason quality judged by an LLM teacher (GPTScore-style, the paper's Table 3).
GPTSCORE_TEMPLATE = """You are judging an explanation of why a user may like or dislike a {domain}.

The user's own review of it:
{review}

The explanation, written without seeing the review:
{reason}

How well does the explanation align with the preferences and opinions the user actually expressed in the review? Answer with one integer from 0 (no alignment) to 100 (complete alignment), and nothing else."""

# The published filter rejects a reason containing any of these (it would leak the rating).
FORBIDDEN_IN_REASONS = ("1.0", "2.0", "3.0", "4.0", "5.0", "rating ", "star ", "stars ")

# A rating stated in a form the published word list misses: "4 stars." (the
# list wants "stars " with a space), "4/5", "4 out of five", "rated it a 4",
# "rate it 4", "4.5". A number that is not a rating ("track 4") passes.
_SCORE = r"(?:[1-5](?:\.[05])?|one|two|three|four|five)"
RATING_STATEMENTS = re.compile(
    rf"\b{_SCORE}[\s-]*stars?\b"
    rf"|\b{_SCORE}\s*(?:/|out of)\s*(?:5|five)\b"
    rf"|\brat(?:e|es|ed|ing)\b(?:\s+(?:it|this|them|the\s+\w+|a|an|of|at|as|about|around)){{0,3}}\s+{_SCORE}\b"
    r"|\b[1-5]\.[05]\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier interaction as prompts show it."""

    title: str
    positive: str
    negative: str
    preferences: str
    rating: float | None = None


def format_rating(rating: float) -> str:
    return f"{float(rating):.1f}"


def summarizer_prompt(domain: str, title: str, rating: float, review: str) -> str:
    return SUMMARIZER_TEMPLATE.format(domain=domain, title=title, rating=format_rating(rating), review=review)


def format_history(entries: Sequence[HistoryEntry], with_ratings: bool, words: Wording) -> str:
    """Numbered entries, oldest first; the predictor's carry their rating in the heading."""
    if not entries:
        return "No earlier reviews."
    blocks = []
    for number, entry in enumerate(entries, start=1):
        if with_ratings:
            heading = words.rated_heading.format(number=number, title=entry.title, rating=format_rating(entry.rating))
        else:
            heading = f"{number}. {entry.title}"
        blocks.append(
            f"{heading}\n{SUMMARY_FIELDS[0]}: {entry.positive}\n{SUMMARY_FIELDS[1]}: {entry.negative}\n"
            f"{SUMMARY_FIELDS[2]}: {entry.preferences}"
        )
    return words.entry_separator.join(blocks)


def reasoner_prompt(
    domain: str,
    title: str,
    user_history: Sequence[HistoryEntry],
    item_history: Sequence[HistoryEntry],
    *,
    wording: str,
    hint_rating: float | None = None,
) -> str:
    """The reasoner's prompt; with ``hint_rating`` the hint sentence is appended and nothing else changes."""
    words = wording_named(wording)
    prompt = (
        f"{_review_histories(domain, title, user_history, item_history, words)}"
        f"{words.task_header}{words.reasoner_task.format(domain=domain, title=title)}"
    )
    if hint_rating is not None:
        prompt += words.hint.format(rating=float(hint_rating))
    return prompt


def review_inferred_prompt(
    domain: str, title: str, user_history: Sequence[HistoryEntry], item_history: Sequence[HistoryEntry], review: str, *, wording: str
) -> str:
    """The teacher's prompt for a "Review-inferred Reason": the histories, the user's review of the item, the task."""
    words = wording_named(wording)
    return (
        f"{_review_histories(domain, title, user_history, item_history, words)}{REVIEW_HEADER}\n{review}\n\n"
        f"{words.task_header}{REVIEW_INFERRED_TASK.format(domain=domain, title=title)}"
    )


def _review_histories(domain: str, title: str, user_history: Sequence[HistoryEntry], item_history: Sequence[HistoryEntry], words: Wording) -> str:
    """The user's and the item's summarized reviews, without ratings (the reasoner's view)."""
    return (
        f"{words.reasoner_intro.format(domain=domain, title=title)}"
        f"{words.user_reviews_header}\n{format_history(user_history, False, words)}\n\n"
        f"{words.item_reviews_header}\n{format_history(item_history, False, words)}\n\n"
    )


def review_history_sections(prompt: str) -> tuple[str, str]:
    """The user's and the item's history sections of a reasoner prompt in any wording
    (in ``published`` the item's runs on into the closing instruction, which names no aspect field)."""
    sections = split_sections(prompt)
    user = next((sections[w.user_reviews_header] for w in WORDINGS.values() if w.user_reviews_header in sections), "")
    item = next((sections[w.item_reviews_header] for w in WORDINGS.values() if w.item_reviews_header in sections), "")
    return user, item


def predictor_prompt(
    domain: str,
    title: str,
    user_history: Sequence[HistoryEntry],
    item_history: Sequence[HistoryEntry],
    user_mean_rating: float,
    item_mean_rating: float,
    reason: str | None,
    *,
    wording: str,
) -> str:
    """The predictor's (and the reward model's) prompt. ``reason=None`` removes the
    analysis section and asks in the published direct-prediction words: the
    paper's "Without Reason" ablation and Algorithm 1's ``baseline: none``."""
    words = wording_named(wording)
    analysis = f"{ANALYSIS_HEADER}\n{reason}\n\n" if reason is not None else ""
    grounds = WITH_REASON_GROUNDS if reason is not None else DIRECT_PREDICTION_GROUNDS
    return (
        f"{words.predictor_intro.format(domain=domain, title=title)}"
        f"{words.user_ratings_header}\n{format_history(user_history, True, words)}\n\n"
        f"{words.item_ratings_header}\n{format_history(item_history, True, words)}\n\n"
        f"{AVERAGES_HEADER}\n"
        f"User's Average Rating (all previous ratings): {_mean(user_mean_rating)}\n"
        f"Item's Average Rating (all ratings by other users): {_mean(item_mean_rating)}\n\n"
        f"{analysis}{words.task_header}{words.predictor_task.format(grounds=grounds, title=title)}"
    )


def rating_answer(rating: float) -> str:
    """The predictor's training target, as the published code writes it."""
    return f"{RATING_ANSWER_PREFIX}{format_rating(rating)}"


def _mean(value: float) -> str:
    return "unknown" if value is None or math.isnan(value) else f"{value:.1f}"


# ---------------------------------------------------------------- reading answers

_FIELD_PATTERN = re.compile(
    r"^\W*(positive aspects|negative aspects|user preference elements)\W*:\s*(.*)$", re.IGNORECASE
)


def parse_summary(text: str) -> dict[str, str] | None:
    """The three fields of an aspect-preference summary, or None if any is missing.

    Tolerates markdown bold, bullets and case; keeps the first occurrence of each field.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_PATTERN.match(line.strip().replace("**", ""))
        if match:
            name = next(f for f in SUMMARY_FIELDS if f.lower() == match.group(1).lower())
            fields.setdefault(name, match.group(2).strip().strip("*").strip() or NONE_MARK)
    if len(fields) != 3:
        return None
    return {"positive": fields[SUMMARY_FIELDS[0]], "negative": fields[SUMMARY_FIELDS[1]], "preferences": fields[SUMMARY_FIELDS[2]]}


def format_summary(positive: Sequence[str], negative: Sequence[str], preferences: Sequence[str]) -> str:
    def join(items: Sequence[str]) -> str:
        return ", ".join(items) if items else NONE_MARK

    return f"{SUMMARY_FIELDS[0]}: {join(positive)}\n{SUMMARY_FIELDS[1]}: {join(negative)}\n{SUMMARY_FIELDS[2]}: {join(preferences)}"


def gptscore_prompt(domain: str, review: str, reason: str) -> str:
    return GPTSCORE_TEMPLATE.format(domain=domain, review=review, reason=reason)


def parse_score(text: str) -> int | None:
    """The first integer 0..100 in a judge's answer, or None."""
    match = re.search(r"\b(100|[1-9]?[0-9])\b", text or "")
    return int(match.group(1)) if match else None


def reveals_rating(reason: str) -> bool:
    """True when a reason contains a word the published filter forbids (case-insensitive),
    or states a rating in another common form (``RATING_STATEMENTS``)."""
    lowered = reason.lower() + " "
    return any(word in lowered for word in FORBIDDEN_IN_REASONS) or RATING_STATEMENTS.search(reason) is not None


def split_sections(prompt: str) -> dict[str, str]:
    """The ``### Header ###`` sections of a reasoner or predictor prompt, by header."""
    sections: dict[str, str] = {}
    current = None
    for line in prompt.splitlines():
        if line.startswith("### ") and line.endswith(" ###"):
            current = line
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return {k: v.strip() for k, v in sections.items()}
