"""Golden tests: the exact prompt text for a fixture pair."""

import pytest

from reason4rec import prompts
from reason4rec.prompts import HistoryEntry

USER = [HistoryEntry("Golden Echoes Vol. 1", "Catchy Melody", "Weak Vocals", "Melody, Vocals", 4.0)]
ITEM = [HistoryEntry("Velvet Roads Vol. 2", "Rich Instrumentation", "None", "Instrumentation", 5.0)]

REASONER_GOLDEN = """### User Review History ###
1. Golden Echoes Vol. 1
Positive Aspects: Catchy Melody
Negative Aspects: Weak Vocals
User Preference Elements: Melody, Vocals

### Item Review History by Other Users ###
1. Velvet Roads Vol. 2
Positive Aspects: Rich Instrumentation
Negative Aspects: None
User Preference Elements: Instrumentation

### Task ###
Analyze whether the user will like the new Digital Music "Silent Waves Vol. 3" based on the user's preferences and the item's features. Provide your rationale in one concise paragraph."""

PREDICTOR_GOLDEN = """### User Review History ###
1. Golden Echoes Vol. 1, Rating: 4.0
Positive Aspects: Catchy Melody
Negative Aspects: Weak Vocals
User Preference Elements: Melody, Vocals

### Item Review History by Other Users ###
1. Velvet Roads Vol. 2, Rating: 5.0
Positive Aspects: Rich Instrumentation
Negative Aspects: None
User Preference Elements: Instrumentation

### Average Past Ratings ###
User's Average Rating (all previous ratings): 4.0
Item's Average Rating (all ratings by other users): 4.5

### Personalized Recommendation Analysis ###
The user loves melody and this album is praised for it.

### Task ###
Based on the above information, please predict the user's rating for "Silent Waves Vol. 3", (1 being the lowest and 5 being highest, directly give the rating without other content.)

[Output Format] Predicted Rating: [Rating between 1 and 5]"""


def test_reasoner_prompt_golden():
    assert prompts.reasoner_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM) == REASONER_GOLDEN


def test_hint_only_appends_the_hint_sentence():
    hinted = prompts.reasoner_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, hint_rating=2.0)
    assert hinted == REASONER_GOLDEN + (
        "\n\nHint: The user actually rated the item 2 stars. The star ranges from 1 to 5, with 5 being the best. "
        "Use the hint but don't mention the user's rating in your response."
    )


def test_predictor_prompt_golden_and_without_reason():
    reason = "The user loves melody and this album is praised for it."
    assert prompts.predictor_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, 4.0, 4.5, reason) == PREDICTOR_GOLDEN
    without = prompts.predictor_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, 4.0, 4.5, None)
    # Without a reason: no analysis section, and the published direct-prediction prompt's words.
    assert prompts.ANALYSIS_HEADER not in without and without == PREDICTOR_GOLDEN.replace(
        "### Personalized Recommendation Analysis ###\n" + reason + "\n\n", ""
    ).replace("Based on the above information,", "Based on the user's and item's rating histories and their average past ratings,")


def test_summarizer_prompt_is_the_published_one():
    """Built as 1_Summarizer/2_construct_summarizer_train_data.py builds it (Peter-Fy/Reason4Rec d7738c8)."""
    published = PUBLISHED_SUMMARIZER.replace("@@@class###", "Book")
    published = published.replace("@@@title###", "Dune").replace("@@@review###", "Loved it.").replace("@@@rating###", str(5.0))
    assert prompts.summarizer_prompt("Book", "Dune", 5.0, "Loved it.") == published
    # The rules teacher reads the review being summarized, not the example's.
    from reason4rec.teacher.rules import _field

    assert _field(published, "Review") == "Loved it."


def test_parse_summary_tolerates_markdown_and_rejects_missing_fields():
    text = "**Positive Aspects:** Melody\n- negative aspects: None\nUser Preference Elements: Harmony, Energy"
    assert prompts.parse_summary(text) == {"positive": "Melody", "negative": "None", "preferences": "Harmony, Energy"}
    assert prompts.parse_summary("Positive Aspects: x\nNegative Aspects: y") is None


def test_forbidden_words_of_the_published_filter():
    assert prompts.reveals_rating("It deserves 4.0 overall")
    assert prompts.reveals_rating("five stars for sure")
    assert prompts.reveals_rating("The rating is high")
    assert not prompts.reveals_rating("The user will enjoy the melody.")


@pytest.mark.parametrize(
    "reason",
    ["They would rate it 4 stars.", "A solid 4/5.", "Easily 4 out of 5", "four out of five for the mix", "I'd say a 4-star album.",
     "They rated it a 4", "rate this 5", "Worth 4.5 overall", "Five stars."],
)  # fmt: skip
def test_a_rating_stated_in_any_common_form_is_rejected(reason):
    assert prompts.reveals_rating(reason)


@pytest.mark.parametrize("reason", ["Track 4 is the highlight.", "The 5 songs on side two flow well.", "Four tracks stand out.", "The 3 ballads are slow."])
def test_a_number_that_is_not_a_rating_passes(reason):
    assert not prompts.reveals_rating(reason)


PUBLISHED_SUMMARIZER = """Task: Summarize the reasons behind the given rating of a @@@class### based on the customer review.
@@@class###: @@@title###
Rating: @@@rating###
Review: @@@review###

Analyze the above customer review for the @@@class### '@@@title###' and summarize the reasons behind the given rating of @@@rating###. Please consider the positive and negative aspects mentioned in the review and provide the keywords of reasons and user preference elements.

[Example]
Product: Wireless Bluetooth Headphones
Review: I absolutely love these wireless Bluetooth headphones. They are incredibly lightweight and comfortable to wear, with a long battery life. The sound quality is clear, with deep bass and crisp highs. However, the charging case is prone to scratches, and sometimes the connection is unstable. Overall, I'm very satisfied; they are worth the price.
Output:
Positive Aspects: Comfortable, Lightweight, Long Battery Life, Clear Sound, Deep Bass, Crisp Highs
Negative Aspects: Scratch-Prone Case, Unstable Connection
User Preference Elements: Durability, Aesthetic Appeal, Reliability, Value for Money

Give your reply following the example output format. Directly give Positive Aspects, Negative Aspects, and User Preference Elements without other content.
"""
