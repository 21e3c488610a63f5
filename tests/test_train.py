"""`backprop train`: runs the generated trainer, loss goes down, outputs are written atomically."""
import io
import json
import os

import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.derive import make_spec
from backprop.train import runner
from backprop.cli.params import load_params, params_to_json
from backprop.train.progress import Progress

PNG = b"\x89PNG\r\n\x1a\n"
STUDENTS = "iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n75,6,4\n95,9,7\n"


@pytest.fixture
def students(tmp_path):
    path = tmp_path / "students.csv"
    path.write_text(STUDENTS)
    return path


def summary(cli, *args):
    status, out, err = cli(*args, "--json")
    assert status == 0, err
    return json.loads(out)


def test_loss_goes_down_and_every_output_is_written(cli, students, tmp_path):
    p, h, png = tmp_path / "p.json", tmp_path / "loss.csv", tmp_path / "loss.png"
    status, out, err = cli("train", "--data", str(students), "--target", "package", "--standardise",
                           "--epochs", "200", "--gd", "minibatch", "--batch-size", "2",
                           "--lr", "0.01", "--seed", "0", "--params-out", str(p),
                           "--history", str(h), "--plot", str(png))
    assert status == 0, err
    assert "minibatch GD, batch size 2, 3 updates/epoch" in out
    assert f"wrote {p}" in out and f"wrote {png}" in out
    model = json.loads(p.read_text())
    assert model["format"] == "backprop-model" and model["version"] == 1
    assert model["spec"] == {"layers": [2, 2, 1], "activations": ["linear", "linear"],
                             "loss": "se", "bias": True}
    assert model["features"] == ["iq", "cgpa"] and model["targets"] == ["package"]
    assert model["classes"] is None and model["training"]["seed"] == 0
    params = model["params"]
    assert set(params) == {"W1", "b1", "W2", "b2"}
    assert np.shape(params["W1"]) == (2, 2) and np.shape(params["b2"]) == (1,)
    rows = np.array([[80, 8], [60, 5], [110, 7], [75, 6], [95, 9]], dtype=float)
    np.testing.assert_allclose(model["standardise"]["mean"], rows.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(model["standardise"]["std"], rows.std(axis=0), rtol=1e-15)
    lines = h.read_text().splitlines()
    assert lines[0] == "epoch,loss,seconds" and len(lines) == 202
    losses = [float(line.split(",")[1]) for line in lines[1:]]
    assert losses[-1] < 0.1 * losses[0]
    assert png.read_bytes()[:8] == PNG
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no temp files left


def test_train_runs_the_generated_trainer_bit_for_bit(cli, students):
    """The command adds no arithmetic of its own: same init, seed and batches as the
    generated module's own train() give identical parameters."""
    s = summary(cli, "train", "--data", str(students), "--target", "package", "--standardise",
                "--epochs", "30", "--gd", "sgd", "--lr", "0.01", "--seed", "3", "--quiet")
    trainer = load_trainer(make_spec("2-2-1", "linear", "se"))
    assert runner.load_trainer(make_spec("2-2-1", "linear", "se")) is trainer
    from backprop.train.data import load_csv
    ds = load_csv(students, "package").standardise()
    params = trainer.init_params(seed=3, scheme="glorot")
    trainer.train(params, ds.X, ds.Y, 30, 0.01, batch_size=1, shuffle=True, seed=3)
    for key, value in params.items():
        np.testing.assert_array_equal(np.asarray(s["params"][key]), value)
    assert s["loss_final"] == trainer.loss(params, ds.X, ds.Y)


def test_same_seed_same_result_other_seed_other_result(cli, students):
    args = ["train", "--data", str(students), "--target", "package", "--standardise",
            "--epochs", "20", "--gd", "sgd", "--quiet"]
    a = summary(cli, *args, "--seed", "1")
    b = summary(cli, *args, "--seed", "1")
    c = summary(cli, *args, "--seed", "2")
    assert a["params"] == b["params"] and a["loss_final"] == b["loss_final"]
    assert a["params"] != c["params"]


@pytest.mark.parametrize("name", ["notes-iq-cgpa", "notes-iq-gpa", "notes-cgpa-resume"])
def test_the_notes_examples_train(cli, name):
    s = summary(cli, "train", "--example", name, "--seed", "0")
    assert s["standardised"] is not None and s["init"] == "ones" and s["gd"] == "sgd"
    assert s["layers"] == [2, 2, 1] and s["loss"] == "se"
    assert s["loss_final"] < 0.02 * s["loss_initial"]


def test_example_text_shows_targets_and_predictions(cli):
    status, out, err = cli("train", "--example", "notes-iq-cgpa", "--gd", "sgd", "--epochs", "100")
    assert status == 0 and err == ""
    assert "features iq, cgpa (standardised) -> package" in out
    assert "y→ŷ:     5→5, 3→3, 8→8" in out


def test_gd_variants_make_the_expected_number_of_updates(cli, students):
    args = ["train", "--data", str(students), "--target", "package", "--standardise",
            "--epochs", "2", "--seed", "0", "--quiet"]
    assert summary(cli, *args, "--gd", "batch")["updates_per_epoch"] == 1
    assert summary(cli, *args, "--gd", "sgd")["updates_per_epoch"] == 5
    assert summary(cli, *args, "--gd", "minibatch", "--batch-size", "2")["updates_per_epoch"] == 3


def test_batch_size_means_minibatch_and_clashes_with_batch_or_sgd(cli, students):
    args = ["train", "--data", str(students), "--target", "package", "--standardise", "--epochs", "2"]
    assert summary(cli, *args, "--batch-size", "2")["gd"] == "minibatch"
    status, _, err = cli(*args, "--gd", "sgd", "--batch-size", "2")
    assert status == 2 and "--batch-size only applies to --gd minibatch" in err


def test_resume_continues_from_saved_parameters(cli, students, tmp_path):
    p1, p2 = tmp_path / "p1.json", tmp_path / "p2.json"
    args = ["train", "--data", str(students), "--target", "package", "--standardise",
            "--gd", "batch", "--lr", "0.01", "--quiet"]
    first = summary(cli, *args, "--epochs", "10", "--seed", "0", "--params-out", str(p1))
    second = summary(cli, *args, "--epochs", "10", "--resume", str(p1), "--params-out", str(p2))
    assert second["loss_initial"] == pytest.approx(first["loss_final"])
    straight = summary(cli, *args, "--epochs", "20", "--seed", "0")
    np.testing.assert_allclose(second["params"]["W1"], straight["params"]["W1"], rtol=1e-12)


def test_resume_with_wrong_shapes_is_a_user_error(cli, students, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"W1": [[1, 2, 3]], "b1": [0], "W2": [[1]], "b2": [0]}))
    status, out, err = cli("train", "--data", str(students), "--target", "package",
                           "--resume", str(bad))
    assert status == 2 and "W1 has shape (1, 3); expected (2, 2)" in err


def test_existing_output_is_refused_before_training_and_kept(cli, students, tmp_path):
    out_file = tmp_path / "p.json"
    out_file.write_text("precious")
    status, out, err = cli("train", "--data", str(students), "--target", "package",
                           "--params-out", str(out_file))
    assert status == 2 and "already exists; pass --force" in err and out == ""
    assert out_file.read_text() == "precious"
    status, out, err = cli("train", "--data", str(students), "--target", "package", "--standardise",
                           "--params-out", str(out_file), "--force", "--quiet")
    assert status == 0 and json.loads(out_file.read_text())["params"]["W1"]


def test_missing_output_folder_is_refused(cli, students, tmp_path):
    status, _, err = cli("train", "--data", str(students), "--target", "package",
                         "--plot", str(tmp_path / "no" / "loss.png"))
    assert status == 2 and "output folder" in err and "does not exist" in err


def test_interrupted_write_leaves_no_file(cli, students, tmp_path, monkeypatch):
    target = tmp_path / "p.json"

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "link", boom)  # a new file is published by a hard link
    status, out, err = cli("train", "--data", str(students), "--target", "package", "--standardise",
                           "--params-out", str(target), "--quiet")
    assert status == 130
    assert os.listdir(tmp_path) == ["students.csv"]


def test_divergence_is_a_clear_message_not_a_traceback(cli, tmp_path):
    raw = tmp_path / "raw.csv"
    raw.write_text(STUDENTS)
    status, out, err = cli("train", "--data", str(raw), "--target", "package", "--gd", "sgd",
                           "--init", "ones", "--lr", "0.01", "--epochs", "50")
    assert status == 2
    assert "diverged" in err and "--standardise" in err and err.count("\n") == 1


def test_data_width_must_fit_the_network(cli, students):
    status, _, err = cli("train", "--data", str(students), "--target", "package",
                         "--layers", "3-2-1")
    assert status == 2 and "2 feature column(s) (iq, cgpa)" in err and "takes 3" in err


def test_needs_data_or_example(cli):
    status, _, err = cli("train")
    assert status == 2 and "--example" in err
    status, _, err = cli("train", "--example", "notes-iq-cgpa", "--data", "x.csv")
    assert status == 2 and "brings its own data" in err


def test_classification_with_cce_reports_accuracy(cli, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    labels = np.where(X[:, 0] > 0.5, "high", np.where(X[:, 0] < -0.5, "low", "mid"))
    path = tmp_path / "c.csv"
    path.write_text("a,b,level\n" + "".join(f"{x:.4f},{y:.4f},{c}\n" for (x, y), c in zip(X, labels)))
    s = summary(cli, "train", "--layers", "2-8-3", "--activations", "tanh,softmax", "--loss", "cce",
                "--data", str(path), "--target", "level", "--epochs", "300", "--lr", "0.5",
                "--seed", "0", "--quiet")
    assert s["classes"] == ["high", "low", "mid"]
    assert s["targets"] == ["level=high", "level=low", "level=mid"]
    assert s["accuracy"] >= 0.9 and s["loss_final"] < s["loss_initial"]
    status, _, err = cli("train", "--layers", "2-8-2", "--activations", "tanh,softmax",
                         "--loss", "cce", "--data", str(path), "--target", "level")
    assert status == 2 and "3 classes (high, low, mid)" in err and "--layers ...-3" in err


def test_classification_with_bce(cli, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    path = tmp_path / "b.csv"
    path.write_text("a,b,placed\n" + "".join(
        f"{x:.4f},{y:.4f},{'yes' if x + y > 0 else 'no'}\n" for x, y in X))
    s = summary(cli, "train", "--layers", "2-1", "--activations", "sigmoid", "--loss", "bce",
                "--data", str(path), "--target", "placed", "--epochs", "200", "--lr", "1",
                "--seed", "0", "--quiet")
    assert s["classes"] == ["no", "yes"] and s["accuracy"] >= 0.95


def test_text_output_has_no_progress_bar_when_not_a_terminal(cli, students):
    status, out, err = cli("train", "--data", str(students), "--target", "package",
                           "--standardise", "--epochs", "50")
    assert status == 0 and err == "" and "\r" not in out


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_on_a_terminal_only():
    tty = FakeTTY()
    with Progress(10, stream=tty, interval=0) as bar:
        for epoch in range(1, 11):
            bar.update(epoch, 1.0 / epoch)
    text = tty.getvalue()
    assert "epoch 10/10 [########################] 100% loss 0.1" in text
    assert text.endswith("\r\033[K")  # erased, so the summary starts on a clean line
    pipe = io.StringIO()
    with Progress(10, stream=pipe, interval=0) as bar:
        bar.update(5, 0.5)
    assert pipe.getvalue() == ""
    quiet = FakeTTY()
    with Progress(10, stream=quiet, quiet=True, interval=0) as bar:
        bar.update(5, 0.5)
    assert quiet.getvalue() == ""


def test_train_draws_progress_on_a_tty_unless_quiet(cli, students, monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr("sys.stderr", tty)
    args = ["train", "--data", str(students), "--target", "package", "--standardise", "--epochs", "5"]
    from backprop.cli.main import main
    assert main(args) == 0
    assert "epoch 5/5" in tty.getvalue()
    tty.seek(0)
    tty.truncate()
    assert main(args + ["--quiet"]) == 0
    assert tty.getvalue() == ""


def test_float32_training(cli, students):
    s = summary(cli, "train", "--data", str(students), "--target", "package", "--standardise",
                "--dtype", "float32", "--epochs", "50", "--seed", "0", "--quiet")
    assert s["dtype"] == "float32" and s["loss_final"] < s["loss_initial"]


def test_params_json_round_trips(tmp_path):
    spec = make_spec("2-2-1", "linear", "se")
    trainer = runner.load_trainer(spec)
    params = trainer.init_params(seed=0)
    (tmp_path / "p.json").write_text(json.dumps(params_to_json(params)))
    again = load_params(tmp_path / "p.json", spec)
    for key in params:
        np.testing.assert_array_equal(again[key], params[key])



def test_outputs_get_ordinary_permissions(cli, students, tmp_path):
    p = tmp_path / "p.json"
    old = os.umask(0o022)
    try:
        status, _, err = cli("train", "--data", str(students), "--target", "package",
                             "--standardise", "--epochs", "2", "--params-out", str(p))
    finally:
        os.umask(old)
    assert status == 0, err
    assert p.stat().st_mode & 0o777 == 0o644


def test_grad_norms_go_to_history_plot_and_summary(cli, tmp_path):
    h, png = tmp_path / "h.csv", tmp_path / "g.png"
    status, out, err = cli("train", "--example", "notes-iq-cgpa", "--layers", "2-4-4-1",
                           "--activations", "sigmoid,sigmoid,linear", "--init", "glorot",
                           "--epochs", "5", "--seed", "0", "--grad-norms", "--history", str(h),
                           "--plot", str(png))
    assert status == 0, err
    assert "‖∂L/∂W‖: W1: " in out and "W3: " in out
    lines = h.read_text().splitlines()
    assert lines[0] == "epoch,loss,seconds,grad_norm_W1,grad_norm_W2,grad_norm_W3"
    assert len(lines) == 7 and all(len(line.split(",")) == 6 for line in lines)
    assert png.read_bytes()[:8] == PNG


def test_params_out_feeds_step_and_step_json_feeds_resume(cli, tmp_path):
    from backprop.cli.main import build_parser
    if "step" not in build_parser().format_help():
        pytest.skip("no step command in this tree")
    p, s = tmp_path / "p.json", tmp_path / "step.json"
    assert cli("train", "--example", "notes-iq-cgpa", "--params-out", str(p))[0] == 0
    # step applies the model file's standardisation: it takes a raw row
    status, out, err = cli("step", "--params", str(p), "--x", "80,8", "--y", "5", "--json")
    assert status == 0, err
    s.write_text(out)
    assert summary(cli, "train", "--example", "notes-iq-cgpa", "--resume", str(s),
                   "--epochs", "1")["loss_final"] < 1
