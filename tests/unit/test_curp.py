"""Tests for eidentity.curp.

The check-digit rule is re-implemented here on purpose (``model_*``), written differently from
the module (arithmetic on code points instead of a dictionary lookup, ``-sum % 10`` instead of
``(10 - sum % 10) % 10``) so the two can disagree if either is wrong. The state codes and the
inconvenient words are likewise copied independently from RENAPO's published lists.
"""

from __future__ import annotations

import json
import pickle
import re
import string
from datetime import date
from typing import get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from eidentity import curp as curp_module
from eidentity.curp import (
    STATES,
    Curp,
    CurpError,
    CurpPart,
    check_digit,
    make_curp,
    parse_curp,
    validate_curp,
)
from tests.paths import FIXTURES

VECTORS_PATH = FIXTURES / "curp-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

DICTIONARY = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
LETTERS = string.ascii_uppercase
VOWELS_OR_X = "AEIOUX"
CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"
SEXES = "HMX"
# fmt: off
STATE_CODES = (
    "AS", "BC", "BS", "CC", "CL", "CM", "CS", "CH", "DF", "DG", "GT", "GR", "HG", "JC", "MC", "MN",
    "MS", "NT", "NL", "OC", "PL", "QT", "QR", "SP", "SL", "SR", "TC", "TS", "TL", "VZ", "YN", "ZS",
    "NE",
)
INCONVENIENT_WORDS = frozenset({
    "BACA", "BAKA", "BUEI", "BUEY", "CACA", "CACO", "CAGA", "CAGO", "CAKA", "CAKO", "COGE",
    "COGI", "COJA", "COJE", "COJI", "COJO", "COLA", "CULO", "FALO", "FETO", "GETA", "GUEI",
    "GUEY", "JETA", "JOTO", "KACA", "KACO", "KAGA", "KAGO", "KAKA", "KAKO", "KOGE", "KOGI",
    "KOJA", "KOJE", "KOJI", "KOJO", "KOLA", "KULO", "LILO", "LOCA", "LOCO", "LOKA", "LOKO",
    "MAME", "MAMO", "MEAR", "MEAS", "MEON", "MIAR", "MION", "MOCO", "MOKO", "MULA", "MULO",
    "NACA", "NACO", "PEDA", "PEDO", "PENE", "PIPI", "PITO", "POPO", "PUTA", "PUTO", "QULO",
    "RATA", "ROBA", "ROBE", "ROBO", "RUIN", "SENO", "TETA", "VACA", "VAGA", "VAGO", "VAKA",
    "VUEI", "VUEY", "WUEI", "WUEY",
})
# fmt: on
WHITESPACE = [" ", "\t", "\n", "\r\n", "\u00a0", "\u2003"]


# --- independent model of the check digit -------------------------------------------------


def model_value(ch: str) -> int:
    if ch in string.digits:
        return ord(ch) - ord("0")
    if ch == "Ñ":
        return 24
    assert ch in LETTERS
    return ord(ch) - ord("A") + 10 + (1 if ch > "N" else 0)


def model_weighted_sum(prefix: str) -> int:
    assert len(prefix) == 17
    return sum((18 - i) * model_value(ch) for i, ch in enumerate(prefix))


def model_check_digit(prefix: str) -> str:
    return str(-model_weighted_sum(prefix) % 10)


def with_check_digit(prefix: str) -> str:
    return prefix + model_check_digit(prefix)


# --- strategies -------------------------------------------------------------------------------

initials_st = (
    st.tuples(
        st.sampled_from(LETTERS),
        st.sampled_from(VOWELS_OR_X),
        st.sampled_from(LETTERS),
        st.sampled_from(LETTERS),
    )
    .map("".join)
    .filter(lambda s: s not in INCONVENIENT_WORDS)
)
consonants_st = st.text(alphabet=CONSONANTS, min_size=3, max_size=3)
birth_date_st = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


@st.composite
def curp_parts(draw: st.DrawFn) -> dict[str, object]:
    born = draw(birth_date_st)
    return {
        "initials": draw(initials_st),
        "birth_date": born,
        "sex": draw(st.sampled_from(SEXES)),
        "state": draw(st.sampled_from(STATE_CODES)),
        "consonants": draw(consonants_st),
        "differentiator": draw(st.sampled_from(string.digits if born.year < 2000 else LETTERS)),
    }


def build(parts: dict[str, object]) -> str:
    born = parts["birth_date"]
    assert isinstance(born, date)
    prefix = "".join(
        [
            str(parts["initials"]),
            f"{born.year % 100:02d}{born.month:02d}{born.day:02d}",
            str(parts["sex"]),
            str(parts["state"]),
            str(parts["consonants"]),
            str(parts["differentiator"]),
        ]
    )
    return with_check_digit(prefix)


valid_curps = curp_parts().map(build)


def refusal(raw: str) -> CurpError:
    with pytest.raises(CurpError) as info:
        parse_curp(raw)
    return info.value


# --- golden vectors -----------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["valid"])
def test_fixture_valid_vectors_parse(vector: str) -> None:
    parsed = parse_curp(vector)
    century = 1900 if vector[16].isdigit() else 2000
    assert parsed.value == vector
    assert parsed.birth_date == date(
        century + int(vector[4:6]), int(vector[6:8]), int(vector[8:10])
    )
    assert parsed.sex == vector[10]
    assert parsed.state == vector[11:13]


@pytest.mark.parametrize(("vector", "why"), sorted(VECTORS["invalid"].items()))
def test_fixture_invalid_vectors_name_the_right_digit(vector: str, why: str) -> None:
    right = re.search(r"right digit is (\d)", why)
    assert right is not None, why
    error = refusal(vector)
    assert error.part == "check-digit"
    assert error.message == (
        f"El dígito verificador de la CURP no es correcto: debería ser {right.group(1)}."
    )
    assert parse_curp(vector[:17] + right.group(1)).value == vector[:17] + right.group(1)


def test_worked_example() -> None:
    example = VECTORS["worked_example"]
    assert model_weighted_sum(example["prefix"]) == example["weighted_sum"] == 1708
    assert check_digit(example["prefix"]) == example["check_digit"] == "2"
    assert parse_curp(example["prefix"] + "2").birth_date == date(1981, 8, 9)


def test_spec_vector_born_abroad_in_1931() -> None:
    parsed = parse_curp("BOXW310820HNERXN09")
    assert (parsed.birth_date, parsed.sex, parsed.state) == (date(1931, 8, 20), "H", "NE")
    assert STATES[parsed.state] == "Nacido en el extranjero"


def test_state_catalogue_is_the_33_renapo_codes() -> None:
    assert len(STATE_CODES) == 33
    assert set(STATES) == set(STATE_CODES)


# --- properties ---------------------------------------------------------------------------


@given(parts=curp_parts())
def test_generated_curp_round_trips(parts: dict[str, object]) -> None:
    value = build(parts)
    parsed = parse_curp(value)
    assert parsed.value == value
    assert str(parsed) == value
    assert parsed.birth_date == parts["birth_date"]
    assert parsed.sex == parts["sex"]
    assert parsed.state == parts["state"]
    assert parse_curp(parsed.value) == parsed


@given(parts=curp_parts())
def test_make_curp_agrees_with_independent_builder(parts: dict[str, object]) -> None:
    born = parts["birth_date"]
    assert isinstance(born, date)
    made = make_curp(
        str(parts["initials"]).lower(),
        born,
        str(parts["sex"]),
        str(parts["state"]),
        str(parts["consonants"]),
        str(parts["differentiator"]),
    )
    assert made == build(parts)


@given(prefix=st.text(alphabet=DICTIONARY, min_size=17, max_size=17))
def test_check_digit_matches_independent_model(prefix: str) -> None:
    assert check_digit(prefix) == model_check_digit(prefix)


@given(
    value=valid_curps,
    before=st.lists(st.sampled_from(WHITESPACE), max_size=3).map("".join),
    after=st.lists(st.sampled_from(WHITESPACE), max_size=3).map("".join),
    lower=st.lists(st.booleans(), min_size=18, max_size=18),
)
def test_lower_case_and_surrounding_whitespace_are_normalised(
    value: str, before: str, after: str, lower: list[bool]
) -> None:
    typed = "".join(ch.lower() if low else ch for ch, low in zip(value, lower, strict=True))
    raw = before + typed + after
    assert Curp.normalize(raw) == value
    assert parse_curp(raw).value == value


@given(value=valid_curps, at=st.integers(1, 17), space=st.sampled_from(WHITESPACE))
def test_inner_whitespace_is_refused(value: str, at: int, space: str) -> None:
    error = refusal(value[:at] + space + value[at:])
    assert error.part == "characters"
    assert "espacios" in error.message


@given(
    value=valid_curps,
    position=st.integers(0, 16),
    replacement=st.sampled_from(DICTIONARY),
)
def test_single_substitution_is_caught_exactly_when_the_weights_allow(
    value: str, position: int, replacement: str
) -> None:
    assume(replacement != value[position])
    _check_substitution(value, position, replacement)


def _check_substitution(value: str, position: int, replacement: str) -> str:
    """Assert the precise behaviour of one substitution; return which case it was.

    The RENAPO digit is a weighted sum mod 10, so changing the character at 0-based
    ``position`` (weight ``18 - position``) by ``delta`` dictionary places changes the required
    digit iff ``weight * delta`` is not a multiple of 10. A substituted CURP must therefore be
    refused for its structure, or refused for its check digit, or — only when the weights
    cannot see the change — accepted as a different, equally well-formed CURP.
    """
    prefix = value[:position] + replacement + value[position + 1 : 17]
    delta = model_value(replacement) - model_value(value[position])
    detectable = ((18 - position) * delta) % 10 != 0
    assert (check_digit(prefix) != value[17]) == detectable

    structure = validate_curp(prefix + check_digit(prefix))
    result = validate_curp(prefix + value[17])
    if not structure.ok:
        assert not result.ok
        assert result.part == structure.part != "check-digit"
        return "structure"
    if detectable:
        assert result.part == "check-digit"
        return "check-digit"
    assert result.ok
    return "undetectable"


@pytest.mark.parametrize("vector", VECTORS["valid"])
def test_every_single_substitution_of_the_fixture_vectors(vector: str) -> None:
    seen = {
        _check_substitution(vector, position, replacement)
        for position in range(17)
        for replacement in DICTIONARY
        if replacement != vector[position]
    }
    assert seen == {"structure", "check-digit", "undetectable"}


@given(
    value=valid_curps,
    position=st.sampled_from([5, 7, 9]),  # year units, month units, day units
    digit=st.sampled_from(string.digits),
)
def test_check_digit_catches_every_change_where_its_weight_is_coprime_to_10(
    value: str, position: int, digit: str
) -> None:
    # Weights 13, 11 and 9 are coprime to 10 and digits differ by less than 10, so no change
    # of these three digits can keep the same check digit.
    assume(digit != value[position])
    changed = value[:position] + digit + value[position + 1 :]
    result = validate_curp(changed)
    assert not result.ok
    assert result.part in {"check-digit", "birth-date"}


@given(value=valid_curps, digit=st.sampled_from(DICTIONARY))
def test_a_different_check_digit_is_always_refused(value: str, digit: str) -> None:
    assume(digit != value[17])
    error = refusal(value[:17] + digit)
    assert error.part == "check-digit"
    assert error.message.endswith(f"debería ser {value[17]}.")


def test_check_digit_blind_spots_are_real() -> None:
    """Documented limits: these typos produce another well-formed CURP with the same digit."""
    base = make_curp("BAAI", date(1981, 8, 5), "H", "CS", "RCS")
    day_tens = make_curp("BAAI", date(1981, 8, 15), "H", "CS", "RCS")  # weight 10
    sex_swap = make_curp("BAAI", date(1981, 8, 5), "M", "CS", "RCS")  # 8 * (M - H) = 8 * 5
    state_swap = make_curp("BAAI", date(1981, 8, 5), "H", "MS", "RCS")  # 7 * (M - C) = 7 * 10
    assert base[17] == day_tens[17] == sex_swap[17] == state_swap[17]


# --- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yymmdd", "differentiator"),
    [
        ("900230", "0"),  # 30 February
        ("900431", "0"),  # 31 April
        ("901301", "0"),  # month 13
        ("900001", "0"),  # month 0
        ("900100", "0"),  # day 0
        ("000229", "0"),  # 1900 was not a leap year
        ("230229", "A"),  # neither was 2023
    ],
)
def test_impossible_dates_are_refused(yymmdd: str, differentiator: str) -> None:
    error = refusal(with_check_digit(f"BAAI{yymmdd}HJCRCS{differentiator}"))
    assert error.part == "birth-date"
    assert "no existe" in error.message


@pytest.mark.parametrize(
    ("yymmdd", "differentiator", "born"),
    [
        ("000229", "A", date(2000, 2, 29)),  # the century comes from position 17
        ("960229", "5", date(1996, 2, 29)),
        ("991231", "9", date(1999, 12, 31)),
        ("000101", "Z", date(2000, 1, 1)),
    ],
)
def test_century_comes_from_position_17(yymmdd: str, differentiator: str, born: date) -> None:
    assert parse_curp(with_check_digit(f"BAAI{yymmdd}HJCRCS{differentiator}")).birth_date == born


@given(
    year=st.integers(0, 99),
    month=st.integers(0, 99),
    day=st.integers(0, 99),
    differentiator=st.sampled_from("0A"),
)
def test_any_non_date_is_refused(year: int, month: int, day: int, differentiator: str) -> None:
    century = 1900 if differentiator == "0" else 2000
    try:
        date(century + year, month, day)
    except ValueError:
        pass
    else:
        assume(False)
    error = refusal(with_check_digit(f"BAAI{year:02d}{month:02d}{day:02d}HJCRCS{differentiator}"))
    assert error.part == "birth-date"


# --- one refusal per part -------------------------------------------------------------------

REFUSALS: list[tuple[str, CurpPart]] = [
    ("BAAI810809HJCRCS0", "length"),
    ("BAAI810809HJCRCS022", "length"),
    ("", "length"),
    ("BAAI81080.HJCRCS02", "characters"),
    ("BAAÍ810809HJCRCS02", "characters"),
    ("BAAI810809HJCRCS0ß", "characters"),  # not folded to "SS" (that would make 19)
    ("BAAI810809HJCRCSß", "characters"),  # ... and not stretched into 18 characters
    ("BAAI 810809HJCRCS02", "characters"),
    (with_check_digit("1AAI810809HJCRCS0"), "initials"),
    (with_check_digit("BBAI810809HJCRCS0"), "initials"),
    (with_check_digit("BAA9810809HJCRCS0"), "initials"),
    (with_check_digit("ÑAAI810809HJCRCS0"), "initials"),
    (with_check_digit("BAAI81O809HJCRCS0"), "birth-date"),
    (with_check_digit("BAAI810230HJCRCS0"), "birth-date"),
    (with_check_digit("BAAI810809FJCRCS0"), "sex"),
    (with_check_digit("BAAI8108090JCRCS0"), "sex"),
    (with_check_digit("BAAI810809HXXRCS0"), "state"),
    (with_check_digit("BAAI810809HDXRCS0"), "state"),
    (with_check_digit("BAAI810809HJCRAS0"), "consonants"),
    (with_check_digit("BAAI810809HJCR1S0"), "consonants"),
    (with_check_digit("BAAI810809HJCRÑS0"), "consonants"),
    (with_check_digit("BAAI810809HJCRCSÑ"), "differentiator"),
    ("BAAI810809HJCRCS03", "check-digit"),
    ("BAAI810809HJCRCS0A", "check-digit"),
    (with_check_digit("BUEY810809HJCRCS0"), "inconvenient-word"),
]


@pytest.mark.parametrize(("raw", "part"), REFUSALS)
def test_each_part_is_refused_with_its_slug(raw: str, part: CurpPart) -> None:
    error = refusal(raw)
    assert error.part == part
    assert error.message
    assert str(error) == error.message


def test_refusal_table_covers_every_part() -> None:
    assert {part for _, part in REFUSALS} == set(get_args(CurpPart))


@pytest.mark.parametrize(
    ("raw", "part", "position_words"),
    [
        ("ñaai810809hjcrcs0", "initials", "primeras cuatro letras"),
        ("baai810809hjcrñs0", "consonants", "posiciones 14 a 16"),
    ],
)
def test_enye_is_upper_cased_then_refused_with_the_x_rule(
    raw: str, part: CurpPart, position_words: str
) -> None:
    upper = Curp.normalize(raw)
    assert "Ñ" in upper
    assert "ñ" not in upper
    error = refusal(with_check_digit(upper))
    assert error.part == part
    assert position_words in error.message
    assert "X" in error.message


def test_decomposed_enye_counts_as_enye() -> None:
    assert Curp.normalize("N\u0303AAI") == "ÑAAI"


def test_inconvenient_words_match_renapo_catalogue() -> None:
    assert len(INCONVENIENT_WORDS) == 81
    assert curp_module._INCONVENIENT_WORDS == INCONVENIENT_WORDS


@pytest.mark.parametrize("word", sorted(INCONVENIENT_WORDS))
def test_each_inconvenient_word_is_refused_but_its_x_form_is_valid(word: str) -> None:
    error = refusal(with_check_digit(f"{word}810809HJCRCS0"))
    assert error.part == "inconvenient-word"
    replaced = word[0] + "X" + word[2:]
    assert f"({replaced})" in error.message
    assert parse_curp(with_check_digit(f"{replaced}810809HJCRCS0")).value.startswith(replaced)


# --- API details ----------------------------------------------------------------------------


def test_validate_curp_reports_instead_of_raising() -> None:
    good = validate_curp(" baai810809hjcrcs02 ")
    assert good.ok
    assert good.curp == parse_curp("BAAI810809HJCRCS02")
    assert (good.part, good.message) == (None, None)
    bad = validate_curp("BAAI810809HJCRCS03")
    assert not bad.ok
    assert bad.curp is None
    assert bad.part == "check-digit"
    assert bad.message == "El dígito verificador de la CURP no es correcto: debería ser 2."


def test_curp_constructor_validates_and_compares_by_value() -> None:
    assert Curp("baai810809hjcrcs02") == Curp("BAAI810809HJCRCS02")
    assert len({Curp("BAAI810809HJCRCS02"), parse_curp(" BAAI810809HJCRCS02")}) == 1
    with pytest.raises(CurpError):
        Curp("BAAI810809HJCRCS03")
    with pytest.raises(TypeError):
        parse_curp(None)  # type: ignore[arg-type]


def test_curp_error_is_a_value_error_and_survives_pickling() -> None:
    error = refusal("BAAI810809HJCRCS03")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.part, copy.message) == (error.part, error.message)


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("BAAI", date(2005, 1, 1), "H", "JC", "RCS", "0"), "differentiator"),
        (("BAAI", date(1995, 1, 1), "H", "JC", "RCS", "A"), "differentiator"),
        (("BAAI", date(1899, 12, 31), "H", "JC", "RCS", None), "birth-date"),
        (("BAAI", date(2100, 1, 1), "H", "JC", "RCS", None), "birth-date"),
        (("BAA", date(1981, 8, 9), "H", "JC", "RCS", None), "initials"),
        (("BUEY", date(1981, 8, 9), "H", "JC", "RCS", None), "inconvenient-word"),
        (("BAAI", date(1981, 8, 9), "HM", "JC", "RCS", None), "sex"),
        (("BAAI", date(1981, 8, 9), "H", "J", "RCS", None), "state"),
        (("BAAI", date(1981, 8, 9), "H", "ZZ", "RCS", None), "state"),
        (("BAAI", date(1981, 8, 9), "H", "JC", "RCSX", None), "consonants"),
    ],
)
def test_make_curp_refuses_instead_of_correcting(
    args: tuple[str, date, str, str, str, str | None], part: CurpPart
) -> None:
    with pytest.raises(CurpError) as info:
        make_curp(*args)
    assert info.value.part == part


def test_make_curp_default_differentiator_follows_the_century() -> None:
    assert make_curp("BAAI", date(1981, 8, 9), "H", "JC", "RCS") == "BAAI810809HJCRCS02"
    assert make_curp("BAAI", date(2001, 8, 9), "X", "NE", "RCS")[16] == "A"


@pytest.mark.parametrize(
    ("prefix", "part"),
    [
        ("BAAI810809HJCRCS", "length"),
        ("BAAI810809HJCRCS0?", "length"),
        ("baai810809hjcrcs0", "characters"),
    ],
)
def test_check_digit_refuses_bad_prefixes(prefix: str, part: CurpPart) -> None:
    with pytest.raises(CurpError) as info:
        check_digit(prefix)
    assert info.value.part == part
