"""Zero-shot cross-dataset evaluation (METHOD.md section 6): benchmarks, the loop, tables.

    from mixdepth.eval import evaluate
    result = evaluate("nyu", "/data/nyu", model="dpt_large", weights="dpt_large.pt", out="out")
    result.primary, result.summary["metrics"]

See docs/evaluation.md.
"""

from mixdepth.eval.alignment import ALIGNMENTS, aligned_depth, depth_metrics, score_dense
from mixdepth.eval.benchmarks import Benchmark, list_benchmarks, load_benchmark
from mixdepth.eval.evaluate import EvalResult, FilePredictions, ModelPredictions, evaluate
from mixdepth.eval.report import markdown_table, metrics_table, read_summaries, write_table

__all__ = [
    "ALIGNMENTS",
    "Benchmark",
    "EvalResult",
    "FilePredictions",
    "ModelPredictions",
    "aligned_depth",
    "depth_metrics",
    "evaluate",
    "list_benchmarks",
    "load_benchmark",
    "markdown_table",
    "metrics_table",
    "read_summaries",
    "score_dense",
    "write_table",
]
