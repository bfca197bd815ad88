"""Markdown rendering: an allow-list sanitiser that nothing an editor writes can get past;
links to known providers' posts become cards (tests/core/test_cards.py has the rest)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from bulletin.core.content import ContentError, render
from bulletin.core.providers import Providers

ALLOWED = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol",
    "li", "a", "img", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td",
    "sup", "sub", "h1", "h5", "h6",
}
# What a card's markup may add (core/cards.py: card_html): no frame, no script.
CARD_TAGS = {"figure", "header", "footer", "span", "blockquote", "time", "div", "picture",
             "source"}


def url_scheme(url: str) -> str | None:
    """The scheme a browser would see (WHATWG URL): controls trimmed, tabs and newlines
    removed; None for a relative URL."""
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08"
                                                 "\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14"
                                                 "\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                                 "\x1e\x1f "))
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


class Inspector(HTMLParser):
    """Collects every element and attribute as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def inspect(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The elements of an HTML fragment."""
    parser = Inspector()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_inert(html: str, *, cards_allowed: bool = False) -> None:
    """No element, attribute or URL in the output can run script or load from elsewhere."""
    allowed = ALLOWED | (CARD_TAGS if cards_allowed else set())
    for tag, attrs in inspect(html):
        assert tag in allowed, f"<{tag}> in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name} on <{tag}> in {html!r}"
            assert name not in ("style", "srcdoc", "formaction", "xlink:href", "background")
            if name == "href":
                assert url_scheme(value or "") in (None, "http", "https", "mailto"), value
            if name == "src" and tag == "img":
                assert (value or "").startswith(("https://", "/media/")), f"img src {value!r}"


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"https://a.example/x.png\" onerror=\"alert(1)\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
    "<object data=javascript:alert(1)></object>",
    "<embed src=javascript:alert(1)>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"jAvAsCrIpT:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<base href=\"https://evil.example/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<form action=javascript:alert(1)><input type=submit></form>",
    "<button formaction=javascript:alert(1)>x</button>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<img src=`x` onerror=alert(1)>",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](jav&#x09;ascript:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](  javascript:alert(1)  )",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](http://tracker.example/pixel.gif)",
    "[x](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
    "[x](https://ok.example \"a\" onmouseover=alert(1) \")",
    "<https://ok.example/\" onmouseover=\"alert(1)>",
    "<a href=https://ok.example/ onclick=alert(1)>x</a>",
    "<p style=x onclick=alert(1)>x</p>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<link rel=import href=https://evil.example/x.html>",
    "<template><script>alert(1)</script></template>",
    "<xss id=x tabindex=1 onfocusin=alert(1)></xss>",
    "<a href=\"https://youtube.com/watch?v=dQw4w9WgXcQ\" onclick=\"alert(1)\">v</a>",
    "```\n</code><script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "\"><script>alert(1)</script>",
    "'';!--\"<XSS>=&{()}",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payloads_render_inert(payload: str) -> None:
    """Known XSS payloads come out with no script, handler, style or dangerous URL."""
    try:
        rendered = render(f"Breaking: {payload}\n\nMore to follow.")
    except ContentError:
        return
    assert_inert(rendered.html)
    assert rendered.cards == ()


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payloads_alone_render_inert_or_are_refused(payload: str) -> None:
    """A payload that is the whole post is either inert or refused as empty."""
    try:
        rendered = render(payload)
    except ContentError:
        return
    assert_inert(rendered.html)


def test_url_scheme_reads_urls_as_browsers_do() -> None:
    """The checker itself: tabs inside a scheme still make it javascript:, %09 does not."""
    assert url_scheme("java\tscript:alert(1)") == "javascript"
    assert url_scheme(" \x01JavaScript:x") == "javascript"
    assert url_scheme("jav%09ascript:alert(1)") is None
    assert url_scheme("/path") is None and url_scheme("https://a") == "https"


def test_raw_html_is_shown_as_text() -> None:
    """Raw HTML typed by an editor is escaped text, visible to the reader as written."""
    assert render("<b>bold?</b>").html == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>"


def test_markdown_basics() -> None:
    """Emphasis, lists, headings, quotes and strikethrough render as CommonMark says."""
    html = render("## Result\n\n*close* **call**\n\n- one\n- two\n\n> quote\n\n~~wrong~~").html
    assert "<h2>Result</h2>" in html
    assert "<em>close</em> <strong>call</strong>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<blockquote>\n<p>quote</p>\n</blockquote>" in html
    assert "<s>wrong</s>" in html or "<del>wrong</del>" in html


def test_links_get_rel_nofollow_noopener() -> None:
    """Links keep their URL and gain rel="nofollow noopener noreferrer"."""
    [(tag, attrs)] = inspect(render("[results](https://example.com/r)").html)[1:]
    assert tag == "a"
    assert attrs == {"href": "https://example.com/r", "rel": "nofollow noopener noreferrer"}


def test_code_keeps_angle_brackets_escaped() -> None:
    """Code blocks show markup as text."""
    assert render("```\n<b>x</b>\n```").html == "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>"


def test_tables_render_with_alignment_as_classes() -> None:
    """Tables render; alignment is a class (the pages' CSP blocks style attributes)."""
    html = render("| a | b | c |\n|:-|-:|:-:|\n| 1 | 2 | 3 |").html
    assert "<table>" in html and '<th class="align-left">a</th>' in html
    assert '<td class="align-right">2</td>' in html and '<td class="align-center">3</td>' in html
    assert "style" not in html
    assert_inert(html)


def test_http_images_are_dropped_and_https_kept() -> None:
    """Images load over https only; an http image disappears rather than breaking, and a
    notice says why."""
    rendered = render("![a](http://example.com/a.png) ![b](https://example.com/b.png)")
    images = [attrs for tag, attrs in inspect(rendered.html) if tag == "img"]
    assert images == [{"src": "https://example.com/b.png", "alt": "b"}]
    assert [n.code for n in rendered.notices] == ["image_not_https"]
    assert "http:// images are not loaded, use https" in rendered.notices[0].message
    assert "http://example.com/a.png" in rendered.notices[0].message


def test_an_image_alone_that_is_removed_is_refused_with_its_notice() -> None:
    """A post that was only an http image is refused, and the error carries the notice."""
    with pytest.raises(ContentError) as refused:
        render("![x](http://example.com/x.png)")
    assert [n.code for n in refused.value.notices] == ["image_not_https"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://www.youtube.com/watch?v=dQw4w9WgXcQ", ("youtube", "dQw4w9WgXcQ")),
     ("https://youtube.com/watch?v=dQw4w9WgXcQ&t=42", ("youtube", "dQw4w9WgXcQ")),
     ("https://m.youtube.com/watch?v=dQw4w9WgXcQ", ("youtube", "dQw4w9WgXcQ")),
     ("https://youtu.be/dQw4w9WgXcQ", ("youtube", "dQw4w9WgXcQ")),
     ("https://www.youtube.com/shorts/dQw4w9WgXcQ", ("youtube", "dQw4w9WgXcQ")),
     ("https://vimeo.com/76979871", ("vimeo", "76979871")),
     ("https://x.com/nasa/status/1234567890123", ("x", "1234567890123")),
     ("https://twitter.com/nasa/status/1234567890123", ("x", "1234567890123")),
     ("https://mobile.twitter.com/nasa/status/99", ("x", "99")),
     ("https://www.instagram.com/p/C1a2B3c4D5e/", ("instagram", "C1a2B3c4D5e")),
     ("https://instagram.com/reel/C1a2B3c4D5e", ("instagram", "C1a2B3c4D5e"))],
)
def test_known_providers_become_cards(url: str, expected: tuple[str, str]) -> None:
    """A paragraph holding only a known provider's URL becomes a card."""
    for source in (url, f"<{url}>", f"[{url}]({url})"):
        rendered = render(f"Watch this:\n\n{source}\n\nMore soon.")
        assert [(c.link.provider, c.link.id) for c in rendered.cards] == [expected]
        assert f'data-provider="{expected[0]}"' in rendered.html
        assert rendered.html.startswith("<p>Watch this:</p>")
        assert rendered.html.endswith("<p>More soon.</p>")
        assert_inert(rendered.html, cards_allowed=True)


def test_video_cards_load_no_player_until_asked() -> None:
    """A YouTube link is a card with no frame in the page: the player (on the no-cookie
    host) is only named, for the reader to load on click."""
    html = render("https://youtu.be/dQw4w9WgXcQ").html
    assert "<iframe" not in html
    [figure] = [attrs for tag, attrs in inspect(html) if tag == "figure"]
    assert figure["data-embed-url"] == (
        "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?autoplay=1")


def test_social_cards_are_readable_without_script() -> None:
    """An X post is a plain link card until its oEmbed arrives: no third-party script."""
    html = render("https://x.com/nasa/status/42").html
    assert "<script" not in html
    assert '<a href="https://x.com/nasa/status/42"' in html


@pytest.mark.parametrize(
    "url",
    ["https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
     "https://evil.example/?u=youtube.com/watch?v=dQw4w9WgXcQ",
     "https://evilyoutube.com/watch?v=dQw4w9WgXcQ",
     "https://www.youtube.com/watch?v=dQw4w9WgXc\"",
     "https://www.youtube.com/watch?v=<script>abc",
     "https://youtu.be/short",
     "https://user:pw@youtube.com/watch?v=dQw4w9WgXcQ",
     "javascript://youtube.com/%0Aalert(1)",
     "https://x.com/nasa/likes",
     "https://vimeo.com/channels/staffpicks"],
)
def test_lookalike_and_malformed_urls_are_not_embedded(url: str) -> None:
    """Spoofed hosts and malformed ids are not cards."""
    assert Providers().find(url) is None
    rendered = render(url)
    assert rendered.cards == ()
    assert_inert(rendered.html)


def test_url_in_a_sentence_list_or_code_is_not_embedded() -> None:
    """Only a line of a paragraph of its own becomes a card: not in a sentence, a list, a
    quote, code, or behind link text."""
    url = "https://youtu.be/dQw4w9WgXcQ"
    for source in (f"Watch {url} now", f"- {url}", f"> {url}", f"```\n{url}\n```",
                   f"    {url}", f"[the video]({url})"):
        assert render(source).cards == (), source


@pytest.mark.parametrize("body", ["", "   ", "\n\n\t", "![x](http://example.com/x.png)"])
def test_empty_posts_are_refused(body: str) -> None:
    """A post with nothing to show is a ContentError with a clear message."""
    with pytest.raises(ContentError, match=r"empty|no visible content"):
        render(body)
