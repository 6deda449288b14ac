from __future__ import annotations

from fastapi import FastAPI

from media_gateway.auth.bootstrap import auth_bootstrap
from media_gateway.auth.errors import OAuthError
from media_gateway.auth.google.routes import router as google_router
from media_gateway.auth.routes import accounts, admin, oauth, pages, registration
from media_gateway.auth.state import install_auth_state
from media_gateway.core.app import create_service_app
from media_gateway.core.ratelimit import install_rate_limiting
from media_gateway.core.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(
        "auth",
        settings or Settings(),
        routers=[
            oauth.router,
            registration.router,
            pages.router,
            accounts.router,
            admin.router,
            google_router,
        ],
        lifespan_parts=[auth_bootstrap],
    )
    install_auth_state(app.state.ctx)
    app.add_exception_handler(OAuthError, oauth.on_oauth_error)
    install_rate_limiting(app)
    return app
