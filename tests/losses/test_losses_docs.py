import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "losses.md"


@pytest.mark.parametrize("index", [0, 1])
def test_guide_examples_run(index, capsys):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 2
    exec(compile(blocks[index], str(GUIDE), "exec"), {})
    assert capsys.readouterr().out
