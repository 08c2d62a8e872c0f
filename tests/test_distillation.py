"""Algorithm 1 with a fake teacher and a fake reward scorer."""

import pandas as pd
import pytest

from reason4rec.distillation import AttemptJournal, accepted_reasons, distill_reasons
from reason4rec.parameters import DistillReasons
from reason4rec.completions import CompletionAnswer

PROMPTING = {"domain": "Digital Music", "wording": "paper", "history_length": 3}
ENTRY = {"title": "T", "positive": "Melody", "negative": "None", "preferences": "Melody", "rating": 4.0}


def contexts(n):
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "item_id": [f"i{i}" for i in range(n)],
            "rating": [5.0] * n,
            "review": [f"review {i}" for i in range(n)],
            "title": ["Album"] * n,
            "timestamp": [0] * n,
            "user_history": [[ENTRY]] * n,
            "item_history": [[ENTRY]] * n,
            "user_mean_rating": [4.0] * n,
            "item_mean_rating": [4.0] * n,
        }
    )


class FakeTeacher:
    """Answers 'good' for a pair once ``good_from`` attempts have been made; records every request."""

    def __init__(self, good_from, forbidden_at=()):
        self.good_from, self.forbidden_at, self.requests = good_from, forbidden_at, []

    def __call__(self, requests):
        self.requests += requests
        answers = []
        for request in requests:
            if request.sample_index in self.forbidden_at:
                answers.append(CompletionAnswer("It is a 5.0 for sure"))
            else:
                answers.append(CompletionAnswer("good" if request.sample_index >= self.good_from else "bad"))
        return answers


def fake_score(prompts):
    """Reward model: the review predicts 4.8; a good reason 4.75, a bad one 3.0, no reason 4.0."""
    scores = []
    for prompt in prompts:
        analysis = prompt.split("### Personalized Recommendation Analysis ###\n")[1].split("\n")[0] if "Analysis ###" in prompt else None
        scores.append({"good": 4.75, "bad": 3.0, None: 4.0}.get(analysis, 4.8))
    return scores


def config(**overrides):
    return DistillReasons(**{"max_attempts": 10, "tau": 0.1, "baseline": "review", "temperature": 0.9, "max_tokens": 64, "chunk_size": 2, **overrides})


def test_accepts_when_s_eval_below_tau_and_hints_only_after_the_first_attempt():
    teacher = FakeTeacher(good_from=2)
    attempts = distill_reasons(contexts(3), teacher, fake_score, config(), AttemptJournal(None), PROMPTING)
    assert attempts.groupby("pair_id").size().tolist() == [3, 3, 3]
    assert attempts["accepted"].tolist() == [False, False, True] * 3
    first = [r for r in teacher.requests if r.sample_index == 0]
    later = [r for r in teacher.requests if r.sample_index > 0]
    assert all("Hint:" not in r.prompt for r in first) and all("Hint: The user actually rated the item 5 stars" in r.prompt for r in later)
    # The retry prompt is the first prompt plus the hint, nothing else.
    assert later[0].prompt.startswith(first[0].prompt) and later[0].prompt[len(first[0].prompt):].startswith("\n\nHint:")
    accepted = attempts[attempts["accepted"]].iloc[0]
    assert accepted["s_eval"] == pytest.approx(abs(5 - 4.75) - abs(5 - 4.8))


def test_stops_after_t_attempts():
    attempts = distill_reasons(contexts(2), FakeTeacher(good_from=99), fake_score, config(max_attempts=4), AttemptJournal(None), PROMPTING)
    assert attempts.groupby("pair_id").size().tolist() == [4, 4] and not attempts["accepted"].any()
    assert (attempts["status"] == "rejected_by_reward").all()


def test_forbidden_words_reject_without_scoring():
    attempts = distill_reasons(contexts(1), FakeTeacher(good_from=0, forbidden_at=(0,)), fake_score, config(), AttemptJournal(None), PROMPTING)
    assert attempts["status"].tolist() == ["forbidden_word", "accepted"]
    assert pd.isna(attempts["r_reason"].iloc[0])


def test_a_reason_cut_at_the_token_budget_is_not_judged():
    def cut_first(requests):  # the first sample of each pair uses all 64 tokens; the next is a good reason
        return [CompletionAnswer("good but cut", completion_tokens=64) if r.sample_index == 0 else CompletionAnswer("good", completion_tokens=5) for r in requests]

    attempts = distill_reasons(contexts(1), cut_first, fake_score, config(), AttemptJournal(None), PROMPTING)
    assert attempts["status"].tolist() == ["truncated", "accepted"] and pd.isna(attempts["r_reason"].iloc[0])


def test_both_baselines():
    review = distill_reasons(contexts(1), FakeTeacher(good_from=0), fake_score, config(), AttemptJournal(None), PROMPTING)
    none = distill_reasons(contexts(1), FakeTeacher(good_from=0), fake_score, config(baseline="none"), AttemptJournal(None), PROMPTING)
    assert review["r_baseline"].iloc[0] == 4.8 and none["r_baseline"].iloc[0] == 4.0
    assert none["s_eval"].iloc[0] == pytest.approx(abs(5 - 4.75) - abs(5 - 4.0))
    with pytest.raises(ValueError, match="baseline must be"):
        config(baseline="oracle")


def test_failed_teacher_calls_are_recorded_attempts():
    def failing(requests):
        return [CompletionAnswer(None, error="HTTP 500") for _ in requests]

    attempts = distill_reasons(contexts(1), failing, fake_score, config(max_attempts=2), AttemptJournal(None), PROMPTING)
    assert attempts["status"].tolist() == ["teacher_failed", "teacher_failed"] and attempts["teacher_error"].iloc[0] == "HTTP 500"


def test_resume_from_the_journal_repeats_no_finished_pair(tmp_path):
    journal = AttemptJournal(tmp_path / "journal.jsonl")
    first_teacher = FakeTeacher(good_from=1)
    first = distill_reasons(contexts(4).iloc[:2], first_teacher, fake_score, config(), journal, PROMPTING)  # "killed" after two pairs
    second_teacher = FakeTeacher(good_from=1)
    full = distill_reasons(contexts(4), second_teacher, fake_score, config(), journal, PROMPTING)
    assert len(second_teacher.requests) == 4  # two attempts for each of the two new pairs only
    assert len(full) == 8 and full.iloc[:4].reset_index(drop=True).equals(first.reset_index(drop=True))
    assert {r.sample_index for r in second_teacher.requests} == {0, 1}
    # A torn last line (crash mid-write) is ignored, and that round is redone.
    with open(tmp_path / "journal.jsonl", "a") as handle:
        handle.write('{"pair_id": "u9|i9", "attem')
    assert len(journal.read()) == 8


def test_tau_can_be_re_decided_from_the_attempts():
    attempts = distill_reasons(contexts(1), FakeTeacher(good_from=2), fake_score, config(), AttemptJournal(None), PROMPTING)
    assert accepted_reasons(attempts)["attempt"].tolist() == [2]
    assert accepted_reasons(attempts, tau=5.0)["attempt"].tolist() == [0]
