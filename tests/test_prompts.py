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
    assert prompts.reasoner_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, wording="paper") == REASONER_GOLDEN


def test_hint_only_appends_the_hint_sentence():
    hinted = prompts.reasoner_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, wording="paper", hint_rating=2.0)
    assert hinted == REASONER_GOLDEN + (
        "\n\nHint: The user actually rated the item 2 stars. The star ranges from 1 to 5, with 5 being the best. "
        "Use the hint but don't mention the user's rating in your response."
    )


def test_predictor_prompt_golden_and_without_reason():
    reason = "The user loves melody and this album is praised for it."
    assert prompts.predictor_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, 4.0, 4.5, reason, wording="paper") == PREDICTOR_GOLDEN
    without = prompts.predictor_prompt("Digital Music", "Silent Waves Vol. 3", USER, ITEM, 4.0, 4.5, None, wording="paper")
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


def published_histories(entries, with_ratings):
    """The history text as Peter-Fy/Reason4Rec (d7738c8) builds it, 2_Reasoner/4_distilling_possible_reason.py."""
    text = ""
    for i, his in enumerate(entries):
        text += f"{i + 1}. {his.title}, {float(his.rating):.1f};\n" if with_ratings else f"{i + 1}. {his.title}\n"
        summary = f"Positive Aspects: {his.positive}\nNegative Aspects: {his.negative}\nUser Preference Elements: {his.preferences}"
        text += f"{summary}".strip() + "\n\n"
    return text.strip()


USER_TWO = USER + [HistoryEntry("Broken Rivers Vol. 4", "Energy", "None", "Energy", 3.0)]


def test_published_wording_is_the_published_scripts_word_for_word():
    """``prompting.wording: published``: the reasoner's prompt, its hint, the direct-prediction and the
    reward/predictor prompts exactly as the published scripts write them (f-strings copied verbatim)."""
    product_class, target_title, target_rating = "Digital Music", "Silent Waves Vol. 3", 2.0
    user_average_rating, item_average_rating, reasoning = 4.0, 4.5, "The user loves melody."
    user_history_text, item_history_text = published_histories(USER_TWO, False), published_histories(ITEM, False)
    generate_reason_prompt = f"""Here is information about a user and a new {product_class} "{target_title}" being recommended to the user. For the user, we have the user's review history. For the new item being recommended, we have the item review history by other users.

### User Review History ###
{user_history_text}

### Item Review History by other users ###
{item_history_text}

Analyze whether the user will like the new {product_class} "{target_title}" based on the user's preferences and the recommended item's features. Give you rationale in one paragraph."""
    hinted_prompt = generate_reason_prompt + f""" 
(Hint: The user actually rated the item {target_rating} stars. The star range is from 1 to 5, with 5 being the best. Use the hint but don't mention user's rating in your response.)"""
    user_history_text, item_history_text = published_histories(USER_TWO, True), published_histories(ITEM, True)
    head = f"""Here is information about a user and a new {product_class} "{target_title}" being recommended to the user. For the user, we have the user's past rating history User ratings range from 1 to 5, where 1 is the lowest and 5 is the highest. For the new item being recommended, we have the item rating history by other users.

### User Rating History ###
{user_history_text}

### Item Rating History by other users ###
{item_history_text}

### Average Past Ratings ###
User's Average Rating (all previous ratings): {float(user_average_rating):.1f}
Item's Average Rating (all ratings by other users): {float(item_average_rating):.1f}

"""
    direct_predict_prompt = head + f"""Based on the user's and item's rating histories and their average past ratings, please predict the user's rating for "{target_title}", (1 being the lowest and 5 being highest, directly give the rating without other content.)
[Output Format] Predicted Rating: [A rating between 1 and 5]\tGive your reply following the output format without any extra information."""
    reward_predict_prompt = head + f"""### Personalized Recommendation Analysis ###
{reasoning}

Based on the above information, please predict the user's rating for "{target_title}", (1 being the lowest and 5 being highest, directly give the rating without other content.)
[Output Format] Predicted Rating: [A rating between 1 and 5]\tGive your reply following the output format without any extra information."""

    built = {"wording": "published"}
    assert prompts.reasoner_prompt(product_class, target_title, USER_TWO, ITEM, **built) == generate_reason_prompt
    assert prompts.reasoner_prompt(product_class, target_title, USER_TWO, ITEM, hint_rating=target_rating, **built) == hinted_prompt
    assert prompts.predictor_prompt(product_class, target_title, USER_TWO, ITEM, 4.0, 4.5, None, **built) == direct_predict_prompt
    assert prompts.predictor_prompt(product_class, target_title, USER_TWO, ITEM, 4.0, 4.5, reasoning, **built) == reward_predict_prompt


def test_an_unknown_wording_names_the_choices():
    with pytest.raises(ValueError, match="prompting.wording must be one of 'paper', 'published', not 'publish'"):
        prompts.reasoner_prompt("Book", "Dune", USER, ITEM, wording="publish")
