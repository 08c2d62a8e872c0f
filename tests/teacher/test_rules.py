from reason4rec import prompts
from reason4rec.teacher import Teacher, TeacherRequest
from reason4rec.teacher.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend, summarize_review

H = prompts.HistoryEntry


def rules_teacher():
    return Teacher(RulesBackend(), AnswerCache(None), concurrency=1)


def test_summaries_parse_and_catch_aspect_sentiment():
    review = "Really enjoyed this one. The vocals are stunning. It is not worth the money. Shipping was quick."
    prompt = prompts.summarizer_prompt("Digital Music", "Golden Waves", 4.0, review)
    text = rules_teacher().complete([TeacherRequest(prompt)], stage="summarize")[0].text
    summary = prompts.parse_summary(text)
    assert summary == {"positive": "Vocals", "negative": "Value", "preferences": "Vocals, Value"}


def test_summary_of_a_review_without_aspects_still_has_three_fields():
    assert prompts.parse_summary(summarize_review("Arrived on time.")) == {"positive": "None", "negative": "None", "preferences": "None"}


def reasoner_prompt(hint=None):
    user = [H("A", "Vocals, Melody", "None", "Vocals, Melody"), H("B", "Vocals", "Production", "Vocals, Production")]
    item = [H("C", "Vocals, Melody", "None", "Vocals"), H("D", "Melody", "None", "Melody")]
    return prompts.reasoner_prompt("Digital Music", "Golden Waves", user, item, hint_rating=hint)


def test_reasons_follow_the_evidence_and_the_hint():
    teacher = rules_teacher()
    free, hinted_low, hinted_high = (
        a.text for a in teacher.complete([TeacherRequest(reasoner_prompt()), TeacherRequest(reasoner_prompt(1.0)), TeacherRequest(reasoner_prompt(5.0))], stage="r")
    )
    assert "vocals" in free and "enjoy" in free
    assert "not like" in hinted_low or "disappointed" in hinted_low
    assert "enjoy" in hinted_high or "will probably like" in hinted_high
    for text in (free, hinted_low, hinted_high):
        assert not prompts.reveals_rating(text)


def test_sampled_reasons_vary_by_sample_index_and_are_reproducible():
    requests = [TeacherRequest(reasoner_prompt(), temperature=1.0, sample_index=i) for i in range(8)]
    first = [a.text for a in rules_teacher().complete(requests, stage="r")]
    again = [a.text for a in rules_teacher().complete(requests, stage="r")]
    assert first == again and len(set(first)) > 1
