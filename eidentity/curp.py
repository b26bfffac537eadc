"""Full, offline validation of the CURP (Clave Única de Registro de Población).

The CURP is the key a citizen types to sign in, the key enrolments and rate limits hang on, and
the identity carried in e.firma certificates. Validating it completely *before* anything else
happens lets us answer with a precise Spanish message ("the check digit should be 2") instead of
a vague "not found", and keeps malformed keys out of storage and rate-limit buckets. This module
is pure (no I/O, no clock, no globals that change) so every layer — HTTP handlers, the CLI, the
PWA's server-rendered forms, tests — can use it freely.

What validation proves, and what it does not
    A CURP that passes here is *well formed*: it could have been issued by RENAPO. It does not
    prove that it *was* issued, nor that it belongs to the person typing it; only RENAPO's
    registry (or an e.firma certificate) can say that. In particular the RENAPO check digit is a
    weak mod-10 sum: changing the character at position *p* (weight ``19 - p``) from dictionary
    index *a* to *b* goes unnoticed whenever ``(19 - p) * (b - a)`` is a multiple of 10. Position
    9 — the tens of the birth day — has weight 10 and is not protected at all (``...900105...``
    and ``...900115...`` need the same digit), even weights miss changes of 5 places, and even
    the best positions miss changes of 10 places (``CS``→``MS`` in the state code). Typos are
    *usually* caught; not always.

Normalisation (``Curp.normalize``)
    * Unicode NFC first, so an ``N`` followed by a combining tilde counts as ``Ñ``.
    * Surrounding whitespace (spaces, tabs, newlines, no-break spaces) is removed: it is what
      copy-and-paste from PDFs, e-mails and spreadsheets adds, and it carries no meaning.
    * Only ``a-z`` and ``ñ`` are upper-cased. ``str.upper`` is deliberately *not* used on the
      whole string: it turns ``ß`` into ``SS`` and so could stretch a 17-character typo into a
      plausible 18-character CURP. Every other character (accented vowels, full-width letters,
      punctuation) is left alone and then refused with part ``"characters"``.
    * Whitespace *inside* the value is an error, not silently squeezed out: a CURP is written in
      one run, a space in the middle usually means two fields were pasted together, and guessing
      could key a sign-in attempt (and its OTP) to somebody else's CURP. The message tells the
      person exactly what to fix, which costs them a second.

The layout (positions are 1-based, as RENAPO's *Instructivo Normativo* numbers them)
    ==========  ===============================================================================
    1           first letter of the first surname
    2           its first internal vowel, or ``X`` (no internal vowel, or *palabra inconveniente*)
    3-4         initial of the second surname (``X`` if none) and of the given name
    5-10        birth date ``YYMMDD``; must be a real calendar date
    11          sex: ``H`` (hombre), ``M`` (mujer), ``X`` (no binario)
    12-13       one of the 32 state codes, or ``NE`` (nacido en el extranjero)
    14-16       first internal consonants of surnames and given name (``X`` when there is none)
    17          differentiator assigned by RENAPO: a digit for births 1900-1999, a letter for
                births from 2000, which is where the century of the birth date comes from
    18          check digit
    ==========  ===============================================================================

Decisions
    * ``Ñ`` in positions 1-4 or 14-16 is refused with its own message: RENAPO always writes it as
      ``X`` there, so a literal ``Ñ`` is a transcription from the *name*, not a real CURP. The
      character is still part of the check-digit dictionary, which is why ``check_digit``
      accepts it (and why the characters check lets it through to the positional message).
    * Since only the 1900s and the 2000s can be told apart, births are dated 1900-01-01 to
      2099-12-31. No "not in the future" check is made here because that needs a clock; callers
      that care compare ``Curp.birth_date`` with their own notion of today.
    * *Palabras inconvenientes* (Anexo 2 of the Instructivo Normativo): when the four initials
      would spell one of these words RENAPO replaces the second letter with ``X``. A CURP whose
      first four letters *are* one of the words therefore can never have been issued.

Errors are ``CurpError`` (a ``ValueError``) carrying a stable machine slug ``part`` — for the
API's problem details and the PWA's field highlighting — and a plain es-MX ``message`` to show.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Final, Literal, cast

__all__ = [
    "STATES",
    "Curp",
    "CurpError",
    "CurpPart",
    "CurpResult",
    "Sex",
    "check_digit",
    "make_curp",
    "parse_curp",
    "validate_curp",
]

CurpPart = Literal[
    "length",
    "characters",
    "initials",
    "birth-date",
    "sex",
    "state",
    "consonants",
    "differentiator",
    "check-digit",
    "inconvenient-word",
]
"""Which part of the CURP is wrong; stable slugs meant for machines (API errors, UI fields)."""

Sex = Literal["H", "M", "X"]

STATES: Final = MappingProxyType(
    {
        "AS": "Aguascalientes",
        "BC": "Baja California",
        "BS": "Baja California Sur",
        "CC": "Campeche",
        "CL": "Coahuila",
        "CM": "Colima",
        "CS": "Chiapas",
        "CH": "Chihuahua",
        "DF": "Ciudad de México",
        "DG": "Durango",
        "GT": "Guanajuato",
        "GR": "Guerrero",
        "HG": "Hidalgo",
        "JC": "Jalisco",
        "MC": "Estado de México",
        "MN": "Michoacán",
        "MS": "Morelos",
        "NT": "Nayarit",
        "NL": "Nuevo León",
        "OC": "Oaxaca",
        "PL": "Puebla",
        "QT": "Querétaro",
        "QR": "Quintana Roo",
        "SP": "San Luis Potosí",
        "SL": "Sinaloa",
        "SR": "Sonora",
        "TC": "Tabasco",
        "TS": "Tamaulipas",
        "TL": "Tlaxcala",
        "VZ": "Veracruz",
        "YN": "Yucatán",
        "ZS": "Zacatecas",
        "NE": "Nacido en el extranjero",
    }
)
"""RENAPO entity codes (positions 12-13) to names; ``DF`` is still used for Mexico City."""

_LENGTH: Final = 18
# The check-digit dictionary: Ñ sits between N and O, shifting O..Z up by one.
_DICTIONARY: Final = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
_VALUE: Final = {ch: i for i, ch in enumerate(_DICTIONARY)}
_DIGITS: Final = frozenset("0123456789")
_LETTERS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_VOWELS_OR_X: Final = frozenset("AEIOUX")
_CONSONANTS: Final = _LETTERS - frozenset("AEIOU")  # X (and Y, W) included
_SEXES: Final = frozenset("HMX")
# Only ASCII letters and ñ are folded; see the module docstring for why not str.upper().
_PLAIN: Final = re.compile(r"[A-Z0-9]{18}")
_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyzñ", "ABCDEFGHIJKLMNOPQRSTUVWXYZÑ")

# Anexo 2 of the Instructivo Normativo para la Asignación de la CURP (catálogo de palabras
# inconvenientes). RENAPO replaces the second letter of these with X.
# fmt: off
_INCONVENIENT_WORDS: Final = frozenset({
    "BACA", "BAKA", "BUEI", "BUEY", "CACA", "CACO", "CAGA", "CAGO", "CAKA", "CAKO",
    "COGE", "COGI", "COJA", "COJE", "COJI", "COJO", "COLA", "CULO", "FALO", "FETO",
    "GETA", "GUEI", "GUEY", "JETA", "JOTO", "KACA", "KACO", "KAGA", "KAGO", "KAKA",
    "KAKO", "KOGE", "KOGI", "KOJA", "KOJE", "KOJI", "KOJO", "KOLA", "KULO", "LILO",
    "LOCA", "LOCO", "LOKA", "LOKO", "MAME", "MAMO", "MEAR", "MEAS", "MEON", "MIAR",
    "MION", "MOCO", "MOKO", "MULA", "MULO", "NACA", "NACO", "PEDA", "PEDO", "PENE",
    "PIPI", "PITO", "POPO", "PUTA", "PUTO", "QULO", "RATA", "ROBA", "ROBE", "ROBO",
    "RUIN", "SENO", "TETA", "VACA", "VAGA", "VAGO", "VAKA", "VUEI", "VUEY", "WUEI",
    "WUEY",
})
# fmt: on


class CurpError(ValueError):
    """A CURP that is not well formed.

    ``part`` says which piece is wrong (a stable slug), ``message`` says it in Spanish for the
    person who typed it. ``str(error)`` is the message.
    """

    part: CurpPart
    message: str

    def __init__(self, part: CurpPart, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message

    def __reduce__(self) -> tuple[type[CurpError], tuple[CurpPart, str]]:
        # The default exception pickling replays ``args`` (just the message) into __init__,
        # which would fail; keep the error transportable across processes (xdist, workers).
        return (type(self), (self.part, self.message))


def _normalize(raw: str) -> str:
    if _PLAIN.fullmatch(raw):  # already upper-case ASCII letters and digits: nothing to do
        return raw
    return unicodedata.normalize("NFC", raw).strip().translate(_UPPER)


def check_digit(prefix17: str) -> str:
    """RENAPO check digit (position 18) for the first 17 characters of a CURP.

    Each character's index in ``0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ`` is weighted 18 down to
    2, and the digit is ``(10 - sum % 10) % 10``. Only the dictionary is enforced here, not the
    layout, so the function is usable on any candidate prefix; input must already be upper-case.
    """
    if len(prefix17) != _LENGTH - 1:
        raise CurpError(
            "length",
            f"Para calcular el dígito verificador se necesitan los primeros 17 caracteres de la "
            f"CURP; se recibieron {len(prefix17)}.",
        )
    total = 0
    for weight, ch in zip(range(_LENGTH, 1, -1), prefix17, strict=True):
        value = _VALUE.get(ch)
        if value is None:
            raise CurpError(
                "characters",
                f"El carácter «{ch}» no puede formar parte de una CURP.",
            )
        total += weight * value
    return str((10 - total % 10) % 10)


def _check_characters(value: str) -> None:
    if _PLAIN.fullmatch(value):
        return
    if any(ch.isspace() for ch in value):
        raise CurpError(
            "characters",
            "La CURP no lleva espacios entre sus caracteres; escríbela de corrido, "
            "18 letras y números.",
        )
    for position, ch in enumerate(value, start=1):
        if ch not in _VALUE:
            raise CurpError(
                "characters",
                f"La CURP solo lleva letras y números; el carácter «{ch}» "
                f"(posición {position}) no es válido.",
            )


def _check_initials(initials: str) -> None:
    if "Ñ" in initials:
        raise CurpError(
            "initials",
            "La CURP no lleva Ñ en sus primeras cuatro letras: RENAPO la escribe como X.",
        )
    if not all(ch in _LETTERS for ch in initials):
        raise CurpError(
            "initials",
            "Las primeras cuatro posiciones de la CURP deben ser letras (iniciales de los "
            "apellidos y del nombre).",
        )
    if initials[1] not in _VOWELS_OR_X:
        raise CurpError(
            "initials",
            "La segunda letra de la CURP debe ser una vocal (A, E, I, O, U) o X.",
        )
    if initials in _INCONVENIENT_WORDS:
        replacement = initials[0] + "X" + initials[2:]
        raise CurpError(
            "inconvenient-word",
            f"Las primeras cuatro letras de la CURP forman una palabra que RENAPO nunca asigna; "
            f"en esos casos la segunda letra se sustituye por X ({replacement}), así que esta "
            f"CURP no puede haber sido emitida.",
        )


def _inspect(raw: str) -> tuple[str, date, Sex, str]:
    """Normalise and validate; return (value, birth date, sex, state) or raise CurpError.

    Checks run left to right so the first problem reported is the first one a person reading
    the CURP would meet, except that the calendar check waits for position 17 (it gives the
    century) and the check digit, which depends on everything else, comes last.
    """
    if not isinstance(raw, str):
        raise TypeError(f"a CURP is a str, not {type(raw).__name__}")
    value = _normalize(raw)
    _check_characters(value)
    if len(value) != _LENGTH:
        raise CurpError(
            "length",
            f"La CURP debe tener 18 caracteres; tiene {len(value)}.",
        )

    _check_initials(value[0:4])

    yymmdd = value[4:10]
    if not all(ch in _DIGITS for ch in yymmdd):
        raise CurpError(
            "birth-date",
            "Las posiciones 5 a 10 de la CURP deben ser la fecha de nacimiento en seis dígitos "
            "(AAMMDD).",
        )

    sex = value[10]
    if sex not in _SEXES:
        raise CurpError(
            "sex",
            "La posición 11 de la CURP indica el sexo y debe ser H (hombre), M (mujer) o "
            "X (no binario).",
        )

    state = value[11:13]
    if state not in STATES:
        raise CurpError(
            "state",
            f"Las posiciones 12 y 13 de la CURP deben ser la clave de una entidad federativa "
            f"(por ejemplo DF, JC o NL), o NE si la persona nació en el extranjero; «{state}» "
            f"no lo es.",
        )

    consonants = value[13:16]
    if "Ñ" in consonants:
        raise CurpError(
            "consonants",
            "La CURP no lleva Ñ en las posiciones 14 a 16: RENAPO la escribe como X.",
        )
    if not all(ch in _CONSONANTS for ch in consonants):
        raise CurpError(
            "consonants",
            "Las posiciones 14 a 16 de la CURP deben ser consonantes (o X cuando el nombre no "
            "tiene consonante interna).",
        )

    differentiator = value[16]
    if differentiator in _DIGITS:
        century = 1900
    elif differentiator in _LETTERS:
        century = 2000
    else:
        raise CurpError(
            "differentiator",
            "La posición 17 de la CURP debe ser un dígito (nacimientos de 1900 a 1999) o una "
            "letra (nacimientos de 2000 en adelante).",
        )

    year, month, day = century + int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    try:
        birth_date = date(year, month, day)
    except ValueError:
        raise CurpError(
            "birth-date",
            f"La fecha de nacimiento de la CURP (posiciones 5 a 10) no existe: "
            f"{day:02d}/{month:02d}/{year}.",
        ) from None

    expected = check_digit(value[:17])
    if value[17] != expected:
        raise CurpError(
            "check-digit",
            f"El dígito verificador de la CURP no es correcto: debería ser {expected}.",
        )
    return value, birth_date, cast(Sex, sex), state


@dataclass(frozen=True, slots=True)
class Curp:
    """A well-formed CURP. Constructing one validates it, so every instance is valid.

    Equality and hashing use ``value`` only (the other fields are derived from it).
    """

    value: str
    birth_date: date = field(init=False, compare=False)
    sex: Sex = field(init=False, compare=False)
    state: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        value, birth_date, sex, state = _inspect(self.value)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "birth_date", birth_date)
        object.__setattr__(self, "sex", sex)
        object.__setattr__(self, "state", state)

    @staticmethod
    def normalize(raw: str) -> str:
        """The canonical written form of ``raw`` (trimmed, upper-cased); does not validate."""
        return _normalize(raw)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class CurpResult:
    """Outcome of ``validate_curp``: either ``curp`` or (``part``, ``message``) is set."""

    curp: Curp | None
    part: CurpPart | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.curp is not None


def parse_curp(s: str) -> Curp:
    """Normalise and fully validate ``s``; raise ``CurpError`` saying which part is wrong."""
    return Curp(s)


def validate_curp(s: str) -> CurpResult:
    """Like ``parse_curp`` but returns the error instead of raising (for form-style checks)."""
    try:
        return CurpResult(Curp(s))
    except CurpError as error:
        return CurpResult(None, error.part, error.message)


def make_curp(
    initials4: str,
    birth_date: date,
    sex: str,
    state: str,
    consonants3: str,
    differentiator: str | None = None,
) -> str:
    """Build a valid CURP (for tests and demo data), computing its check digit.

    ``differentiator`` defaults to ``0`` for births in the 1900s and ``A`` from 2000; a given one
    must match the century. Inputs are normalised like a typed CURP but never corrected: an
    inconvenient word, a ``Ñ`` or an unknown state raises ``CurpError`` rather than being
    silently rewritten, so the caller always gets exactly what they asked for.
    """
    if not 1900 <= birth_date.year <= 2099:
        raise CurpError(
            "birth-date",
            "La CURP solo puede representar nacimientos de 1900 a 2099.",
        )
    in_2000s = birth_date.year >= 2000
    if differentiator is None:
        differentiator = "A" if in_2000s else "0"
    differentiator = _normalize(differentiator)
    if len(differentiator) != 1 or (differentiator in _LETTERS) != in_2000s:
        raise CurpError(
            "differentiator",
            "La posición 17 de la CURP debe ser un dígito para nacimientos de 1900 a 1999 y "
            "una letra para nacimientos de 2000 en adelante.",
        )
    pieces: tuple[tuple[str, int, CurpPart, str], ...] = (
        (_normalize(initials4), 4, "initials", "Las iniciales de la CURP son 4 letras."),
        (_normalize(sex), 1, "sex", "El sexo de la CURP es una sola letra: H, M o X."),
        (_normalize(state), 2, "state", "La clave de entidad de la CURP son 2 letras."),
        (_normalize(consonants3), 3, "consonants", "Las consonantes de la CURP son 3 letras."),
    )
    for piece, size, part, message in pieces:
        if len(piece) != size:
            raise CurpError(part, message)
    initials, sex, state, consonants = (piece for piece, *_ in pieces)
    prefix = initials + birth_date.strftime("%y%m%d") + sex + state + consonants + differentiator
    # Every piece has its length, so the one real parser can judge the content.
    _check_characters(prefix)
    curp = Curp(prefix + check_digit(prefix))
    assert curp.birth_date == birth_date  # guaranteed by the century check above
    return curp.value
