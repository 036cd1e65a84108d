"""tf4ctr data prepare: the command line over the streaming cache build."""

from __future__ import annotations


def test_data_prepare_builds_the_cache_from_a_yaml(small_dataset, tmp_path, capsys):
    from tf4ctr.cli import main as cli_main

    code = cli_main(
        [
            "data",
            "prepare",
            str(small_dataset()),
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "train 6, valid 3, test 2 rows" in out
    (built,) = (tmp_path / "c").iterdir()
    assert (built / "meta.json").is_file()


def test_data_prepare_name_without_dir_exits_2(capsys):
    from tf4ctr.cli import main as cli_main

    assert cli_main(["data", "prepare", "frappe_x1"]) == 2
    assert "give the folder of its split files with --dir" in capsys.readouterr().err
