"""A synthetic review world: users with aspect preferences rate and review items.

The default data source, so the whole method runs offline. It is built to be
worth running on: ratings are caused by how an item's aspects meet a user's
preferences (plus biases and noise), and the review verbalises the aspects that
caused the rating among preference-irrelevant noise. The causes are kept in
``true_positive_aspects`` / ``true_negative_aspects`` so later stages can check
whether generated reasons recover them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

# Aspect -> (positive phrasings, negative phrasings). Several of each so
# reviews are not one template.
MUSIC_ASPECTS: dict[str, tuple[list[str], list[str]]] = {
    "vocals": (
        ["the vocals are stunning", "her voice is warm and clear", "the singing is superb"],
        ["the vocals are weak", "the singer sounds strained", "the singing is flat"],
    ),
    "lyrics": (
        ["the lyrics are thoughtful", "the words really say something", "clever lyrics throughout"],
        ["the lyrics are shallow", "the words are clumsy", "the lyrics feel lazy"],
    ),
    "melody": (
        ["the melodies are catchy", "the tunes stay in your head", "lovely melodic lines"],
        ["the melodies are forgettable", "no tune sticks", "the melody goes nowhere"],
    ),
    "production": (
        ["the production is polished", "it is beautifully produced", "the mix is crisp"],
        ["the production is muddy", "it sounds overproduced", "the mix is a mess"],
    ),
    "rhythm": (
        ["the grooves are tight", "the rhythm section is locked in", "great beats"],
        ["the rhythm drags", "the beats are stiff", "the drumming is sloppy"],
    ),
    "instrumentation": (
        ["the instrumentation is rich", "the guitar work is excellent", "great use of strings"],
        ["the instrumentation is thin", "the arrangements are bland", "the keyboards sound cheap"],
    ),
    "originality": (
        ["it sounds fresh and original", "a truly unique sound", "nothing else sounds like it"],
        ["it is derivative", "it sounds like everything else", "nothing new here"],
    ),
    "emotional depth": (
        ["it is deeply moving", "the songs hit me emotionally", "full of feeling"],
        ["it leaves me cold", "there is no emotion in it", "it feels hollow"],
    ),
    "energy": (
        ["it is full of energy", "the tracks are exciting", "it really rocks"],
        ["it is sluggish", "the tracks lack energy", "it is dull and lifeless"],
    ),
    "sound quality": (
        ["the sound quality is excellent", "the recording is clean", "it sounds great on my speakers"],
        ["the sound quality is poor", "the recording is noisy", "it sounds tinny"],
    ),
    "value": (
        ["it is great value", "well worth the price", "a bargain for what you get"],
        ["it is overpriced", "not worth the money", "too expensive for what it is"],
    ),
}

NOISE_SENTENCES = [
    "It arrived two days late.",
    "Shipping was quick.",
    "I bought this as a gift for my brother.",
    "My neighbour recommended it.",
    "The packaging was damaged but the disc was fine.",
    "I listened to it on a long drive.",
    "I have been a fan of this genre for years.",
    "I found it while browsing late at night.",
    "The download link worked the first time.",
    "I played it at a party last weekend.",
]

OPENERS_BY_SENTIMENT = {
    "positive": ["Really enjoyed this one.", "What a great album.", "I love this.", "Very happy with it."],
    "mixed": ["Mixed feelings here.", "It is okay.", "Some good, some bad.", "Not sure what to think."],
    "negative": ["Disappointed.", "Not for me.", "I expected more.", "Hard to recommend."],
}

TITLE_WORDS = (
    ["Midnight", "Golden", "Broken", "Electric", "Silent", "Velvet", "Crimson", "Distant", "Wild", "Hollow"],
    ["Echoes", "Horizons", "Dreams", "Roads", "Rivers", "Lights", "Stories", "Hearts", "Waves", "Skies"],
)


def generate_review_world(params: dict[str, Any]) -> pd.DataFrame:
    """Generate interactions with ratings, reviews, titles, timestamps and ground truth.

    ``params`` keys: ``n_users``, ``n_items``, ``interactions_per_user`` (mean),
    ``seed``, ``start_timestamp``, ``span_days``, ``noise_sentence_rate``,
    ``rating_noise``. The same params give the same table.
    """
    rng = np.random.default_rng(params["seed"])
    aspects = list(MUSIC_ASPECTS)
    n_users, n_items, n_aspects = params["n_users"], params["n_items"], len(aspects)

    # Each user cares about a few aspects (sparse weights); items have a quality per aspect.
    care = rng.random((n_users, n_aspects)) < 3.0 / n_aspects
    user_weights = care * rng.uniform(0.6, 1.4, (n_users, n_aspects))
    item_quality = rng.normal(0.25, 0.8, (n_items, n_aspects)).clip(-1.5, 1.5)
    user_bias = rng.normal(0.0, 0.35, n_users)
    item_bias = rng.normal(0.0, 0.3, n_items)
    popularity = rng.pareto(1.2, n_items) + 1.0
    popularity /= popularity.sum()

    rows = []
    counts = np.maximum(5, rng.poisson(params["interactions_per_user"], n_users))
    for u in range(n_users):
        items = rng.choice(n_items, size=min(counts[u], n_items), replace=False, p=popularity)
        for i in items:
            contributions = user_weights[u] * item_quality[i]
            score = 4.1 + user_bias[u] + item_bias[i] + 0.9 * contributions.sum()
            score += rng.normal(0.0, params["rating_noise"])
            rating = float(np.clip(np.rint(score), 1, 5))
            drivers = np.flatnonzero(np.abs(contributions) > 0.15)
            positive = [aspects[a] for a in drivers if contributions[a] > 0]
            negative = [aspects[a] for a in drivers if contributions[a] < 0]
            rows.append((u, i, rating, positive, negative))

    n = len(rows)
    start = params["start_timestamp"]
    timestamps = start + np.sort(rng.integers(0, params["span_days"] * 86400, n))
    order = rng.permutation(n)  # interactions happen in random order over the span
    titles = _item_titles(rng, n_items)
    records = []
    for row_index, (u, i, rating, positive, negative) in enumerate(rows):
        records.append(
            {
                "user_id": f"U{u:05d}",
                "item_id": f"I{i:05d}",
                "rating": rating,
                "review": _review_text(rng, rating, positive, negative, params["noise_sentence_rate"]),
                "title": titles[i],
                "timestamp": int(timestamps[order[row_index]]),
                "true_positive_aspects": positive,
                "true_negative_aspects": negative,
            }
        )
    return pd.DataFrame.from_records(records).sort_values("timestamp", kind="stable").reset_index(drop=True)


def _item_titles(rng: np.random.Generator, n_items: int) -> list[str]:
    first, second = TITLE_WORDS
    return [f"{rng.choice(first)} {rng.choice(second)} Vol. {i % 7 + 1}" for i in range(n_items)]


def _review_text(
    rng: np.random.Generator, rating: float, positive: list[str], negative: list[str], noise_rate: float
) -> str:
    sentiment = "positive" if rating >= 4 else "negative" if rating <= 2 else "mixed"
    sentences = [str(rng.choice(OPENERS_BY_SENTIMENT[sentiment]))]
    aspect_sentences = [
        _capitalise(str(rng.choice(MUSIC_ASPECTS[a][0]))) + "." for a in positive
    ] + [_capitalise(str(rng.choice(MUSIC_ASPECTS[a][1]))) + "." for a in negative]
    rng.shuffle(aspect_sentences)
    sentences += aspect_sentences
    n_noise = rng.binomial(2, noise_rate)
    for sentence in rng.choice(NOISE_SENTENCES, size=n_noise, replace=False):
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), str(sentence))
    return " ".join(sentences)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


class GeneratedReviews:
    """The synthetic world behind the two-pass interface of a review dump
    (:class:`reason4rec.data.readers.ReviewDump`): ``scan`` without the text,
    ``texts`` for the kept lines, ``titles`` per item, as Arrow streams, so the
    ingest is one path for both."""

    def __init__(self, params: dict[str, Any]):
        world = generate_review_world(params)
        self._world = world.assign(line_number=np.arange(1, len(world) + 1))

    def scan(self) -> pa.RecordBatchReader:
        world = self._world
        scanned = world.drop(columns=["review", "title"]).assign(
            review_blank=world["review"].str.strip() == "", source_file="synthetic", reject_reason=None, reject_detail=""
        )
        return pa.Table.from_pandas(scanned, preserve_index=False).to_reader()

    def texts(self, line_numbers: Iterable[np.ndarray]) -> pa.RecordBatchReader:
        wanted = np.concatenate([np.empty(0, dtype=np.int64), *line_numbers])
        rows = self._world[self._world["line_number"].isin(wanted)]
        return pa.table({"line_number": rows["line_number"].to_numpy(), "review": rows["review"].str.strip().to_numpy()}).to_reader()

    def titles(self) -> pa.RecordBatchReader:
        items = self._world.drop_duplicates("item_id")
        return pa.table({"item_id": items["item_id"].to_numpy(), "title": items["title"].to_numpy(), "line_number": items["line_number"].to_numpy()}).to_reader()
