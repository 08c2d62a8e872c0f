import re

from reason4rec import prompts
from reason4rec.data.synthetic import MUSIC_ASPECTS
from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import ASPECT_KEYWORDS, RulesBackend, compose_reason, summarize_review

H = prompts.HistoryEntry
# What the synthetic world's evaluation counts as naming an aspect: a substring of the lower-cased reason.
VOCABULARY = sorted(set(MUSIC_ASPECTS) | set(ASPECT_KEYWORDS))


def rules_teacher():
    return CompletionClient(RulesBackend(), AnswerCache(None), concurrency=1)


def named(reason):
    return {a for a in VOCABULARY if a in reason.lower()}


def test_summaries_parse_and_catch_aspect_sentiment():
    review = "Really enjoyed this one. The vocals are stunning. It is not worth the money. Shipping was quick."
    prompt = prompts.summarizer_prompt("Digital Music", "Golden Waves", 4.0, review)
    text = rules_teacher().complete([CompletionRequest(prompt)], stage="summarize")[0].text
    summary = prompts.parse_summary(text)
    assert summary == {"positive": "Vocals", "negative": "Value", "preferences": "Vocals, Value"}


def test_summary_of_a_review_without_aspects_still_has_three_fields():
    assert prompts.parse_summary(summarize_review("Arrived on time.")) == {"positive": "None", "negative": "None", "preferences": "None"}


def reasoner_prompt(hint=None, wording="paper"):
    user = [H("A", "Vocals, Melody", "None", "Vocals, Melody"), H("B", "Vocals", "Production", "Vocals, Production")]
    item = [H("C", "Vocals, Melody", "None", "Vocals"), H("D", "Melody", "None", "Melody")]
    return prompts.reasoner_prompt("Digital Music", "Golden Waves", user, item, wording=wording, hint_rating=hint)


def taste_prompt(item_positive="Vocals, Production", item_negative="None", hint=None, incidental="Energy", wording="paper"):
    """A user who always names vocals and lyrics (and once something incidental); other reviewers
    judge the item on vocals and on aspects this user does not care about."""
    user = [
        H("A", "Vocals, Lyrics", "None", "Vocals, Lyrics"),
        H("B", "Vocals", "Lyrics", f"Vocals, Lyrics, {incidental}"),
        H("C", "Lyrics", "Vocals", "Vocals, Lyrics"),
    ]
    item = [
        H("D", item_positive, item_negative, "Vocals, Production"),
        H("E", "Production", "None", f"Production, {incidental}"),
    ]
    return prompts.reasoner_prompt("Digital Music", "Golden Waves Vol. 3", user, item, wording=wording, hint_rating=hint)


def reasons_of(prompt, samples=12):
    return [compose_reason(prompt, 0.0, 0)] + [compose_reason(prompt, 0.9, i) for i in range(samples)]


def test_reasons_follow_the_evidence_and_the_hint():
    teacher = rules_teacher()
    free, hinted_low, hinted_high = (
        a.text for a in teacher.complete([CompletionRequest(reasoner_prompt()), CompletionRequest(reasoner_prompt(1.0)), CompletionRequest(reasoner_prompt(5.0))], stage="r")
    )
    assert "vocals" in free and "love" in free
    assert "disappointed" in hinted_low
    assert "love" in hinted_high
    for text in (free, hinted_low, hinted_high):
        assert not prompts.reveals_rating(text)


def test_reasons_name_what_the_user_cares_about_and_others_judged_and_nothing_else():
    # Vocals: the user always names it and others praise it. Lyrics: only the user;
    # production: only other reviewers; energy: once on each side, incidental.
    for hint in (None, 1.0, 3.0, 5.0):
        for reason in reasons_of(taste_prompt(hint=hint)):
            assert named(reason) == {"vocals"}, reason


def test_a_shared_aspect_keeps_the_side_other_reviewers_take():
    praised = compose_reason(taste_prompt(item_positive="Vocals"), 0.0, 0)
    faulted = compose_reason(taste_prompt(item_positive="None", item_negative="Vocals"), 0.0, 0)
    assert "praise its vocals" in praised
    assert "criticise its vocals" in faulted


def test_without_shared_aspects_the_user_interests_are_named():
    reason = compose_reason(taste_prompt(item_positive="Production"), 0.0, 0)
    assert named(reason) == {"vocals", "lyrics"}


def test_the_hint_sets_the_direction_even_against_the_evidence():
    faulted = dict(item_positive="None", item_negative="Vocals")
    assert "love" in compose_reason(taste_prompt(**faulted, hint=5.0), 0.0, 0)
    assert compose_reason(taste_prompt(**faulted, hint=4.0), 0.0, 0).split(". ")[1] == "Still, the user will probably enjoy it."
    assert "mixed feelings" in compose_reason(taste_prompt(hint=3.0), 0.0, 0)
    assert "disappointed" in compose_reason(taste_prompt(hint=2.0), 0.0, 0)


def test_without_a_hint_the_verdict_steps_with_the_balance_of_praise_and_faults():
    def free_reason(praised, faulted):
        user = [H(t, "Vocals, Lyrics, Melody", "None", "Vocals, Lyrics, Melody") for t in "AB"]
        item = [H("C", praised or "None", faulted or "None", "Vocals, Lyrics, Melody")]
        return compose_reason(prompts.reasoner_prompt("Digital Music", "T", user, item, wording="paper"), 0.0, 0)

    assert "love" in free_reason("Vocals", "")
    assert "love" in free_reason("Vocals, Lyrics", "Melody")
    assert "enjoy" in free_reason("", "")
    assert "enjoy" in free_reason("Melody", "Vocals")
    assert "mixed feelings" in free_reason("", "Vocals")
    assert "mixed feelings" in free_reason("Melody", "Vocals, Lyrics")
    assert "disappointed" in free_reason("", "Vocals, Lyrics")
    assert "disappointed" in free_reason("", "Vocals, Lyrics, Melody")


def test_no_reason_reveals_a_rating_not_even_through_an_aspect_name():
    for hint in (None, 1.0, 2.5, 5.0):
        for reason in reasons_of(taste_prompt(hint=hint, incidental="Star Quality, 80s Vibe, Rating Scale")):
            assert not prompts.reveals_rating(reason) and not re.search(r"\d", reason), reason


def test_reasons_are_one_short_paragraph():
    for prompt in (taste_prompt(), taste_prompt(item_negative="Vocals, Lyrics", hint=3.0), reasoner_prompt(5.0)):
        for reason in reasons_of(prompt):
            assert "\n" not in reason and len(reason.split()) <= 45, reason


def test_a_prompt_with_empty_histories_still_gets_a_reason():
    reason = compose_reason(prompts.reasoner_prompt("Book", "T", [], [], wording="paper"), 0.9, 0)
    assert reason and not named(reason) and not prompts.reveals_rating(reason)


def test_sampled_reasons_vary_by_sample_index_and_are_reproducible():
    requests = [CompletionRequest(reasoner_prompt(), temperature=1.0, sample_index=i) for i in range(8)]
    first = [a.text for a in rules_teacher().complete(requests, stage="r")]
    again = [a.text for a in rules_teacher().complete(requests, stage="r")]
    assert first == again and len(set(first)) > 1
    assert len({compose_reason(reasoner_prompt(), 0.0, i) for i in range(4)}) == 1


def test_a_reason_does_not_depend_on_the_process_string_hash_seed():
    """Aspects tied in how often the user names them keep one order in every process
    (a set's order follows string hashes, which Python randomizes per process)."""
    import os
    import subprocess
    import sys

    user = [H("A", "Vocals, Melody, Energy, Lyrics", "None", "Vocals, Melody, Energy, Lyrics, Rhythm")] * 2
    item = [H("C", "Vocals, Melody, Energy, Lyrics, Rhythm", "None", "Vocals, Melody, Energy, Lyrics, Rhythm")]
    prompt = prompts.reasoner_prompt("Digital Music", "Golden Waves", user, item, wording="paper")
    code = "import sys; from reason4rec.teacher.rules import compose_reason; print(compose_reason(sys.stdin.read(), 0.0, 0))"
    reasons = {
        subprocess.run([sys.executable, "-c", code], input=prompt, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(reasons) == 1, reasons


def test_a_review_inferred_reason_names_what_the_review_praises_and_criticises():
    """Table 4 and 5's "Review-inferred Reason": asked with the review in the prompt, the
    rules teacher reasons from the review, not from the histories."""
    user = [prompts.HistoryEntry("A", "Melody", "None", "Melody", 4.0)]
    item = [prompts.HistoryEntry("B", "Melody", "None", "Melody", 5.0)]
    teacher = CompletionClient(RulesBackend(), AnswerCache(None), concurrency=1)
    asked = {
        review: prompts.review_inferred_prompt("Digital Music", "Silent Waves", user, item, review, wording="paper")
        for review in (
            "Really enjoyed this one. The vocals are stunning. The mix is a mess.",
            "Disappointed. The lyrics are shallow. It sounds tinny.",
            "What a great album. The lyrics are thoughtful.",
        )
    }
    mixed, negative, positive = (a.text for a in teacher.complete([CompletionRequest(p) for p in asked.values()], stage="test"))
    assert mixed.startswith("In the review the user praises its vocals but criticises its production.") and "probably enjoy" in mixed
    assert negative.startswith("In the review the user criticises its lyrics") and "disappointed" in negative
    assert "praises its lyrics" in positive and "very likely love" in positive
    assert "melody" not in mixed + negative + positive  # the histories' aspect is not what it reasons from
    assert not any(prompts.reveals_rating(r) for r in (mixed, negative, positive))


def test_the_rules_teacher_reads_either_prompt_wording_alike():
    """``prompting.wording: published`` (conf/paper) words the same histories and hint differently:
    the rules teacher finds the same evidence and hint in both (a sampled reason's phrasing is
    seeded by the prompt's text, so only the greedy one is compared word for word)."""
    for make in (reasoner_prompt, taste_prompt):
        for hint in (None, 1.0, 3.0, 5.0):
            paper, published = make(hint=hint), make(hint=hint, wording="published")
            assert paper != published and compose_reason(paper, 0.0, 0) == compose_reason(published, 0.0, 0)
            assert [named(r) for r in reasons_of(paper)] == [named(r) for r in reasons_of(published)]
