"""The ablation report rewrites one study's section at a time and keeps the rest."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ablations.py"


@pytest.fixture(scope="module")
def ablations():
    spec = importlib.util.spec_from_file_location("ablations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replacing_one_study_keeps_the_other_sections(ablations):
    sections = []
    for study in ablations.STUDIES:
        start, end = ablations.markers(study)
        sections.append(f"{start}\nold {study}\n{end}\n")
    doc = "# Ablations\n\n" + "\n".join(sections)
    new = ablations.replace_section(doc, "mixing", "new table\n", Path("doc.md"))
    assert "old losses" in new and "old datasets" in new
    assert "old mixing" not in new and "new table" in new
    start, end = ablations.markers("mixing")
    assert new.index(start) < new.index("new table") < new.index(end)
    assert ablations.replace_section(new, "mixing", "new table\n", Path("doc.md")) == new


@pytest.mark.parametrize("doc", ["no markers", "<!-- ablation-results:losses:end -->\n"
                                 "<!-- ablation-results:losses:start -->"])
def test_a_document_without_well_placed_markers_is_refused_by_name(ablations, doc):
    with pytest.raises(SystemExit, match=r"report\.md: needs the markers .*losses:start"):
        ablations.replace_section(doc, "losses", "table\n", Path("report.md"))


def test_collect_groups_runs_by_study_in_table_order(ablations, tmp_path):
    runs = [("losses", "ssitrim", 1), ("losses", "ssimse", 0), ("losses", "ssitrim", 0),
            ("mixing", "pareto", 0)]
    for study, variant, seed in runs:
        run_dir = tmp_path / study / ablations.slug(variant) / f"seed{seed}"
        run_dir.mkdir(parents=True)
        record = {"study": study, "variant": variant, "seed": seed, "absrel": 0.3}
        (run_dir / "result.json").write_text(json.dumps(record))
    found = ablations.collect(tmp_path)
    assert list(found) == ["losses", "mixing"]
    assert list(found["losses"]) == ["ssimse", "ssitrim"]
    assert sorted(r["seed"] for r in found["losses"]["ssitrim"]) == [0, 1]


def test_table_lists_swapped_shares_per_seed_only_when_recorded(ablations):
    records = [{"seed": 1, "absrel": 0.32, "delta1": 0.5, "seconds": 60, "inverted": 84.0},
               {"seed": 0, "absrel": 0.34, "delta1": 0.4, "seconds": 120, "inverted": 17.0}]
    references = {"prior": {"absrel": 0.36, "delta1": 0.47, "inverted": 22.0}}
    table = ablations.study_table({"ssimse": records}, references)
    assert "| ssimse | 0.3300 ± 0.0141 | 0.4500 ± 0.0707 | 2 | 1.5 | 17 / 84 |" in table
    assert "| *prior* | 0.3600 | 0.4700 | – | – | 22 |" in table
    old = [{k: v for k, v in r.items() if k != "inverted"} for r in records]
    assert "swapped" not in ablations.study_table({"ssimse": old}, references)
