"""The command line is one module per command, found by the parser: every command and its help work."""

from __future__ import annotations

import pytest

from nas.cli import build_parser, commands, main

EXPECTED = (
    "models",
    "devices",
    "profile",
    "estimate",
    "train",
    "search",
    "export",
    "verify",
    "pareto",
    "plot",
    "select",
    "analyze",
    "report",
    "baselines",
    "compare",
)


def test_every_command_module_is_found_in_help_order():
    assert tuple(module.NAME for module in commands()) == EXPECTED
    assert len({module.ORDER for module in commands()}) == len(EXPECTED)  # no two claim one place


def test_nas_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for name in EXPECTED:
        assert name in printed


@pytest.mark.parametrize("name", EXPECTED)
def test_every_commands_help_works_and_shows_its_flags(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: nas {name}")
    module = next(m for m in commands() if name == m.NAME)
    assert " ".join(module.HELP.split()[:3]) in " ".join(printed.split()) or name in printed


@pytest.mark.parametrize(
    ("name", "shared"),
    [
        ("export", ("--study", "--storage", "--results-dir", "--under-load", "--threads")),
        ("pareto", ("--study", "--storage", "--results-dir", "--device", "--kernel-set")),
        ("select", ("--study", "--storage", "--results-dir", "--device", "--kernel-set", "--max-latency-ms")),
        ("search", ("--study", "--storage", "--results-dir", "--device", "--kernel-set", "--max-ram-kb")),
        ("analyze", ("--model", "--dataset", "--results-dir", "--device", "--kernel-set")),
    ],
)
def test_shared_flag_groups_reach_every_command_that_uses_them(name, shared):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    options = {flag for action in sub.choices[name]._actions for flag in action.option_strings}
    assert set(shared) <= options


def test_a_bad_flag_is_a_one_line_error_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--study", "s1"])  # which trials: none of --trial, --pareto, --knee
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "(see nas export --help)" in err


def test_the_cli_and_the_api_build_the_same_config_from_the_same_settings():
    from nas.api import search_config
    from nas.cli import flags
    from nas.objectives import term

    argv = ["search", "--study", "s", "--device", "stm32h7", "--max-ram-kb", "100", "--channel-norm", "l1"]
    argv += ["--kernel-set", "cmsis_nn", "--search-sparsity", "--width", "0.5", "--steps", "50", "--seed", "3"]
    argv += ["--train-lr", "0.01", "--finetune-targets", "labels", "--no-snap-channels"]
    args = build_parser().parse_args(argv)
    from_cli = flags.search_config(args)
    from_api = search_config(
        model="cnn",
        device="stm32h7",
        budgets={"ram_bytes": term("ram_bytes").to_raw(100)},
        channel_norm="l1",
        kernel_set="cmsis_nn",
        search_sparsity=True,
        width_multiplier=0.5,
        finetune_steps=50,
        seed=3,
        train_lr=0.01,
        finetune_targets="labels",
        snap_channels=False,
    )
    assert from_cli == from_api and not from_cli.snap_channels
    assert from_cli.finetune.targets == "labels" and from_cli.finetune.steps == 50
    assert from_cli.train.learning_rate == 0.01
    assert from_cli.train.seed == 3 and from_cli.budgets["flash_bytes"] > 0  # the device's flash limit joins


@pytest.mark.parametrize(
    "argv",
    [
        ["pareto", "--study", "nope"],
        ["plot", "--study", "nope"],
        ["report", "--study", "nope"],
        ["export", "--study", "nope", "--knee"],
        ["baselines", "--study", "nope"],
        ["select", "--study", "nope"],
        ["estimate", "--study", "nope", "--trial", "0"],
        ["compare", "nope", "other"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_command_that_reads_a_missing_study_says_so_and_creates_nothing(argv, tmp_path, capsys):
    results = tmp_path / "results"
    assert main([*argv, "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "no study 'nope'" in err and len(err.strip().splitlines()) == 1
    assert not results.exists()  # no directory, no SQLite file
