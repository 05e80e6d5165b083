"""The headers every page officeflows serves to a person carries (patient links, onboarding
links, the staff board): never cached, never framed, never indexed, no referrer, no
script, forms only to itself."""

from __future__ import annotations

__all__ = ["PRIVATE_PAGE_HEADERS"]

PRIVATE_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
