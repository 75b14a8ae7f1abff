"""Which language a customer reads: ``?lang=``, else the choice the browser remembers (a
cookie the page sets when ``?lang=`` is used), else its Accept-Language, else zh-CN.

Only two catalogues exist (zh-CN, en); every Chinese variant gets zh-CN, every English one en.
The war-room (``dashboard.warroom.i18n``) negotiates and normalises with these same rules.
"""

from __future__ import annotations

from enum import StrEnum


class Lang(StrEnum):
    ZH_CN = "zh-CN"
    EN = "en"


#: Shown when nothing the browser asks for is available: the product's home market.
DEFAULT_LANG = Lang.ZH_CN

#: Longest Accept-Language header looked at; browsers send well under 200 characters.
_MAX_HEADER_CHARS = 512


def _lang_of_tag(tag: str) -> Lang | None:
    # "en-GB" as browsers send it; "en_GB" as a locale name.
    primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    if primary == "zh":
        return Lang.ZH_CN
    if primary == "en":
        return Lang.EN
    return None


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def chosen_language(choice: str | None) -> Lang | None:
    """The catalogue an explicit choice (``?lang=``, the remembered cookie) names, if any."""
    return _lang_of_tag(choice[:_MAX_HEADER_CHARS]) if choice else None


def negotiate_language(accept_language: str | None, choice: str | None = None, remembered: str | None = None) -> Lang:
    """The page language: ``choice`` (the switch, ``?lang=``) wins when it names a catalogue,
    then ``remembered`` (an earlier choice), then ``accept_language``."""
    for explicit in (choice, remembered):
        chosen = chosen_language(explicit)
        if chosen is not None:
            return chosen
    if not accept_language:
        return DEFAULT_LANG
    best: tuple[float, int, Lang] | None = None
    for position, item in enumerate(accept_language[:_MAX_HEADER_CHARS].split(",")):
        tag, *params = item.split(";")
        lang = _lang_of_tag(tag)
        q = _quality(params)
        if lang is None or q <= 0.0:
            continue
        # Higher q first; among equal q the browser's own order decides.
        candidate = (q, -position, lang)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else DEFAULT_LANG
