"""Deep links into each platform's apps and web site for one of its content ids."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from media_gateway.catalog.schemas import DeepLinks


@dataclass(frozen=True)
class LinkTemplates:
    app: str | None
    web: str | None
    tv: str | None = None


DEEP_LINKS: dict[str, LinkTemplates] = {
    "netflix": LinkTemplates("netflix://title/{id}", "https://www.netflix.com/title/{id}"),
    "prime_video": LinkTemplates("aiv://aiv/view?gti={id}", "https://www.amazon.com/gp/video/detail/{id}"),
    "disney_plus": LinkTemplates("disneyplus://content/{id}", "https://www.disneyplus.com/video/{id}"),
    "hbo_max": LinkTemplates("hbomax://content/{id}", "https://www.hbomax.com/video/{id}"),
    "hulu": LinkTemplates("hulu://watch/{id}", "https://www.hulu.com/watch/{id}"),
    "apple_tv_plus": LinkTemplates(
        "videos://watch/{id}", "https://tv.apple.com/us/video/{id}", "com.apple.tv://watch/{id}"
    ),
    "paramount_plus": LinkTemplates(
        "paramountplus://content/{id}", "https://www.paramountplus.com/movies/{id}"
    ),
    "peacock": LinkTemplates("peacock://watch/{id}", "https://www.peacocktv.com/watch/{id}"),
    "youtube": LinkTemplates("vnd.youtube://watch?v={id}", "https://www.youtube.com/watch?v={id}"),
}


def deep_links(platform: str, content_id: str) -> DeepLinks:
    """The platform's links for `content_id`; no links for a platform without known templates."""
    templates = DEEP_LINKS.get(platform)
    if templates is None:
        return DeepLinks()
    # Ids are opaque to us: anything outside the URL-safe set must not change the link's structure.
    safe_id = quote(content_id, safe="")

    def fill(template: str | None) -> str | None:
        return None if template is None else template.format(id=safe_id)

    return DeepLinks(app=fill(templates.app), web=fill(templates.web), tv=fill(templates.tv))
