"""The pages' routes, the static files they load, and the OpenAPI docs page with local assets.

`install_web` adds all three to the app. `PAGES` maps each page's address to its file in
``pages/``; a page's HTML is the same for everyone: what it shows comes from the API after login.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGES_DIR = HERE / "pages"
STATIC_URL = "/static"
SWAGGER = f"{STATIC_URL}/vendor/swagger-ui"
DOCS_URL, OAUTH2_REDIRECT_URL = "/docs", "/docs/oauth2-redirect"
PAGES = {
    "/": "dashboard.html",
    "/login": "login.html",
    "/wall": "wall.html",
    "/field": "field.html",
}
PAGE_HEADERS = {
    "Cache-Control": "no-cache",  # revalidated each time: a new version shows at once
    # scripts and connections only from here: no injected script runs, nothing leaves
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _page_route(filename: str) -> Callable[[], Awaitable[FileResponse]]:
    path = PAGES_DIR / filename

    async def page() -> FileResponse:
        return FileResponse(path, media_type="text/html", headers=PAGE_HEADERS)

    return page


def _docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters={"validatorUrl": None},  # no call to validator.swagger.io
        )

    @router.get(OAUTH2_REDIRECT_URL)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return router


def install_web(app: FastAPI) -> None:
    """Serve the pages, their static files and ``/docs`` (create the app with docs_url=None)."""
    pages = APIRouter(include_in_schema=False)
    for url, filename in PAGES.items():
        pages.add_api_route(url, _page_route(filename), methods=["GET"])
    app.include_router(pages)
    app.include_router(_docs_router(app))
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
