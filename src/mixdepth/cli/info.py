"""`mixdepth info`: versions, threads and devices."""

from mixdepth.cli.app import app


@app.command()
def info() -> None:
    """Print versions of mixdepth and its main dependencies, CPU threads and devices."""
    import platform

    import numpy
    import torch
    from rich.console import Console
    from rich.table import Table

    import mixdepth

    table = Table(show_header=False, box=None)
    table.add_row("mixdepth", mixdepth.__version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", torch.__version__)
    table.add_row("numpy", numpy.__version__)
    table.add_row("cpu threads", str(torch.get_num_threads()))
    cuda = torch.cuda.is_available()
    table.add_row("cuda", f"{torch.cuda.device_count()} device(s)" if cuda else "not available")
    mps = getattr(torch.backends, "mps", None)
    table.add_row("mps", "available" if mps is not None and mps.is_available() else "not available")
    Console().print(table)
