"""Run folders (igbench.runs): one layout for every model; what a run does not name is refused, never guessed."""
from dataclasses import dataclass, field

import pytest
import yaml

from igbench.cli.main import main
from igbench.errors import UserError
from igbench.runs import check_resume, latest_checkpoint, mark_checkpoint, open_run, read_run, start_run


@dataclass
class Train:
    steps: int = 10
    log_every: int = 5


@dataclass
class Config:
    train: Train = field(default_factory=Train)


def test_a_run_records_its_model_and_task_and_reopens_with_overrides(tmp_path):
    start_run(tmp_path / "run", "prior", Config(), "clevr", tmp_path, {"train_fingerprint": "abc"})
    info = read_run(tmp_path / "run")
    assert (info["model"], info["task"], info["train_fingerprint"]) == ("prior", "clevr", "abc")
    run, config, _ = open_run(tmp_path / "run", "prior", Config, ["train.log_every=1"])
    assert run == tmp_path / "run" and config.train == Train(10, 1)
    with pytest.raises(UserError, match="is a 'prior' run, not 'oracle'"):
        open_run(tmp_path / "run", "oracle", Config)


@pytest.mark.parametrize("missing", ["model", "task"])
def test_a_run_without_model_or_task_is_refused_in_one_line(tmp_path, capsys, missing):
    start_run(tmp_path / "run", "oracle", Config(), "clevr", tmp_path)
    info = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    del info[missing]
    (tmp_path / "run" / "run.yaml").write_text(yaml.safe_dump(info))
    with pytest.raises(UserError, match=f"names no {missing}"):
        read_run(tmp_path / "run")
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), "--data", str(tmp_path), "--out", str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"names no {missing}" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_resume_is_required_and_keeps_what_is_fixed(tmp_path):
    start_run(tmp_path, "cnn-set", Config(), "clevr", tmp_path)
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        check_resume(tmp_path, Config(), resume=False, fixed=())
    check_resume(tmp_path, Config(Train(10, 1)), resume=True, fixed=("train.steps",))  # logging may change
    with pytest.raises(UserError, match=r"--resume with train.steps=20, the run has 10"):
        check_resume(tmp_path, Config(Train(20, 5)), resume=True, fixed=("train.steps",))
    with pytest.raises(UserError, match="a different 'train' config"):
        check_resume(tmp_path, Config(Train(10, 1)), resume=True, fixed=("train",))


def test_the_latest_checkpoint_is_the_newest_complete_one(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (100, 200, 300):
        (tmp_path / "checkpoints" / f"step_{step:06d}").mkdir(parents=True)
    mark_checkpoint(tmp_path / "checkpoints" / "step_000100", 100)
    mark_checkpoint(tmp_path / "checkpoints" / "step_000200", 200)  # step_000300 was cut off before its state.json
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_000200"
