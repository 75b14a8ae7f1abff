"""War-room labels in zh-CN and en.

Every visible word of the war-room is a key of ``labels.toml`` (beside this module).
:func:`label` falls back to English and then to the key itself, so a missing translation
shows up as readable text, and a unit test checks that both languages define exactly the
same keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alerting.titles import WORDS, read_words
from dashboard.tracking.language import DEFAULT_LANG, Lang, chosen_language, negotiate_language

# The pages' one language vocabulary (``dashboard.tracking.language``), as plain strings.
ZH: Final = Lang.ZH_CN.value
EN: Final = Lang.EN.value
DEFAULT_LANGUAGE: Final = DEFAULT_LANG.value

#: key -> (zh-CN, en)
_LABELS = read_words(Path(__file__).with_name("labels.toml"))
_LABELS.update(WORDS)  # incident titles' words, shared with the alert notifications


def negotiate(accept_language: str | None, choice: str | None = None) -> str:
    """The language a page request asks for: ``?lang=`` when it names one, else the browser's
    ``Accept-Language`` (the tracking page's rules), else :data:`DEFAULT_LANGUAGE`. A choice the
    browser remembers (local storage) is applied in the browser by ``warroom_language.js``."""
    return negotiate_language(accept_language, choice).value


def normalise(lang: object) -> str:
    """A supported language for whatever the browser stored (``None``, ``"zh"``, ``"en-GB"``)."""
    chosen = chosen_language(lang) if isinstance(lang, str) else None
    return chosen.value if chosen is not None else DEFAULT_LANGUAGE


def label(lang: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    pair = _LABELS.get(key)
    if pair is None:
        return key
    text = pair[0] if normalise(lang) == ZH else pair[1]
    return text.format(**values) if values else text


def keys() -> frozenset[str]:
    return frozenset(_LABELS)


def table() -> dict[str, list[str]]:
    """Every label as ``{key: [zh-CN, en]}``, for relabelling in the browser without a round trip."""
    return {key: [zh, en] for key, (zh, en) in _LABELS.items()}


def both(key: str) -> tuple[str, str]:
    """(zh-CN, en) of ``key``: tests use it to check a label in either language."""
    return _LABELS[key]
