"""`mixdepth serve`: a local web page for the depth of a photo (see docs/serve.md).

`DepthService` does the work (uploads, predictions, download files in a temporary folder);
`create_app` wraps it in a Starlette application whose page lives in `static/`. The server
modules need the `app` extra (`pip install 'mixdepth[app]'`).
"""

from mixdepth.serve.service import DepthService, UploadError

__all__ = ["DepthService", "UploadError"]
