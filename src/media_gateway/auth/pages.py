"""The minimal HTML pages: sign-in with consent, the device code page. Every echoed value is escaped."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode, urlsplit

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.6rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}"
    "button{margin:.8rem .4rem 0 0;padding:.5rem 1rem}.error{color:#b00020}"
    ".notice{border-left:4px solid #b26a00;padding:.4rem .8rem;background:#fff6e5}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type=hidden name="{escape(name)}" value="{escape(value)}">'


def _error(message: str | None) -> str:
    return f"<p class=error role=alert>{escape(message)}</p>" if message else ""


def _credentials() -> str:
    return (
        "<label for=email>Email</label><input id=email name=email type=email autocomplete=username required>"
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
    )


def login_consent_page(
    *,
    request_id: str,
    csrf_token: str,
    client_name: str,
    scope: str,
    google_enabled: bool,
    error: str | None = None,
    self_registered: bool = False,
    redirect_uri: str = "",
) -> str:
    scopes = "".join(f"<li>{escape(s)}</li>" for s in scope.split()) or "<li>basic access</li>"
    notice = ""
    if self_registered:
        # Anyone can register a client under any name: say so, and where the browser goes next.
        host = urlsplit(redirect_uri).netloc or redirect_uri
        notice = (
            "<p class=notice role=note>This is a third-party application, not one of Media Gateway's: "
            "it registered itself, and its name is its own claim. Continue only if you started this "
            f"sign-in from it. Afterwards you will be sent to <strong>{escape(host)}</strong>.</p>"
        )
    google = ""
    if google_enabled:
        href = "/auth/oauth/google/authorize?" + urlencode({"request_id": request_id})
        google = f'<p><a href="{escape(href)}">Sign in with Google</a></p>'
    body = (
        f"<p><strong>{escape(client_name)}</strong> asks to access your Media Gateway account:</p>"
        f"<ul>{scopes}</ul>{notice}{_error(error)}"
        '<form method=post action="/auth/authorize">'
        f"{_hidden('request_id', request_id)}{_hidden('csrf_token', csrf_token)}{_credentials()}"
        "<button name=action value=allow type=submit>Sign in and allow</button>"
        "<button name=action value=deny type=submit formnovalidate>Deny</button></form>"
        f"{google}"
    )
    return _page("Sign in", body)


def device_page(*, csrf_token: str, user_code: str = "", error: str | None = None) -> str:
    body = (
        "<p>Enter the code shown on your device, then sign in to connect it.</p>"
        f"{_error(error)}"
        '<form method=post action="/auth/device/verify">'
        f"{_hidden('csrf_token', csrf_token)}"
        "<label for=user_code>Code</label><input id=user_code name=user_code autocomplete=off "
        f'placeholder="XXXX-XXXX" value="{escape(user_code)}" required>'
        f"{_credentials()}"
        "<button name=action value=approve type=submit>Connect device</button>"
        "<button name=action value=deny type=submit>Deny</button></form>"
    )
    return _page("Connect a device", body)


def message_page(title: str, message: str) -> str:
    return _page(title, f"<p>{escape(message)}</p>")
