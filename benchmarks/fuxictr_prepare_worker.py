"""Run FuxiCTR 2.3.10's Criteo preprocessing on one folder of split files (benchmark worker).

Runs under the FuxiCTR benchmark environment's python (see fuxictr_env.py), as a
subprocess of benchmarks/criteo_prepare.py, which measures its wall time and memory.
It does what FuxiCTR's own Criteo recipe does: ``CustomizedFeatureProcessor`` (the
``convert_to_bucket`` log-squared bucketing of I1-I13, fill 0), C1-C26 as strings,
min count 10, then ``build_dataset`` (polars scan + Ray Data → parquet) into a fresh
data root.

    <fuxictr python> benchmarks/fuxictr_prepare_worker.py --data-dir D --work-dir W
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from owned import make_owned  # benchmarks/ is this script's folder, so first on sys.path

NUMERIC = [f"I{i}" for i in range(1, 14)]
CATEGORICAL = [f"C{i}" for i in range(1, 27)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="train/valid/test.csv (tab, header)")
    parser.add_argument(
        "--work-dir", required=True, help="made afresh (see owned.py), then FuxiCTR's data root"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    from fuxictr.datasets.criteo import CustomizedFeatureProcessor
    from fuxictr.preprocess import build_dataset

    import_s = time.perf_counter() - start
    work = make_owned(Path(args.work_dir))
    data = Path(args.data_dir)
    feature_cols = [
        {"name": NUMERIC, "active": True, "dtype": "float", "type": "categorical",
         "preprocess": "convert_to_bucket", "fill_na": 0},
        {"name": CATEGORICAL, "active": True, "dtype": "str", "type": "categorical"},
    ]  # fmt: skip
    encoder = CustomizedFeatureProcessor(
        feature_cols=feature_cols,
        label_col={"name": "label", "dtype": "float"},
        dataset_id="criteo_synth",
        data_root=str(work),
    )
    start = time.perf_counter()
    build_dataset(
        encoder,
        train_data=str(data / "train.csv"),
        valid_data=str(data / "valid.csv"),
        test_data=str(data / "test.csv"),
        data_format="csv",
        sep="\t",
        min_categr_count=10,
    )
    seconds = time.perf_counter() - start
    feature_map = json.loads((work / "criteo_synth" / "feature_map.json").read_text())
    result = {"import_s": import_s, "preprocess_s": seconds}
    result["total_features"] = feature_map.get("total_features")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
