"""The README's examples run as written: its Python blocks, and its YAML configs train."""

from __future__ import annotations

import re

import numpy as np

from tests.conftest import REPO
from tf4ctr.cli import main

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    namespace: dict = {}  # one namespace, as a reader runs the blocks in order
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    out = namespace["out"]
    assert out.logit.shape == out.z_s.shape == out.z_c.shape == (8,)
    # the in-memory API block: scores, and the same scores from the run reloaded from disk
    probabilities = namespace["probabilities"]
    assert probabilities.shape == (2,) and ((probabilities > 0) & (probabilities < 1)).all()
    rows = {"user": ["3", "7"], "item": ["1", "2"]}
    np.testing.assert_array_equal(namespace["same_run"].predict(rows), probabilities)


def test_yaml_tour_trains(tmp_path, monkeypatch):
    dataset_yaml, run_yaml = re.findall(r"```yaml\n(.*?)```", README, re.S)[:2]
    (tmp_path / "my_data.yaml").write_text(dataset_yaml)
    (tmp_path / "my_run.yaml").write_text(run_yaml)
    (tmp_path / "data").mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 2000), ("valid", 400), ("test", 400)):
        rows = ["clicked,user_id,item_id,hour,price,count"]
        for _ in range(n):
            user = rng.integers(0, 50)
            count = "" if rng.random() < 0.1 else str(rng.integers(0, 500))
            rows.append(
                f"{int(rng.random() < 0.2 + 0.4 * (user < 10))},{user},{rng.integers(0, 80)},"
                f"{rng.integers(0, 24)},{rng.random():.3f},{count}"
            )
        (tmp_path / "data" / f"{split}.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "train",
            "--config",
            "my_run.yaml",
            "train.epochs=1",
            "train.batch_size=512",
            "model.simple_hidden_units=[16]",
            "model.complex_hidden_units=[16,16]",
            "--no-progress",
        ]
    )
    assert code == 0
    assert (tmp_path / "runs" / "my-first-run" / "model.pt").is_file()


def test_speed_table_is_speed_json():
    """Every figure of the README's speed table is the committed benchmarks/results/speed.json,
    as rounded there: a rerun of speed.py that is not carried into the README fails here."""
    import json

    store = json.loads((REPO / "benchmarks/results/speed.json").read_text(encoding="utf-8"))
    section = README[README.index("### Speed against FuxiCTR") :]
    rows = re.findall(r"^\| (DNN|DualMLP|DeepFM|DCNv2|TF4CTR) vs [^|]+\|(.*)\|$", section, re.M)
    assert [name for name, _ in rows] == ["DNN", "DualMLP", "DeepFM", "DCNv2", "TF4CTR"]
    for name, cells in rows:
        key = name.lower()
        if key == "tf4ctr":
            s, other = store["official"]["summary"]["tf4ctr"], "official"
            share = store["summary"]["tf4ctr"]["fraction_of_own_matmul"]
        else:
            s, other = store["summary"][key], "fuxictr"
            share = s["fraction_of_own_matmul"]
        train, evals, rss = s["train_samples_per_s"], s["eval_samples_per_s"], s["peak_rss_mb"]
        expected = [
            f"{train['ours']:,.0f}",
            f"{train[other]:,.0f}",
            f"{train['ratio']:.2f}",
            f"{evals['ours']:,.0f}",
            f"{evals[other]:,.0f}",
            f"{evals['ratio']:.2f}",
            f"{100 * share:.0f} %",
            f"{rss['ours']:,.0f} / {rss[other]:,.0f}",
        ]
        assert [c.strip() for c in cells.split("|")] == expected, name
