"""No secret survives redaction: a password, a secret query parameter, a header value."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from wsprobe.redaction import SECRET_WORDS, redact, redact_header, redact_query

# A secret is long and unlike anything else in the URL: finding it is finding a leak.
_secrets = st.text(
    st.characters(codec="utf-8", exclude_characters="&;#= \t\n\r\x0b\x0c"), min_size=1, max_size=20
).map(lambda text: "S3CR3T" + text)
_names = st.builds(
    lambda before, word, after, upper: (
        (before + word + after).upper() if upper else before + word + after
    ),
    st.sampled_from(["", "x_", "api_", "client-", "my"]),
    st.sampled_from(SECRET_WORDS),
    st.sampled_from(["", "_id", "s", "_hash"]),
    st.booleans(),
)
_plain = st.tuples(
    st.sampled_from(["x", "page", "mail", "q"]),
    st.text(st.characters(codec="ascii", exclude_characters="&;#= "), max_size=10),
)
_hosts = st.sampled_from(["host", "127.0.0.1:9", "[::1]:80", "a.example.org"])


@given(
    scheme=st.sampled_from(["ws://", "wss://", "http://", ""]),
    host=_hosts,
    path=st.sampled_from(["", "/", "/a/b", "/x@y"]),
    params=st.lists(st.one_of(_plain, st.tuples(_names, _secrets)), min_size=1, max_size=5),
    encode=st.booleans(),
    # Parameters in the query, or in a fragment as OAuth's implicit flow puts them.
    start=st.sampled_from(["?", "#", "?page=1#"]),
    separator=st.sampled_from(["&", ";"]),
)
def test_no_secret_parameter_survives(
    scheme: str,
    host: str,
    path: str,
    params: list[tuple[str, str]],
    encode: bool,
    start: str,
    separator: str,
) -> None:
    def shown(value: str) -> str:
        return quote(value, safe="") if encode else value

    query = separator.join(f"{name}={shown(value)}" for name, value in params)
    url = f"{scheme}{host}{path}{start}{query}"
    redacted = redact(url)
    for name, value in params:
        if value.startswith("S3CR3T"):
            assert "S3CR3T" not in redacted, (url, redacted)
            # Shown hidden, or dropped with what precedes an @ (after a #, an @ may
            # end a password: ws://user:p#ss@host).
            assert f"{name}=…" in redacted or "…@" in redacted, (url, redacted)


@given(
    user=st.text(st.sampled_from("abcXYZ019._-"), max_size=10),
    password=st.text(
        st.characters(codec="utf-8", exclude_characters="@"), min_size=1, max_size=20
    ).map(lambda text: "S3CR3T" + text),
    host=_hosts,
    rest=st.sampled_from(["", "/", "/p?x=1", "/p?mail=a@b"]),
)
def test_no_password_survives(user: str, password: str, host: str, rest: str) -> None:
    # Typed raw, a password may hold /, ? or #, and end the authority early. (One made
    # of digits then '?' looks like a port and a query: not generated.)
    url = f"ws://{user}:{password}@{host}{rest}"
    assert "S3CR3T" not in redact(url), url


@given(
    st.text(max_size=40).map(lambda text: "S3CR3T" + text),
    st.sampled_from(["", "Authorization ", "X-Key\t", "é "]),
)
def test_no_header_value_survives(text: str, name: str) -> None:
    # A name before a space may be shown, never what follows; a value alone, not at all.
    header = name + (text if name else "".join(text.split()))
    assert "S3CR3T" not in redact_header(header), header


@given(words=st.lists(st.text(st.characters(codec="ascii", categories=["L"]), min_size=1)))
def test_configured_words_are_hidden_too(words: list[str]) -> None:
    text = "cannot connect to ws://h/?" + "&".join(
        f"{word}=S3CR3T{i}" for i, word in enumerate(words)
    )
    assert "S3CR3T" not in redact_query(text, words)
