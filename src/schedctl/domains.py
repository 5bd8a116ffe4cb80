"""Domains as the host names them, made exact (SPEC §3): normalisation to the A-label, the
spellings the host may have stored, and a REF (a scheduler's id, an id prefix, or a domain)."""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from typing import TYPE_CHECKING

from schedctl.errors import InvalidInput
from schedctl.models import Ref
from schedctl.validation import is_control, is_space, show

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

RESERVED_NAMES = frozenset({"localhost", "local", "internal", "test", "example", "invalid"})
_IDNA_JOINERS = frozenset({"\u200c", "\u200d"})

_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_OTHER_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


@functools.lru_cache(maxsize=1)
def _public_suffix_list() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    # The bundled list holds both the ICANN and the private section (only_icann=False);
    # accept_unknown=False refuses top-level labels the list does not know.
    return PublicSuffixList(accept_unknown=False, only_icann=False)


def _looks_like_ip(host: str) -> bool:
    if host.startswith("["):
        return True  # only an IPv6 literal is written in brackets (`[::1]`, `[::1]:8080`)
    candidate = host
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        pass
    else:
        return True
    # A URL parser reads a name whose last label is numeric as IPv4 (`127.1`, `0x7f.0.0.1`).
    last_label = candidate.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last_label) and _NUMERIC_LABEL.match(last_label) is not None


def normalize_domain(raw: str) -> str:
    """Return the normalised A-label form of a domain, or raise InvalidInput."""
    import idna

    name = raw.strip()
    for char in name:
        if is_space(char) or (is_control(char) and char not in _IDNA_JOINERS):
            raise InvalidInput(
                f"domain {show(raw)} contains whitespace or a control character (U+{ord(char):04X})"
            )
    name = _SCHEME.sub("", name, count=1)
    if _OTHER_SCHEME.match(name):
        raise InvalidInput(f"domain {show(raw)}: only http:// and https:// may prefix a domain")
    if name[:4].lower() == "www.":
        name = name[4:]
    if name.endswith("/"):
        name = name[:-1]
    if name.endswith("."):
        name = name[:-1]
    name = name.lower()

    if not name:
        raise InvalidInput(f"domain {show(raw)} is empty")
    if "@" in name:
        raise InvalidInput(f"domain {show(raw)} must not contain user info ('…@')")
    if any(char in name for char in "/?#"):
        raise InvalidInput(f"domain {show(raw)} must not contain a path, query or fragment")
    if _looks_like_ip(name):
        raise InvalidInput(f"domain {show(raw)} is an IP address; a host name is required")
    if ":" in name:
        raise InvalidInput(f"domain {show(raw)} must not contain a port")

    try:
        a_label = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidInput(f"domain {show(raw)} is not a valid host name: {error}") from None

    # UTS 46 maps look-alikes (full-width digits and dots), so check the encoded name again.
    if _looks_like_ip(a_label):
        raise InvalidInput(f"domain {show(raw)} is an IP address; a host name is required")
    if len(a_label) > 253:
        raise InvalidInput(
            f"domain {show(raw)} is too long ({len(a_label)} characters encoded; at most 253)"
        )
    labels = a_label.split(".")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise InvalidInput(
                f"domain {show(raw)} is not a valid host name: label {label!r} must be 1-63 "
                "letters, digits or hyphens, not starting or ending with a hyphen"
            )
    if labels[-1] in RESERVED_NAMES:
        raise InvalidInput(f"domain {show(raw)} uses the reserved name {labels[-1]!r}")

    psl = _public_suffix_list()
    if psl.publicsuffix(a_label) is None:
        raise InvalidInput(f"domain {show(raw)} does not end in a suffix on the Public Suffix List")
    if psl.privatesuffix(a_label) is None:
        raise InvalidInput(
            f"domain {show(raw)} is itself a public suffix; give a name registered under it"
        )
    return a_label


def domain_spellings(a_label: str) -> tuple[str, ...]:
    """The spellings of a normalised domain that the host may have stored, as the database's
    lower() reads them: the A-label and the Unicode form (the queries also ignore letter case
    and a trailing dot). A database whose LC_CTYPE is C folds only ASCII letters, so a name
    typed with capital non-ASCII letters (MÜLLER.de) reads there as mÜller.de: that form too."""
    unicode_form = display_domain(a_label).lower()
    c_locale_form = "".join(ch.upper() if ord(ch) > 127 else ch for ch in unicode_form)
    return tuple(dict.fromkeys((a_label, unicode_form, c_locale_form)))


# A unique leading part of a scheduler id: at least 8 hex digits (hyphens where the id has them).
MIN_ID_PREFIX = 8
_ID_PREFIX = re.compile(r"^[0-9a-f-]+$", re.IGNORECASE)


def parse_ref(raw: str) -> Ref:
    """A REF argument: a scheduler id, the first 8 or more hex digits of one, or a domain
    (any form `create` accepts)."""
    text = raw.strip()
    try:
        return Ref(text=text, id=uuid.UUID(text))
    except ValueError:
        pass
    digits = text.replace("-", "").lower()
    if _ID_PREFIX.match(text) and MIN_ID_PREFIX <= len(digits) < 32:
        return Ref(text=text, prefix=digits)
    try:
        return Ref(text=text, spellings=domain_spellings(normalize_domain(text)))
    except InvalidInput:
        return Ref(text=text)  # neither: it matches nothing


def short_id_hint(text: str) -> str:
    """For a REF that found nothing and looks like the start of an id, but is shorter than
    an id prefix may be: the words that say so (else "")."""
    digits = text.replace("-", "")
    if _ID_PREFIX.match(text) and 0 < len(digits) < MIN_ID_PREFIX:
        return f" (an id prefix needs at least {MIN_ID_PREFIX} characters)"
    return ""


def display_domain(a_label: str) -> str:
    """Return the Unicode form (U-label) of a stored domain, or the input if it does not decode."""
    import idna

    try:
        return idna.decode(a_label)
    except (idna.IDNAError, UnicodeError):
        return a_label
