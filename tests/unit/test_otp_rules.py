"""The OTP rules as pure functions: any state, any attempt."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from eidentity import otp

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=20), st.booleans(), st.booleans(), st.integers(-600, 600))
def test_judge_matches_the_written_rule(
    attempts: int, consumed: bool, matches: bool, offset: int
) -> None:
    state = otp.OtpState(NOW + timedelta(seconds=offset), attempts, consumed)
    verdict = otp.judge(state, matches, NOW)
    if consumed or offset <= 0:
        assert verdict == otp.Verdict.EXPIRED
    elif attempts >= otp.MAX_ATTEMPTS:
        assert verdict == otp.Verdict.LOCKED
    else:
        assert verdict == (otp.Verdict.OK if matches else otp.Verdict.WRONG)


def test_codes_are_six_digits_and_vary() -> None:
    codes = {otp.new_code() for _ in range(200)}
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(codes) > 150


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_sms_text_holds_the_code_as_its_only_six_digit_run(code: str) -> None:
    text = otp.sms_text(code)
    assert re.findall(r"(?<!\d)\d{6}(?!\d)", text) == [code]
    assert len(text) <= 160


def test_code_hash_is_keyed_and_bound_to_the_challenge() -> None:
    a = otp.code_hash(b"k1", "c1", "123456")
    assert a != otp.code_hash(b"k2", "c1", "123456")
    assert a != otp.code_hash(b"k1", "c2", "123456")
    assert a == otp.code_hash(b"k1", "c1", "123456")
