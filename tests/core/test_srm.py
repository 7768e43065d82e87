"""Sample ratio mismatch (DESIGN §4.2): the split check, table-driven, and what decide does."""

from __future__ import annotations

import pytest

from rollout.core.decide import decide
from rollout.core.events import status_entries
from rollout.core.evidence import Arms, ArmStats
from rollout.core.model import Flag, State
from rollout.core.srm import check_split
from rollout.core.vocabulary import MISMATCH_WORD, STATUS_EVENTS, TERMS, Action
from tests.core.test_decide import ALL_PASS, ENOUGH, NOW, flag


def arms(t_exposures: int, c_exposures: int, t_samples: int, c_samples: int) -> Arms:
    return Arms(
        treatment=ArmStats(samples=t_samples, exposures=t_exposures),
        control=ArmStats(samples=c_samples, exposures=c_exposures),
    )


AT_10 = Flag(key="F", percent_bp=1000)

# (id, flag, arms, verdict, words)
CASES = [
    ("correct-split-passes", AT_10, arms(10_000, 90_000, 1_000, 9_000), "pass",
     "agree with 10%"),
    ("treatment-only-samples", AT_10, arms(10_000, 90_000, 300, 0), "mismatch",
     "treatment share of samples 100% (of 300) vs expected 10%"),
    ("exposures-off-samples-fine", AT_10, arms(11_000, 89_000, 1_000, 9_000), "mismatch",
     "treatment share of exposures 11% (of 100000)"),
    ("11pct-of-50000-is-flagged", AT_10, arms(0, 0, 5_500, 44_500), "mismatch",
     "samples 11%"),
    ("11pct-of-5000-is-not-yet", AT_10, arms(0, 0, 550, 4_450), "pass", "samples 11%"),
    ("nothing-yet", AT_10, arms(0, 0, 0, 0), "insufficient", "no bucketed"),
    ("100pct-one-arm", Flag(key="F", percent_bp=10_000), arms(100, 0, 100, 0), "insufficient",
     "one arm only"),
    ("0pct-one-arm", Flag(key="F", percent_bp=0), arms(0, 100, 0, 100), "insufficient",
     "one arm only"),
    ("torn-negative-counts-do-not-crash", AT_10, arms(-1, 5, 0, -3), "pass", "exposures 0%"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("flag_", "stage", "verdict", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_check_split(flag_: Flag, stage: Arms, verdict: str, words: str) -> None:
    reading = check_split(flag_, stage)
    assert reading.verdict == verdict, reading.why
    assert words in reading.why
    out = reading.to_dict()
    assert set(out) == {"verdict", "expected", "observed", "statistic"}
    assert out["expected"] == flag_.percent_bp / 10_000


def test_more_evidence_of_the_same_skew_only_grows_the_statistic() -> None:
    seen = [
        check_split(AT_10, arms(0, 0, 11 * k, 89 * k)).statistic["samples"] for k in (10, 100, 1000)
    ]
    assert seen == sorted(seen)


def mismatched(srm: str) -> Flag:
    return flag().with_changes(srm=srm)


SKEW = check_split(AT_10, arms(0, 0, 300, 0))


def test_a_mismatch_holds_with_its_own_word_and_never_advances() -> None:
    decision = decide(mismatched("hold"), ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW)
    assert (decision.action, decision.status_word) == (Action.HOLD, MISMATCH_WORD)
    assert decision.status_word == "sample_ratio_mismatch"
    assert "expected 10%" in decision.why and "100%" in decision.why


def test_srm_kill_kills_and_warn_only_reports() -> None:
    killed = decide(mismatched("kill"), ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW)
    assert killed.action is Action.KILL and "sample_ratio_mismatch" in killed.why
    warned = decide(mismatched("warn"), ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW)
    assert warned.action is Action.ADVANCE
    # A paused flag holds as paused; a killed one is never touched.
    paused = flag(State.PAUSED).with_changes(srm="kill")
    assert decide(paused, ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW).action is Action.KILL
    dead = flag(State.KILLED, None).with_changes(srm="kill")
    assert decide(dead, ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW).action is Action.WATCH


def test_the_vocabulary_has_the_mismatch_row() -> None:
    (row,) = [t for t in TERMS if t.cause]
    assert (row.action, row.status) == (Action.HOLD, "sample_ratio_mismatch")
    assert row.event == "sample_ratio_mismatch" and row.event in STATUS_EVENTS


def test_a_mismatch_hold_appends_its_event_once_per_stage() -> None:
    """The mark names the stage's epoch, as for awaiting_approval; the reason carries the
    figures. A plain hold (bake, samples) and srm = "warn" append nothing."""
    held = mismatched("hold")
    decision = decide(held, ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW)
    [entry] = status_entries(held, decision, NOW, "controller")
    assert entry.mark == f"{held.stage_started_at or 0}|sample_ratio_mismatch"
    assert entry.fields["type"] == "sample_ratio_mismatch"
    assert "expected 10%" in entry.fields["reason"]
    warned = decide(mismatched("warn"), ALL_PASS, NOW, stage_samples=ENOUGH, srm=SKEW)
    assert warned.action is Action.ADVANCE
    assert status_entries(mismatched("warn"), warned, NOW, "controller") == []
    plain = decide(held, ALL_PASS, NOW, stage_samples=0, srm=check_split(AT_10, arms(0, 0, 0, 0)))
    assert plain.action is Action.HOLD and status_entries(held, plain, NOW, "controller") == []
