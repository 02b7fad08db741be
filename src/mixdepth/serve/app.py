"""The web app: a Starlette application around a DepthService, and a uvicorn server for it.

Routes (answers are JSON unless a file is asked for; errors are JSON {"error": message}):

| route                                  | answer                                             |
|----------------------------------------|----------------------------------------------------|
| GET /                                  | the page                                           |
| GET /static/FILE                       | the page's script and style                        |
| GET /api/info                          | model, working size, limits, colour maps, examples |
| GET /api/colormaps                     | each colour map's 256 RGB entries                  |
| GET /api/examples/NAME                 | a bundled example photo (PNG)                      |
| POST /api/predict?name=FILE            | body: the image file's bytes -> the result         |
| GET /api/results/ID/depth              | the depth for display (uint16, see `preview`)      |
| GET /api/results/ID/KIND[?colormap=C]  | a download: png16, pfm, color, ply                 |
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mixdepth.errors import MixdepthError
from mixdepth.serve.service import DepthService, UploadError, example_png, megabytes

STATIC = Path(__file__).parent / "static"
# the page loads nothing but its own files (and the photo the user picked, as a blob: URL)
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:",
    "Cache-Control": "no-store",
}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(service: DepthService) -> Starlette:
    """The application; the service's temporary folder is removed when it shuts down."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    async def info(request: Request) -> Response:
        return JSONResponse(service.info())

    async def colormaps(request: Request) -> Response:
        return JSONResponse(service.colormaps())

    async def example(request: Request) -> Response:
        try:
            data = await run_in_threadpool(example_png, request.path_params["name"])
        except KeyError:
            return error(404, "no such example")
        return Response(data, media_type="image/png")

    async def predict(request: Request) -> Response:
        name = request.query_params.get("name") or "upload"
        declared = request.headers.get("content-length", "")
        too_big = f"{name}: the file is over the limit of {megabytes(service.max_bytes)}"
        if declared.isdigit() and int(declared) > service.max_bytes:
            return error(413, too_big)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > service.max_bytes:
                return error(413, too_big)
        try:
            result = await run_in_threadpool(service.predict, bytes(body), name)
        except UploadError as err:
            return error(err.status, str(err))
        except MixdepthError as err:
            return error(400, str(err))
        links = {kind: f"/api/results/{result.id}/{kind}" for kind in service.info()["downloads"]}
        return JSONResponse({
            "id": result.id,
            "name": result.stem,
            "width": result.width,
            "height": result.height,
            "network": list(result.network),
            "model": service.predictor.config.name,
            "seconds": round(result.seconds, 4),
            "depth": f"/api/results/{result.id}/depth",
            "downloads": links,
        })

    async def depth(request: Request) -> Response:
        try:
            data, width, height = await run_in_threadpool(
                service.preview, request.path_params["rid"]
            )
        except KeyError:
            return error(404, "no such result (results are kept for the last uploads only)")
        headers = {"X-Depth-Width": str(width), "X-Depth-Height": str(height)}
        return Response(data, media_type="application/octet-stream", headers=headers)

    async def download(request: Request) -> Response:
        colormap = request.query_params.get("colormap", "inferno")
        try:
            path = await run_in_threadpool(
                service.download, request.path_params["rid"], request.path_params["kind"],
                colormap,
            )
        except KeyError:
            return error(404, "no such result or download")
        except MixdepthError as err:
            return error(400, str(err))
        return FileResponse(path, filename=path.name, content_disposition_type="attachment")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            yield
        finally:
            service.close()

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/colormaps", colormaps),
        Route("/api/examples/{name}", example),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/results/{rid}/depth", depth),
        Route("/api/results/{rid}/{kind}", download),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error})


def make_server(app: Starlette, host: str, port: int, on_ready: Callable[[int], None]):
    """A uvicorn server for `app` that calls on_ready(port) once it listens (port 0: any)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready(self.servers[0].sockets[0].getsockname()[1])

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    return Server(config)
