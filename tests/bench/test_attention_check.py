"""bench/attention_check.py `--smoke`: the GPU attention check runs end to end on a CPU (XLA kernel, tiny shapes),
every path within a bf16 bound of the float32 reference, and padding as lengths equal to the dense mask."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "bench" / "attention_check.py"


def test_smoke_run(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(tmp_path / "rows.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {r["case"] for r in rows["parity"]} == {"right padding", "left padding", "packed documents",
                                                   "ALiBi + right padding"}
    for r in rows["parity"]:
        assert max(r["out"], r["dq"], r["dk"], r["dv"]) < 0.02 * max(1.0, r["grad scale"]), r
    assert {r["variant"] for r in rows["lengths"]} == {"dense mask", "key lengths", "query + key lengths",
                                                       "minibert fused"}
    assert all(r["diff"] < 1e-6 and r["padded rows finite"] for r in rows["lengths"])
    assert "| minibert fused |" in done.stdout
