"""Identity and item names: NFKC, one script, a stated allowed set."""

from __future__ import annotations

import pytest

from serving.errors import BadRequest
from serving.vectors.names import normalise_name


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Ann Lee", "Ann Lee"),
        ("\uff21\uff4e\uff4e", "Ann"),  # full-width letters
        ("  Ann \t  Lee ", "Ann Lee"),
        ("\ufb01ona", "fiona"),  # the fi ligature
        ("Zoë O'Neil-Smith", "Zoë O'Neil-Smith"),
        ("Zoe\u0308", "Zoë"),  # decomposed diaeresis composes
        ("山田 たろう", "山田 たろう"),  # Han + Hiragana are one script here
        ("Ольга", "Ольга"),
        ("user_42@lab", "user_42@lab"),
    ],
)
def test_normalised(raw: str, canonical: str) -> None:
    assert normalise_name(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("\u0410nn", "mixes scripts"),  # Cyrillic capital A + Latin
        ("Ann\u200bLee", "U+200B"),  # zero-width space
        ("Ann\u202eLee", "U+202E"),  # right-to-left override
        ("..etc", "start with a letter or digit"),
        ("../etc", "U+002F"),
        ("a/b", "U+002F"),
        ("", "wrong length"),
        ("x" * 129, "wrong length"),
        ("Ann;drop", "U+003B"),
    ],
)
def test_refused_with_the_reason_and_the_allowed_set(raw: str, why: str) -> None:
    with pytest.raises(BadRequest) as err:
        normalise_name(raw)
    assert why in err.value.message and "allowed:" in err.value.message
    assert err.value.status == 400 and err.value.code == "invalid_identity"
