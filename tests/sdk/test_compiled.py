"""The SDK's compiled answer functions agree with core.evaluate for every rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.evaluation import ARM_OF_REASON, evaluate
from rollout.core.model import Flag, KillRecord, State
from rollout.sdk.compiled import CONTROL, TREATMENT, compile_flag

user_ids = st.one_of(st.text(max_size=12), st.integers(min_value=-(10**6), max_value=10**6))
flags = st.builds(
    lambda percent, allow, deny, killed, salt: Flag(
        key="F",
        salt=salt,
        state=State.KILLED if killed else State.ROLLING,
        percent_bp=percent,
        allow=tuple(allow),
        deny=tuple(deny),
        kill=KillRecord("r", "b", 0, State.ROLLING, None, 0) if killed else None,
    ),
    st.integers(min_value=0, max_value=10_000),
    st.lists(st.sampled_from(["a", "b", "1", "c"]), max_size=3),
    st.lists(st.sampled_from(["b", "d", "2"]), max_size=3),
    st.booleans(),
    st.text(max_size=8),
)


@settings(max_examples=500)
@given(
    flag=st.one_of(st.none(), flags),
    override=st.sampled_from([None, True, False]),
    default=st.booleans(),
    users=st.lists(user_ids, min_size=1, max_size=5),
)
def test_compiled_matches_evaluate(
    flag: Flag | None, override: bool | None, default: bool, users: list[object]
) -> None:
    compiled = compile_flag(flag, override, default, "F")
    for user in users:
        expected = evaluate(flag, str(user), override=override, default=default)
        arm = ARM_OF_REASON.get(expected.reason)
        before = compiled.exposures()
        assert compiled.check(user) is expected.enabled
        code = compiled.assign(user)
        assert (code & 1 == 1) is expected.enabled
        assert {CONTROL: "control", TREATMENT: "treatment"}.get(code) == arm
        # An exposure is counted in the arm of a bucketed answer, and only then.
        grew = [after - b for after, b in zip(compiled.exposures(), before, strict=True)]
        assert grew == ([0, 0] if arm is None else [arm == "control", arm == "treatment"])


def test_unprintable_user_gets_the_default() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __hash__ = None  # type: ignore[assignment]

    flag = Flag(key="F", salt="F", state=State.ROLLING, percent_bp=5000, allow=("a",))
    assert compile_flag(flag, None, True, "F").check(Hostile()) is True
    assert compile_flag(flag, None, False, "F").check(Hostile()) is False
