"""The judge against people's feedback: agreement, Cohen's kappa and
position-swap consistency (llmapp.evaluation.agreement)."""

import pytest

from llmapp.chat import ChatMessage, ChatStore
from llmapp.evaluation.agreement import Preference, check_judge, cohen_kappa, compare, question_of
from llmapp.evaluation.judge import Judgement
from llmapp.feedback import DOWN, UP, list_feedback, save_feedback
from llmapp.storage import Database


def test_kappa_matches_a_worked_example():
    # 50 items: both yes 20, first yes second no 5, first no second yes 10, both no 15:
    # p_o = 0.7, p_e = 0.5 x 0.6 + 0.5 x 0.4 = 0.5, kappa = 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(first, first) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_kappa_is_undefined_without_variation_or_items():
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["up"] * 3, ["up"] * 3) is None
    with pytest.raises(ValueError, match="3 labels against 2"):
        cohen_kappa([1, 2, 3], [1, 2])


@pytest.fixture
def rated(tmp_path):
    """Five replies with scripted thumbs (up, up, down, down, up) and two
    corrections, saved as the pages save them."""
    database = Database(f"sqlite:///{tmp_path}/feedback.sqlite3")
    store = ChatStore()
    thumbs = [UP, UP, DOWN, DOWN, UP]
    for n, thumb in enumerate(thumbs):
        store.add_user(f"Question {n}?")
        reply = store.add(ChatMessage("assistant", f"Reply {n}."))
        save_feedback(database, store, reply, rating=thumb)
        if n in (2, 3):
            save_feedback(database, store, reply, correction=f"Better reply {n}.")
    yield list_feedback(database)
    database.close()


def scripted_judge(scores, preferences):
    """A judge at llmapp's boundary: the scores it gives in turn, and the
    pairwise answers ("A", "B", "tie", None) in turn."""
    scores, preferences = list(scores), list(preferences)
    seen = []

    def grade(_settings, question, reply):
        seen.append((question, reply))
        score = scores.pop(0)
        return Judgement("helpfulness", score, f"scored {score}")

    def prefer(_settings, question, a, b):
        seen.append((question, a, b))
        return Preference(preferences.pop(0), "because")
    return grade, prefer, seen


def test_agreement_kappa_and_swaps_are_exact(rated, local_settings):
    # judge verdicts: up, down, down, up, up against thumbs up, up, down, down, up
    grade, prefer, seen = scripted_judge(
        [3, 1, 0, 2, 3],
        ["B", "A",     # item 2: the correction second, then first: the correction both times
         "A", "A"])    # item 3: always the first answer: position bias, inconsistent
    report = check_judge(rated, local_settings, grade=grade, prefer=prefer)
    assert (report.rated, report.scored, report.status) == (5, 5, "complete")
    assert report.agreement == pytest.approx(0.6)
    # p_o 0.6; both raters up 3 of 5: p_e = 0.36 + 0.16 = 0.52; kappa = 0.08 / 0.48
    assert report.kappa == pytest.approx(0.08 / 0.48)
    assert report.confusion == {"up/up": 2, "up/down": 1, "down/down": 1, "down/up": 1}
    assert (report.pairs, report.consistent, report.prefers_correction) == (2, 1, 1)
    assert report.consistency == pytest.approx(0.5)
    assert report.items[2].swap == ["correction", "correction"]
    assert report.items[3].swap == ["reply", "correction"]
    assert ("Question 2?", "Reply 2.", "Better reply 2.") in seen
    assert ("Question 2?", "Better reply 2.", "Reply 2.") in seen


def test_unscored_grades_and_a_stop_are_counted_honestly(rated, local_settings):
    grade, prefer, _ = scripted_judge([None, 3, 0], [None, "B"])
    done = []
    report = check_judge(rated, local_settings, grade=grade, prefer=prefer,
                         on_item=lambda i, item: done.append(i),
                         should_stop=lambda: len(done) >= 3)
    assert report.status == "stopped" and done == [0, 1, 2]
    assert (report.rated, report.scored) == (3, 2)  # the unscored one is not counted
    assert report.agreement == pytest.approx(1.0) and report.kappa == pytest.approx(1.0)
    assert (report.pairs, report.consistent) == (1, 0)  # an unscored verdict is never consistent


@pytest.mark.slow
def test_the_bundled_model_judges_a_reply_and_a_pair(rated, local_settings):
    [first, *_] = rated
    assert question_of(first) == "Question 0?"
    verdict = compare(local_settings, "Name two fruits.", "Apples and pears.", "Blue.")
    assert verdict.better in ("A", "B", "tie") and verdict.reason
    report = check_judge(rated[:1], local_settings)
    assert report.items[0].score in (0, 1, 2, 3) and report.items[0].reason


@pytest.mark.slow
def test_llmapp_eval_judge_reports_on_the_feedback(rated, tmp_path):
    import json

    from helpers import run_cli

    env = {"LLMAPP_DATABASE_URL": f"sqlite:///{tmp_path}/feedback.sqlite3"}
    done = run_cli("eval", "judge", "--limit", "2", "--json", **env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rated"] == 2 and len(report["items"]) == 2  # the two most recent
    assert report["pairs"] == 1 and "[2/2]" in done.stderr  # reply 3 was corrected
    text = run_cli("eval", "judge", "--limit", "1", **env)
    assert "rated replies 1, graded" in text.stdout and "Cohen's kappa" in text.stdout
    empty = run_cli("eval", "judge", LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/none.sqlite3")
    assert empty.returncode == 0 and "No feedback yet" in empty.stdout
    bad = run_cli("eval", "judge", "--limit", "0", **env)
    assert bad.returncode == 2 and "--limit must be at least 1" in bad.stderr
