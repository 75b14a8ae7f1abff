"""Language negotiation: Accept-Language and the switch."""

from __future__ import annotations

import pytest

from dashboard.tracking.language import DEFAULT_LANG, Lang, negotiate_language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", Lang.ZH_CN),
        ("en-US,en;q=0.9", Lang.EN),
        ("zh-TW", Lang.ZH_CN),
        ("zh-Hans-CN", Lang.ZH_CN),
        ("fr-FR,en;q=0.5,zh;q=0.4", Lang.EN),
        ("fr-FR,zh;q=0.5,en;q=0.4", Lang.ZH_CN),
        ("en;q=0.2, zh-CN;q=0.8", Lang.ZH_CN),
        ("en, zh-CN", Lang.EN),  # equal q: the browser's order decides
        ("zh;q=0, en;q=0.1", Lang.EN),  # q=0 means "not acceptable"
        ("de-DE,fr", DEFAULT_LANG),
        ("", DEFAULT_LANG),
        (None, DEFAULT_LANG),
        ("en;q=abc, zh", Lang.ZH_CN),
        (" , ;;, en-GB ", Lang.EN),
    ],
)
def test_accept_language(header: str | None, expected: Lang) -> None:
    assert negotiate_language(header) is expected


def test_the_switch_wins_over_the_browser() -> None:
    assert negotiate_language("zh-CN", "en") is Lang.EN
    assert negotiate_language("en", "zh-CN") is Lang.ZH_CN


def test_an_unknown_switch_value_falls_back_to_the_browser() -> None:
    assert negotiate_language("en", "xx") is Lang.EN
    assert negotiate_language("en", "<script>") is Lang.EN
