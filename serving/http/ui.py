"""What people open in a browser: the demo page at ``/`` and the API docs at ``/docs``.

Everything is served from installed packages (our ``static/`` folder, the ``swagger-ui-bundle``
wheel), so both work on a machine with no internet access. Files are looked up in a fixed
listing made at import, never by joining a request path onto a folder.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse

from serving.errors import NotFound
from serving.http.responses import ORJSONResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
_PAGE_FILES = {p.name: p for p in STATIC.iterdir() if p.is_file()}


def _swagger_files() -> dict[str, Path]:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # docs degrade to a message, serving is unaffected
        return {}
    root = Path(str(swagger_ui_path))
    names = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
    return {n: root / n for n in names if (root / n).is_file()}


_SWAGGER_FILES = _swagger_files()


def _file(files: dict[str, Path], name: str) -> FileResponse:
    if name not in files:
        raise NotFound(f"no file {name!r}")
    return FileResponse(files[name], headers={"Cache-Control": "public, max-age=3600"})


@router.get("/")
async def page() -> FileResponse:
    return _file(_PAGE_FILES, "index.html")


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    return _file(_PAGE_FILES, name)


@router.get("/openapi.json")
async def openapi(request: Request) -> ORJSONResponse:
    return ORJSONResponse(request.app.openapi())


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    if not _SWAGGER_FILES:
        return HTMLResponse(
            "<p>Swagger UI is not installed (<code>pip install swagger-ui-bundle</code>). "
            'The API description is at <a href="/openapi.json">/openapi.json</a>.</p>'
        )
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> FileResponse:
    return _file(_SWAGGER_FILES, name)
