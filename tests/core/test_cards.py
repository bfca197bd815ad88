"""Cards: which links become cards, what is kept of a provider's answer (only plain text
and https URLs on the provider's own hosts), and the markup readers get (no script, no
third-party load, a player only named for a click)."""

from __future__ import annotations

import json

import pytest

from bulletin.core import cards as C
from bulletin.core.cards import Card, CardState, Problem, Thumbnail, frame_origins, from_oembed
from bulletin.core.content import CardBook, Notice, card_links, card_notices, render
from bulletin.core.providers import CardLink, Providers
from tests.core.test_content import assert_inert, inspect

PROVIDERS = Providers()

X_ANSWER = {
    "url": "https://twitter.com/Interior/status/463440424141459456",
    "author_name": "US Department of the Interior",
    "author_url": "https://twitter.com/Interior",
    "html": ('<blockquote class="twitter-tweet"><p lang="en" dir="ltr">Sunsets don&#39;t get '
             'much better than this one over <a href="https://twitter.com/GrandTetonNPS">'
             '@GrandTetonNPS</a>. <a href="https://t.co/YuKy2rcjyU">pic.twitter.com/YuKy2rcjyU'
             '</a></p>&mdash; US Department of the Interior (@Interior) <a href="https://'
             'twitter.com/Interior/status/463440424141459456">May 5, 2014</a></blockquote>\n'
             '<script async src="https://platform.twitter.com/widgets.js"></script>'),
    "provider_name": "Twitter", "type": "rich", "version": "1.0",
}

HOSTILE = {
    "title": '<img src=x onerror="alert(1)">Title',
    "author_name": "<script>alert(1)</script>Mallory",
    "author_url": "javascript:alert(1)",
    "thumbnail_url": "javascript:alert(1)",
    "html": ('<blockquote onmouseover="alert(1)"><p onclick="alert(2)">Hello <a href="'
             'javascript:alert(3)">there</a><script>alert(4)</script><img src=x '
             'onerror=alert(5)><iframe src="javascript:alert(6)"></iframe></p>'
             '<a href="javascript:alert(7)" onclick="alert(8)">May 5, 2014</a></blockquote>'
             '<style>body{background:url(javascript:alert(9))}</style>'),
    "published_at": "javascript:alert(1)",
}


def link(url: str, providers: Providers = PROVIDERS) -> CardLink:
    """The card link of ``url`` (which must be one)."""
    found = providers.find(url)
    assert found is not None, url
    return found


@pytest.mark.parametrize(
    ("url", "provider", "ident", "canonical"),
    [("https://www.tiktok.com/@scout2015/video/6718335390845095173", "tiktok",
      "6718335390845095173", "https://www.tiktok.com/@scout2015/video/6718335390845095173"),
     ("https://bsky.app/profile/bsky.app/post/3l6oveex3ii2l", "bluesky",
      "bsky.app/3l6oveex3ii2l", "https://bsky.app/profile/bsky.app/post/3l6oveex3ii2l"),
     ("https://www.threads.net/@zuck/post/C8H5FiCtESk", "threads", "C8H5FiCtESk",
      "https://www.threads.com/@zuck/post/C8H5FiCtESk"),
     ("https://www.facebook.com/nasa/posts/10159999999999999", "facebook",
      "nasa/posts/10159999999999999",
      "https://www.facebook.com/nasa/posts/10159999999999999"),
     ("https://www.facebook.com/watch/?v=123456789", "facebook", "watch?v=123456789",
      "https://www.facebook.com/watch?v=123456789"),
     ("https://mastodon.social/@Gargron/109402736409436427", "mastodon",
      "109402736409436427", "https://mastodon.social/@Gargron/109402736409436427"),
     ("https://x.com/nasa/status/1234567890123/photo/1", "x", "1234567890123",
      "https://x.com/nasa/status/1234567890123"),
     ("https://player.vimeo.com/video/76979871", "vimeo", "76979871",
      "https://vimeo.com/76979871"),
     ("https://www.instagram.com/natgeo/p/C1a2B3c4D5e/", "instagram", "C1a2B3c4D5e",
      "https://www.instagram.com/p/C1a2B3c4D5e/")],
)
def test_every_provider_is_recognised(url: str, provider: str, ident: str,
                                      canonical: str) -> None:
    """Links of each provider are found, and rebuilt from their validated parts."""
    found = link(url)
    assert (found.provider, found.id, found.url) == (provider, ident, canonical)


@pytest.mark.parametrize("url", [
    "https://evil.example/@Gargron/109402736409436427",
    "https://www.tiktok.com/@scout2015/photo/1",
    "https://bsky.app/profile/bsky.app/feed/x",
    "https://www.facebook.com/nasa",
    "https://threads.net.evil.example/@zuck/post/C8H5FiCtESk",
    "https://x.com:8443/nasa/status/1",
    "https://127.0.0.1/@a/1",
])
def test_other_links_are_not_cards(url: str) -> None:
    """Look-alikes, other pages of a provider and unknown Mastodon hosts are not cards."""
    assert PROVIDERS.find(url) is None


def test_any_mastodon_instance_only_through_the_proxy() -> None:
    """An instance not on the list is a card only when a proxy fetches for the server, and
    then has no player and no thumbnail host: its host is whatever an editor typed."""
    url = "https://social.example/@reporter/1234567"
    assert Providers().find(url) is None
    via_proxy = Providers(via_proxy=True)
    found = link(url, via_proxy)
    assert found.provider == "mastodon" and found.host == "social.example"
    assert Card.pending(found, via_proxy).embed_url == ""
    assert C.thumbnail_url(found, "https://social.example/a.jpg", via_proxy,
                           source_origin="https://proxy.example") == ""
    listed = Providers(mastodon_hosts=frozenset({"social.example"}))
    assert Card.pending(link(url, listed), listed).embed_url == f"{url}/embed"


def test_a_link_on_the_line_after_text_becomes_a_card() -> None:
    """A link pasted right under the text, with no blank line, is a card; the text stays a
    paragraph of its own. So is a link line between two lines of text."""
    rendered = render("Crowds at the square.\nhttps://x.com/nasa/status/42")
    assert rendered.html.startswith("<p>Crowds at the square.</p>\n<figure")
    assert [c.link.id for c in rendered.cards] == ["42"]
    middle = render("Before\nhttps://youtu.be/dQw4w9WgXcQ\nAfter")
    assert middle.html.startswith("<p>Before</p>") and middle.html.endswith("<p>After</p>")
    assert [c.link.provider for c in middle.cards] == ["youtube"]
    assert_inert(middle.html, cards_allowed=True)


def test_a_link_inside_a_sentence_is_linkified_not_a_card() -> None:
    """A bare URL in a sentence is a link (with rel), a bare domain stays text, and an
    e-mail address is a mailto link."""
    rendered = render("Results at https://example.com/results?x=1. Ask tips@example.com, "
                      "or see example.org")
    [href1, href2] = [a.get("href") for t, a in inspect(rendered.html) if t == "a"]
    assert href1 == "https://example.com/results?x=1" and href2 == "mailto:tips@example.com"
    assert "example.org</p>" in rendered.html and rendered.cards == ()
    assert 'rel="nofollow noopener noreferrer"' in rendered.html
    sentence = render("Watch https://youtu.be/dQw4w9WgXcQ now")
    assert sentence.cards == () and 'href="https://youtu.be/dQw4w9WgXcQ"' in sentence.html


def test_card_links_are_found_once_in_order_and_at_most_ten() -> None:
    """The links to fetch are each card line once; past ten they stay links, with a
    notice."""
    lines = [f"https://x.com/a/status/{n}" for n in range(12)]
    twice = "\n\n".join([lines[1], lines[0], lines[1], lines[2]])
    assert [c.id for c in card_links(twice, PROVIDERS)] == ["1", "0", "2"]
    body = "\n\n".join(lines)
    assert len(card_links(body, PROVIDERS)) == 10
    rendered = render(body)
    assert len(rendered.cards) == 10
    assert [n.code for n in rendered.notices] == ["too_many_cards"]


def test_an_x_answer_becomes_a_full_card() -> None:
    """The post's words come from its markup's paragraphs as plain text, the date from the
    link after them; the script tag is gone."""
    found = link("https://x.com/Interior/status/463440424141459456")
    card, thumbnail = from_oembed(found, X_ANSWER, PROVIDERS,
                                  source_origin="https://publish.twitter.com")
    assert card.state is CardState.READY and thumbnail == ""
    assert card.text == ("Sunsets don't get much better than this one over @GrandTetonNPS. "
                         "pic.twitter.com/YuKy2rcjyU")
    assert card.author_name == "US Department of the Interior"
    assert card.author_url == "https://twitter.com/Interior"
    assert (card.date, card.published_at) == ("May 5, 2014", "2014-05-05")
    html = C.card_html(card)
    assert_inert(html, cards_allowed=True)
    assert "<script" not in html and "platform.twitter.com/widgets.js" not in html
    assert '<time class="card-date" datetime="2014-05-05">May 5, 2014</time>' in html
    assert 'data-embed-url="https://platform.twitter.com/embed/Tweet.html?id=' in html


def test_a_hostile_answer_leaves_nothing_that_can_run() -> None:
    """Script, event handlers and javascript: URLs, in the markup or in any field, do not
    survive: text is plain, URLs that are not https on the provider's hosts are dropped."""
    found = link("https://x.com/mallory/status/1")
    card, thumbnail = from_oembed(found, HOSTILE, PROVIDERS,
                                  source_origin="https://publish.twitter.com")
    assert thumbnail == "" and card.author_url == ""
    # The javascript: "published_at" is ignored; the date comes from the link's text.
    assert (card.published_at, card.date) == ("2014-05-05", "May 5, 2014")
    assert card.title == "Title" and card.author_name == "Mallory"
    assert card.text == "Hello there"
    html = C.card_html(card)
    assert_inert(html, cards_allowed=True)
    for bad in ("javascript", "onerror", "onclick", "onmouseover", "<script", "<iframe",
                "<style", "alert(4)"):
        assert bad not in html, bad
    assert "javascript" not in json.dumps(card.to_json())


@pytest.mark.parametrize(("value", "allowed"), [
    ("https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg", True),
    ("http://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg", False),
    ("https://i.ytimg.com.evil.example/a.jpg", False),
    ("https://user@i.ytimg.com/a.jpg", False),
    ("https://i.ytimg.com:8443/a.jpg", False),
    ("https://169.254.169.254/latest/meta-data", False),
    ("https://i.ytimg.com/a b.jpg", False),
    ("http://127.0.0.1:9999/thumb.jpg", True),  # the endpoint that answered
    ("http://127.0.0.1:9998/thumb.jpg", False),
])
def test_thumbnails_only_from_the_providers_media_hosts(value: str, allowed: bool) -> None:
    """A thumbnail is copied only from the provider's own media hosts over https, or from
    the endpoint that answered (one the operator configured)."""
    found = link("https://youtu.be/dQw4w9WgXcQ")
    got = C.thumbnail_url(found, value, PROVIDERS, source_origin="http://127.0.0.1:9999")
    assert got == (value if allowed else "")


def test_a_bluesky_player_needs_the_did_from_the_answer() -> None:
    """A Bluesky link by handle has no player until its oEmbed names the account's DID."""
    found = link("https://bsky.app/profile/bsky.app/post/3l6oveex3ii2l")
    assert Card.pending(found, PROVIDERS).embed_url == ""
    answer = {"author_name": "Bluesky", "author_url": "https://bsky.app/profile/bsky.app",
              "html": '<blockquote class="bluesky-embed" data-bluesky-uri="at://did:plc:'
                      'z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3l6oveex3ii2l"><p>Hi</p>'
                      '</blockquote><script src="https://embed.bsky.app/static/embed.js">'
                      "</script>"}
    card, _ = from_oembed(found, answer, PROVIDERS, source_origin="https://embed.bsky.app")
    assert card.embed_url == ("https://embed.bsky.app/embed/did:plc:z72i7hdynmk6r22z27h6tvur"
                              "/app.bsky.feed.post/3l6oveex3ii2l")
    assert card.text == "Hi"


def test_a_mastodon_status_reads_as_oembed() -> None:
    """A status from an instance's API gives author, text, time and its first picture."""
    found = link("https://mastodon.social/@Gargron/109402736409436427")
    data = C.from_mastodon_status({
        "content": "<p>Hello <a href=\"javascript:x\">#world</a></p>",
        "created_at": "2022-11-25T10:00:00.000Z",
        "account": {"display_name": "Eugen", "url": "https://mastodon.social/@Gargron"},
        "media_attachments": [{"preview_url": "https://files.mastodon.social/a.png"}]})
    card, thumbnail = from_oembed(found, data, PROVIDERS, source_origin="")
    assert (card.author_name, card.author_url) == ("Eugen", "https://mastodon.social/@Gargron")
    assert card.text == "Hello #world" and card.published_at == "2022-11-25T10:00:00Z"
    assert thumbnail == "https://files.mastodon.social/a.png"


def test_a_video_card_shows_title_thumbnail_and_player_address() -> None:
    """A video card has its title linking to the original and the server's copy of the
    thumbnail, in WebP and JPEG; the thumbnail is nobody else's URL."""
    found = link("https://youtu.be/dQw4w9WgXcQ")
    card, _ = from_oembed(found, {"title": "Never gonna", "author_name": "Rick",
                                  "author_url": "https://www.youtube.com/@RickAstley"},
                          PROVIDERS, source_origin="https://www.youtube.com")
    thumb = Thumbnail(480, 360, (
        {"width": 480, "height": 360, "content_type": "image/webp", "url": "/media/a-480.webp"},
        {"width": 480, "height": 360, "content_type": "image/jpeg", "url": "/media/a-480.jpg"}))
    html = C.card_html(card.with_thumbnail(thumb))
    assert_inert(html, cards_allowed=True)
    assert '<a href="https://www.youtube.com/watch?v=dQw4w9WgXcQ"' in html
    assert 'srcset="/media/a-480.webp 480w"' in html and 'src="/media/a-480.jpg"' in html
    assert "View on YouTube" in html


def test_a_plain_link_card_names_the_provider_and_links_the_original() -> None:
    """Without an answer a card is the provider's name and a real link to the post."""
    html = C.card_html(Card.plain(link("https://vimeo.com/76979871"), PROVIDERS))
    assert 'data-state="link"' in html and '<span class="card-provider">Vimeo</span>' in html
    assert '<a href="https://vimeo.com/76979871" rel="nofollow noopener noreferrer">' in html


def test_cards_round_trip_through_json() -> None:
    """A card read back from the stored JSON is the same card."""
    found = link("https://x.com/Interior/status/463440424141459456")
    card, _ = from_oembed(found, X_ANSWER, PROVIDERS, source_origin="")
    assert Card.from_json(json.loads(json.dumps(card.to_json()))) == card
    failed = Card.plain(found, PROVIDERS, Problem("provider_timeout", "no answer"))
    back = Card.from_json(failed.to_json())
    assert back is not None and back.problem == Problem("provider_timeout", "no answer")
    assert Card.from_json({"provider": "youtube", "id": "x", "url": "https://youtu.be/x"}
                          ) is None


def test_rendering_with_a_book_shows_its_cards_in_place() -> None:
    """The cards known for a text's links are shown where the links were."""
    found = link("https://x.com/Interior/status/463440424141459456")
    card, _ = from_oembed(found, X_ANSWER, PROVIDERS, source_origin="")
    body = f"Before\n\n{found.url}\n\nAfter"
    rendered = render(body, CardBook(PROVIDERS, {found.url: card}))
    assert rendered.cards == (card,)
    assert rendered.html.startswith("<p>Before</p>\n<figure") and "Sunsets" in rendered.html


def test_notices_tell_the_desk_about_incomplete_cards() -> None:
    """A pending card and a card a provider did not give each have a notice."""
    x = link("https://x.com/a/status/1")
    fb = link("https://www.facebook.com/nasa/posts/1")
    notices = card_notices((Card.pending(x, PROVIDERS), Card.plain(fb, PROVIDERS, Problem(
        "provider_timeout", "provider did not answer: no answer within 3 s"))))
    assert [n.code for n in notices] == ["card_pending", "provider_timeout"]
    assert notices[1] == Notice("provider_timeout", "Facebook card: provider did not "
                                "answer: no answer within 3 s (shown as a plain link)")


def test_frame_origins_are_those_of_the_cards_players() -> None:
    """A page allows frames only from its cards' players (and the players that posts from
    before cards embedded)."""
    yt = Card.pending(link("https://youtu.be/dQw4w9WgXcQ"), PROVIDERS).to_json()
    threads = Card.pending(link("https://www.threads.net/@zuck/post/C8H5FiCtESk"),
                           PROVIDERS).to_json()
    bsky = Card.pending(link("https://bsky.app/profile/bsky.app/post/3l6"), PROVIDERS).to_json()
    legacy = {"provider": "vimeo", "id": "1", "url": "https://vimeo.com/1"}
    forged = dict(yt, embed_url="https://evil.example/embed")
    assert frame_origins([yt]) == {"https://www.youtube-nocookie.com"}
    assert frame_origins([threads]) == {"https://www.threads.com", "https://www.threads.net"}
    assert frame_origins([bsky, forged]) == set()
    assert frame_origins([legacy]) == {"https://player.vimeo.com"}
