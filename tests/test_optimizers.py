"""Optimisers (derive/optimizers.py's table) against torch.optim, float64.

One and ten steps of SGD with momentum, SGD with nesterov, RMSprop, Adam and AdamW (weight
decay 0 and 0.01) on a random 3-5-4-2 network (tanh, sigmoid, linear; loss se), starting from
the same weights and data: torch computes its gradients by autograd and steps with
torch.optim; backprop takes the generated trainer's gradients and the table's update rule,
evaluated (:func:`optimizers.trace`), and the trainer's own ``optimizer_step``/``train``.  Parameters must agree to 1e-12 relative (per array, max
|difference| / max |torch|).
"""
import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.core.errors import UserError
from backprop.derive import make_spec, optimizers
from backprop.derive.optimizers import OPTIMIZERS, full, settings, trace

LAYERS = "3-5-4-2"
ACTS = "tanh,sigmoid,linear"
RTOL = 1e-12

#: (id, the [optimizer] table, the torch.optim class name and keyword arguments).
CASES = [
    ("sgd", {"name": "sgd", "lr": 0.05}, "SGD", dict(lr=0.05)),
    ("momentum", {"name": "momentum", "lr": 0.05, "momentum": 0.9}, "SGD", dict(lr=0.05, momentum=0.9)),
    ("nesterov", {"name": "nesterov", "lr": 0.05, "momentum": 0.8}, "SGD",
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("rmsprop", {"name": "rmsprop", "lr": 0.01, "alpha": 0.9, "eps": 1e-6}, "RMSprop",
     dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("adam", {"name": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7}, "Adam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7)),
    ("adamw", {"name": "adam", "lr": 0.01, "decoupled": True}, "AdamW", dict(lr=0.01)),
]
#: Every case with weight decay 0 and 0.01 (AdamW's own default is 0.01; 0 is given explicitly).
DECAYED = [(f"{name}-wd{wd}", {**table, "weight_decay": wd}, cls, {**kw, "weight_decay": wd})
           for name, table, cls, kw in CASES for wd in (0.0, 0.01)]


def _problem(seed: int = 0):
    """A random 3-5-4-2 network, its parameters and 7 rows of data."""
    spec = make_spec(LAYERS, ACTS, "se")
    rng = np.random.default_rng(seed)
    params = load_trainer(spec).init_params(seed=seed, scheme="glorot")
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}  # biases not 0
    X, Y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    return spec, params, X, Y


def _torch_run(params, X, Y, cls: str, kwargs: dict, steps: int) -> dict:
    """Parameters after ``steps`` full-batch steps of torch.optim.<cls> on the same network."""
    torch = pytest.importorskip("torch")
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    opt = getattr(torch.optim, cls)(list(P.values()), foreach=False, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        O1 = torch.tanh(Xt @ P["W1"] + P["b1"])
        O2 = torch.sigmoid(O1 @ P["W2"] + P["b2"])
        O3 = O2 @ P["W3"] + P["b3"]
        loss = ((Yt - O3) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
    return {k: v.detach().numpy() for k, v in P.items()}


def _table_run(spec, params, X, Y, table: dict, steps: int) -> dict:
    """``steps`` full-batch steps: the trainer's gradients, the table's rule evaluated."""
    trainer = load_trainer(spec)
    entry = OPTIMIZERS[table["name"]]
    params = {k: v.copy() for k, v in params.items()}
    state = {k: {name: np.zeros_like(v) for name in entry.state} for k, v in params.items()}
    for t in range(1, steps + 1):
        grads = trainer.gradients(params, X, Y)
        for key in params:
            values = dict(trace(table, params[key], grads[key], state[key], t))
            for name in entry.state:
                state[key][name] = values[name]
            params[key] = values["w"]
    return params


def _relative(ours: dict, theirs: dict) -> float:
    """max over the arrays of max |ours - theirs| / max |theirs|."""
    return max(float(np.max(np.abs(ours[k] - theirs[k])) / np.max(np.abs(theirs[k]))) for k in theirs)


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("name, table, cls, kwargs", DECAYED, ids=[c[0] for c in DECAYED])
def test_table_rule_matches_torch(name, table, cls, kwargs, steps):
    spec, params, X, Y = _problem()
    theirs = _torch_run(params, X, Y, cls, kwargs, steps)
    ours = _table_run(spec, params, X, Y, table, steps)
    assert _relative(ours, theirs) < RTOL
    moved = _relative(params, theirs)  # the comparison is not vacuous: the parameters moved
    assert moved > 1e-4


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("name, table, cls, kwargs", DECAYED, ids=[c[0] for c in DECAYED])
def test_trainer_matches_torch(name, table, cls, kwargs, steps):
    spec, params, X, Y = _problem()
    trainer = load_trainer(spec)
    theirs = _torch_run(params, X, Y, cls, kwargs, steps)
    ours = {k: v.copy() for k, v in params.items()}
    settings_ = full(settings(table))
    state = trainer.optimizer_state(ours, settings_["name"])
    for _ in range(steps):
        trainer.optimizer_step(ours, trainer.gradients(ours, X, Y), state, settings_)
    assert state["t"] == steps
    assert _relative(ours, theirs) < RTOL
    again = {k: v.copy() for k, v in params.items()}  # train() with the same optimizer: same numbers
    trainer.train(again, X, Y, steps, settings_["lr"], optimizer=settings_)
    assert all(np.array_equal(again[k], ours[k]) for k in ours)


def test_train_defaults_to_the_specs_optimizer():
    """A spec's [optimizer] is the trainer's OPTIMIZER: train() without optimizer (or naming
    it) steps with its settings; another name takes that entry's table defaults."""
    table = {"name": "adam", "lr": 0.05, "beta1": 0.8}
    spec = make_spec(LAYERS, ACTS, "se", optimizer=table)
    _, start, X, Y = _problem()
    trainer = load_trainer(spec)
    assert trainer.OPTIMIZER == full(settings(table))
    runs = []
    for kwargs in [{}, {"optimizer": "adam"}, {"optimizer": table}, {"optimizer": {"name": "adam"}}]:
        params = {k: v.copy() for k, v in start.items()}
        trainer.train(params, X, Y, 3, **kwargs)
        runs.append(params)
    assert all(np.array_equal(runs[0][k], runs[i][k]) for i in (1, 2) for k in start)
    assert not np.array_equal(runs[0]["W1"], runs[3]["W1"])  # η = 0.001, β₁ = 0.9: adam's defaults
    assert trainer.optimizer_settings("momentum") == {"name": "momentum", "lr": 0.01, "momentum": 0.9,
                                                      "weight_decay": 0.0}
    assert trainer.optimizer_settings(None, lr=0.5)["lr"] == 0.5


@pytest.mark.parametrize("optimizer", ["sgd", "adam", {"name": "sgd", "weight_decay": 0.1}])
def test_train_counts_every_update_and_replays_with_its_seed(optimizer):
    """7 rows in batches of 3: 3 updates an epoch, fused sgd_step or optimizer_step alike."""
    spec, start, X, Y = _problem()
    trainer = load_trainer(spec)
    ends = []
    for _ in range(2):
        params = {k: v.copy() for k, v in start.items()}
        state = trainer.optimizer_state(params, optimizer)
        history = trainer.train(params, X, Y, 4, 0.01, batch_size=3, seed=5, optimizer=optimizer, state=state)
        assert state["t"] == 12 and len(history) == 4 and np.isfinite(history).all()
        ends.append((params, state))
    (a, sa), (b, sb) = ends
    assert all(np.array_equal(a[k], b[k]) for k in start) and not np.array_equal(a["W1"], start["W1"])
    for name in OPTIMIZERS[sa["name"]].state:
        assert all(np.array_equal(sa[name][k], sb[name][k]) for k in start)


def test_a_float32_trainer_keeps_float32_state():
    spec, start, X, Y = _problem()
    trainer = load_trainer(spec, dtype="float32")
    params = {k: v.astype(np.float32) for k, v in start.items()}
    state = trainer.optimizer_state(params, "adam")
    trainer.train(params, X, Y, 3, optimizer="adam", state=state)
    assert state["t"] == 3
    assert {a.dtype for a in params.values()} == {np.dtype(np.float32)}
    assert {a.dtype for key in ("m", "v") for a in state[key].values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; known: sgd, momentum"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, "adam takes lr, beta1"),
    ({"optimizer": "adam", "lr": 0.0}, "the learning rate must be a finite number > 0, got 0.0"),
    ({"optimizer": "sgd", "lr": float("nan")}, "the learning rate must be a finite number > 0"),
    ({"optimizer": "adam", "state": {"name": "momentum", "t": 0, "v": {}}}, "the state is momentum's, not adam's"),
])
def test_bad_train_arguments_are_one_line_errors(kwargs, message):
    spec, params, X, Y = _problem()
    trainer = load_trainer(spec)
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(ValueError) as err:
        trainer.train(params, X, Y, 2, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert all(np.array_equal(before[k], params[k]) for k in params)  # refused before any step


def test_the_printed_updates_are_the_tables():
    """Each entry's rule, printed by SymPy into the trainer: one function per table entry."""
    import inspect
    trainer = load_trainer(make_spec("2-2-1", "linear", "se"))
    assert list(trainer.OPTIMIZERS) == list(OPTIMIZERS) and list(trainer._UPDATES) == list(OPTIMIZERS)
    for name, entry in OPTIMIZERS.items():
        assert trainer.OPTIMIZERS[name] == {"state": entry.state, "defaults": dict(entry.defaults)}
    adam = inspect.getsource(trainer._adam_update)
    for line in ["m_hat = m/(1 - beta1**t)", "v_hat = v/(1 - beta2**t)",
                 "w[...] = -lr*m_hat/(eps + np.sqrt(v_hat)) + w",
                 "if weight_decay and decoupled:  # decoupled (AdamW): w shrinks before the rule"]:
        assert line in adam


@pytest.mark.parametrize("table", [{"name": name, "weight_decay": 0.01} for name in OPTIMIZERS]
                         + [{"name": "adam", "weight_decay": 0.01, "decoupled": True}])
def test_a_spec_with_an_optimizer_prints_within_99_columns(table):
    from backprop.codegen import render_trainer
    spec = make_spec("3-4-2", "tanh,linear", "se", optimizer=table)
    source = render_trainer(spec)
    assert [line for line in source.splitlines() if len(line) > 99] == []
    assert load_trainer(spec).OPTIMIZER == full(settings(table))


def test_the_scripts_model_file_resumes_in_backprop_train(cli, tmp_path):
    """The generated script's --optimizer adam --out keeps the settings and the state in
    backprop's model-file format: 20 epochs there, then 5 of backprop train --resume, equal
    25 epochs of the script bit for bit; the script's load_model reads backprop's file back."""
    import json
    import subprocess
    import sys
    from backprop.cli.commands.generate import generated_folder
    script = generated_folder() / "notes_2_2_1.py"
    table = tmp_path / "notes.csv"
    table.write_text("iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n")
    run = [sys.executable, str(script), "--data", str(table), "--target", "package", "--optimizer", "adam",
           "--lr", "0.05", "--seed", "0", "--standardise"]
    for epochs, out in [(20, "a20.json"), (25, "a25.json")]:
        done = subprocess.run([*run, "--epochs", str(epochs), "--out", str(tmp_path / out)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    a20 = json.loads((tmp_path / "a20.json").read_text())
    assert a20["spec"]["optimizer"] == full(settings({"name": "adam", "lr": 0.05}))
    assert a20["optimizer_state"]["name"] == "adam" and a20["optimizer_state"]["t"] == 20
    status, _, err = cli("train", "--data", str(table), "--target", "package", "--resume", str(tmp_path / "a20.json"),
                         "--optimizer", "adam", "--lr", "0.05", "--gd", "batch", "--epochs", "5", "-q",
                         "--params-out", str(tmp_path / "b25.json"))
    assert status == 0, err
    a25, b25 = (json.loads((tmp_path / f).read_text()) for f in ("a25.json", "b25.json"))
    assert b25["optimizer_state"]["t"] == 25
    assert a25["params"] == b25["params"] and a25["optimizer_state"] == b25["optimizer_state"]
    from backprop.codegen import load_trainer as load
    module = load(make_spec("2-2-1", "linear", "se"))
    back = module.load_model(str(tmp_path / "b25.json"))  # its spec names adam: the same network
    assert all(np.array_equal(back[k], np.array(b25["params"][k])) for k in ("W1", "b1", "W2", "b2"))


# -- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("table, message", [
    ({"name": "adam", "beta1": 1.0}, "optimizer beta1 must be a number in [0, 1)"),
    ({"name": "adam", "beta2": -0.1}, "optimizer beta2 must be a number in [0, 1)"),
    ({"name": "adam", "lr": 0}, "optimizer lr must be a positive number"),
    ({"name": "adam", "eps": float("nan")}, "optimizer eps must be a number >= 0"),
    ({"name": "momentum", "momentum": 1.5}, "optimizer momentum must be a number in [0, 1)"),
    ({"name": "rmsprop", "alpha": 2}, "optimizer alpha must be a number in [0, 1]"),
    ({"name": "sgd", "weight_decay": "0.1"}, "optimizer weight_decay must be a number >= 0"),
    ({"name": "adam", "decoupled": 1}, "optimizer decoupled must be true or false"),
    ({"name": "nesterov", "momentum": 0}, "nesterov needs a momentum > 0"),
    ({"name": "adam", "momentum": 0.9}, "adam takes lr, beta1, beta2, eps, weight_decay, decoupled, not momentum"),
    ({"name": 3}, "unknown optimizer 3"),
])
def test_bad_settings_are_one_line_errors(table, message):
    with pytest.raises(UserError) as err:
        settings(table, "net.toml")
    text = str(err.value)
    assert text.startswith("net.toml: ") and message in text and "\n" not in text


def test_bad_settings_in_a_spec_file(tmp_path):
    from backprop.derive.spec import load_toml
    path = tmp_path / "net.toml"
    path.write_text('layers = [2, 2, 1]\nactivations = "linear"\nloss = "se"\n[optimizer]\nname = "adam"\nbeta2 = 1\n')
    with pytest.raises(UserError, match=r"optimizer beta2 must be a number in \[0, 1\)"):
        load_toml(path)


def test_every_entry_has_a_rule_ending_in_the_parameter():
    for entry in OPTIMIZERS.values():
        assert entry.rule[-1][0] == optimizers.w, entry.name
        targets = {target.name for target, _ in entry.rule}
        assert set(entry.state) <= targets, entry.name  # every state array is updated
        assert entry.role(optimizers.w) == "parameter" and entry.role(optimizers.g) == "gradient"
        free = set().union(*(expr.free_symbols for _, expr in entry.update(full({"name": entry.name,
                                                                                   "weight_decay": 0.1}))))
        hyper = {optimizers.SYMBOLS[k] for k in entry.defaults if k in optimizers.SYMBOLS}
        allowed = hyper | {optimizers.w, optimizers.g, optimizers.t, optimizers.m_hat, optimizers.v_hat} \
            | {optimizers.SYMBOLS[n] for n in entry.state}
        assert free <= allowed, (entry.name, free - allowed)


def test_decay_kinds():
    assert optimizers.decay_kind(full({"name": "adam"})) is None
    assert optimizers.decay_kind(full({"name": "adam", "weight_decay": 0.01})) == "l2"
    assert optimizers.decay_kind(full({"name": "adam", "weight_decay": 0.01, "decoupled": True})) == "decoupled"
    assert optimizers.decay_kind(full({"name": "rmsprop", "weight_decay": 0.01})) == "l2"


def test_adam_first_step_by_hand():
    """t = 1: m̂ = g, v̂ = g², so w moves by η g/(|g| + ε): η in the direction of -g."""
    values = dict(trace({"name": "adam", "lr": 0.1}, np.array([1.0, -2.0]), np.array([0.5, -4.0]),
                        {"m": np.zeros(2), "v": np.zeros(2)}, 1))
    np.testing.assert_allclose(values["m"], [0.05, -0.4], rtol=1e-15)
    np.testing.assert_allclose(values["v"], [0.00025, 0.016], rtol=1e-13)
    np.testing.assert_allclose(values["m_hat"], [0.5, -4.0], rtol=1e-14)
    np.testing.assert_allclose(values["v_hat"], [0.25, 16.0], rtol=1e-13)
    np.testing.assert_allclose(values["w"], [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 4 / (4 + 1e-8)], rtol=1e-14)


# -- the model file and --resume -------------------------------------------------------------------
RESUMED = [[], ["--optimizer", "momentum"], ["--optimizer", "nesterov"], ["--optimizer", "rmsprop"],
           ["--optimizer", "adam", "--lr", "0.05"]]


@pytest.mark.parametrize("flags", RESUMED, ids=lambda f: f[1] if f else "sgd")
def test_resume_continues_exactly(cli, tmp_path, flags):
    """10 epochs == 5 epochs, model file, --resume, 5 epochs: parameters and optimiser state
    bit for bit (batch GD: no shuffling to replay)."""
    import json
    run = ["train", "--example", "notes-iq-gpa", "--gd", "batch", "-q", "--json", *flags]
    whole, half, rest = (str(tmp_path / f) for f in ("whole.json", "half.json", "rest.json"))
    assert cli(*run, "--epochs", "10", "--params-out", whole)[0] == 0
    assert cli(*run, "--epochs", "5", "--params-out", half)[0] == 0
    status, out, err = cli(*run, "--epochs", "5", "--resume", half, "--params-out", rest)
    assert status == 0, err
    a, b, h = (json.loads((tmp_path / f).read_text()) for f in ("whole.json", "rest.json", "half.json"))
    assert a["params"] == b["params"] and a["params"] != h["params"]
    assert a["optimizer_state"] == b["optimizer_state"]
    assert a["optimizer_state"]["t"] == 10 and h["optimizer_state"]["t"] == 5  # batch GD: one step an epoch
    assert a["optimizer_state"]["name"] == (flags[1] if flags else "sgd")


@pytest.mark.parametrize("gd", [["--gd", "sgd"], ["--gd", "minibatch", "--batch-size", "2"]],
                         ids=["sgd", "minibatch"])
@pytest.mark.parametrize("flags", [[], ["--optimizer", "adam", "--lr", "0.05"]], ids=["plain", "adam"])
def test_resume_continues_a_shuffled_run_exactly(cli, tmp_path, gd, flags):
    """Shuffled runs too: the model file keeps the shuffling generator ("shuffle"), so 3 + 3
    epochs visit the rows in the order 6 epochs do, and end bit for bit where they end."""
    import json
    run = ["train", "--example", "notes-cgpa-resume", *gd, "--seed", "7", "-q", "--json", *flags]
    names = ("whole.json", "half.json", "rest.json")
    whole, half, rest = (str(tmp_path / f) for f in names)
    assert cli(*run, "--epochs", "6", "--params-out", whole)[0] == 0
    assert cli(*run, "--epochs", "3", "--params-out", half)[0] == 0
    status, out, err = cli(*run, "--epochs", "3", "--resume", half, "--params-out", rest)
    assert status == 0, err
    a, h, b = (json.loads((tmp_path / f).read_text()) for f in names)  # whole, half, rest
    assert a["params"] == b["params"] and a["params"] != h["params"]
    assert a["optimizer_state"] == b["optimizer_state"] and "shuffle" in a["optimizer_state"]
    assert h["optimizer_state"]["shuffle"] != a["optimizer_state"]["shuffle"]


def test_a_broken_shuffle_state_is_one_line(cli, tmp_path):
    import json
    half = tmp_path / "half.json"
    run = ["train", "--example", "notes-cgpa-resume", "--gd", "sgd", "--seed", "7", "-q", "--json"]
    assert cli(*run, "--epochs", "1", "--params-out", str(half))[0] == 0
    doc = json.loads(half.read_text())
    doc["optimizer_state"]["shuffle"] = {"bit_generator": "MT19937"}
    half.write_text(json.dumps(doc))
    status, out, err = cli(*run, "--epochs", "1", "--resume", str(half))
    assert status == 2 and '"shuffle" must be a PCG64 generator state' in err and err.count("\n") == 1


def test_model_file_keeps_the_optimizer_state(tmp_path):
    from backprop.train.model import Model, load_model
    spec = make_spec("2-3-1", "tanh,linear", "se", optimizer={"name": "adam", "beta1": 0.8})
    rng = np.random.default_rng(3)
    params = {k: rng.standard_normal(shape) for k, shape in spec.shapes().items()}
    state = {"name": "adam", "t": 7, "m": {k: rng.standard_normal(v.shape) / 3 for k, v in params.items()},
             "v": {k: rng.random(v.shape) / 7 for k, v in params.items()}}
    path = tmp_path / "m.json"
    import json
    path.write_text(json.dumps(Model(spec, params, optimizer_state=state).to_json()))
    back = load_model(path)
    assert back.spec == spec and dict(back.spec.optimizer)["beta1"] == 0.8
    assert back.optimizer_state["t"] == 7
    for key in ("m", "v"):
        assert all(np.array_equal(back.optimizer_state[key][k], state[key][k]) for k in params)  # exact
    plain = make_spec("2-3-1", "tanh,linear", "se")  # the same network named without its optimiser
    assert load_model(path, plain).spec == plain


@pytest.mark.parametrize("state, message", [
    ({"name": "adagrad", "t": 1}, "must be an object with the optimizer's \"name\""),
    ({"name": "adam", "t": -1}, "needs the step count \"t\", a whole number >= 0"),
    ({"name": "adam", "t": 1.5}, "needs the step count \"t\""),
    ({"name": "adam", "t": 1, "m": {}}, "(optimizer state 'm') has no W1"),
    ({"name": "adam", "t": 1}, "has no 'm' arrays"),
    ({"name": "sgd", "t": 1, "m": {}}, "sgd keeps no arrays, not m"),
    ({"name": "momentum", "t": 1, "v": {"W1": [[1, 2]], "b1": [0, 0], "W2": [[1], [1]], "b2": [0]}},
     "W1 has shape (1, 2); expected (2, 2)"),
])
def test_bad_optimizer_state_is_a_one_line_error(tmp_path, state, message):
    import json
    from backprop.train.model import Model, load_model
    spec = make_spec("2-2-1", "linear", "se")
    params = {k: np.ones(shape) for k, shape in spec.shapes().items()}
    data = Model(spec, params).to_json()
    data["optimizer_state"] = state
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        load_model(path)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- backprop step with an optimiser ---------------------------------------------------------------
ADAM_TOML = ('layers = [2, 2, 1]\nactivations = "linear"\nloss = "se"\n'
             '[optimizer]\nname = "adam"\nlr = 0.1\nweight_decay = 0.01\n')


def test_step_shows_one_adam_step(cli, tmp_path):
    """The notes' row (w = 1, b = 0, x = 80,8, y = 5): ∂L/∂b_21 = 342, b_21 = 0 so no decay;
    t = 1: m = 0.1·342, v = 0.001·342², m̂ = 342, v̂ = 342², b_21 = -0.1·342/(342 + 1e-8)."""
    import json
    (tmp_path / "adam.toml").write_text(ADAM_TOML)
    run = ["step", "--spec", str(tmp_path / "adam.toml"), "--x", "80,8", "--y", "5", "--init", "ones"]
    status, out, err = cli(*run)
    assert status == 0 and "disagree" not in err
    assert "Update with adam (η = 0.1, β₁ = 0.9, β₂ = 0.999, ε = 1e-08, λ = 0.01), step t = 1" in out
    assert "m̂ = m/(1 - β₁^t) = 34.2/(1 - 0.9^1) = 342" in out
    assert "g = g + w·λ = 30096 + 1·0.01 = 30096" in out  # w^2_11: L2 decay on the gradient
    status, out, _ = cli(*run, "--json")
    data = json.loads(out)["optimizer"]
    assert data["t"] == 1 and data["settings"]["name"] == "adam"
    b = data["steps"]["b2"]
    assert b["m"][0] == pytest.approx(34.2, rel=1e-15) and b["v"][0] == pytest.approx(116.964, rel=1e-13)
    assert b["m_hat"][0] == pytest.approx(342, rel=1e-14) and b["v_hat"][0] == pytest.approx(342 ** 2, rel=1e-13)
    assert json.loads(out)["params"]["b2"][0] == pytest.approx(-0.1 * 342 / (342 + 1e-8), rel=1e-14)
    assert data["state"]["t"] == 1 and data["state"]["m"]["b2"] == b["m"]
    status, tex, _ = cli(*run, "--format", "latex")
    assert status == 0 and r"\hat{m} &= \frac{m}{1 - \beta_1^{t}} = \frac{34.2}{1 - 0.9^{1}} = 342 \\" in tex


def test_step_continues_a_model_files_state(cli, tmp_path):
    """--params with an optimizer_state: t and the moments go on from the file's."""
    import json
    from backprop.train.model import Model
    (tmp_path / "adam.toml").write_text(ADAM_TOML)
    from backprop.derive.spec import load_toml
    spec = load_toml(tmp_path / "adam.toml")
    params = {k: np.ones(shape) for k, shape in spec.shapes().items()}
    state = {"name": "adam", "t": 4, "m": {k: np.full(v.shape, 2.0) for k, v in params.items()},
             "v": {k: np.full(v.shape, 3.0) for k, v in params.items()}}
    (tmp_path / "m.json").write_text(json.dumps(Model(spec, params, optimizer_state=state).to_json()))
    status, out, err = cli("step", "--params", str(tmp_path / "m.json"), "--x", "1,2", "--y", "0.5", "--json")
    assert status == 0, err
    data = json.loads(out)
    g = data["grads"]["b2"][0] + 0.01 * 1.0
    m = 0.9 * 2.0 + 0.1 * g
    assert data["optimizer"]["t"] == 5 and data["optimizer"]["steps"]["b2"]["m"][0] == pytest.approx(m, rel=1e-14)


def test_step_numbers_come_from_the_trainer():
    """batch_step's updated parameters and state are the trainer's optimizer_step's, and the
    table's rule, evaluated beside it, agrees with them."""
    from backprop.train.onestep import batch_step
    spec = make_spec("2-3-1", "tanh,linear", "se", optimizer={"name": "rmsprop", "weight_decay": 0.01})
    trainer = load_trainer(spec)
    params = trainer.init_params(seed=2)
    X, Y = [[0.5, -1.0], [2.0, 0.25]], [[1.0], [-0.5]]
    result = batch_step(spec, X, Y, 0.05, params)
    own = {k: v.copy() for k, v in params.items()}
    state = trainer.optimizer_state(own, "rmsprop")
    trainer.optimizer_step(own, trainer.gradients(own, np.array(X), np.array(Y)), state,
                           trainer.optimizer_settings("rmsprop", lr=0.05))
    assert all(np.array_equal(result["updated"][k], own[k]) for k in own)
    assert result["optimizer"]["state"]["t"] == 1
    assert all(np.array_equal(result["optimizer"]["state"]["s"][k], state["s"][k]) for k in own)
    by_rule = {k: np.asarray(dict(steps)["w"]) for k, steps in result["optimizer"]["steps"].items()}
    assert _relative(by_rule, own) < RTOL


def test_step_with_plain_sgd_is_unchanged(cli):
    status, out, _ = cli("step", "--layers", "2-2-1", "--activations", "linear", "--loss", "se",
                         "--x", "80,8", "--y", "5", "--init", "ones")
    assert status == 0 and "Update  w_new = w_old - η ∂L/∂w  (η = 0.1)" in out and "Update with" not in out


# -- compare-gd --optimizers -----------------------------------------------------------------------
def test_compare_optimizers_same_start(cli, tmp_path):
    """One run per optimiser from the same weights: epoch 0's loss is the same for all."""
    import json
    names = "sgd,momentum,adam"
    status, out, err = cli("compare-gd", "--example", "notes-cgpa-resume", "--optimizers", names,
                           "--epochs", "30", "--json", "-q")
    assert status == 0, err
    data = json.loads(out)
    assert [o["name"] for o in data["optimizers"]] == names.split(",")
    firsts = {name: losses[0] for name, losses in data["losses"].items()}
    assert len(set(firsts.values())) == 1 and all(len(v) == 31 for v in data["losses"].values())
    assert [r["optimizer"] for r in data["table"]] == names.split(",")
    assert data["table"][0]["lr"] == 0.01  # sgd's table default


@pytest.mark.parametrize("text, message", [("sgd,adagrad", "unknown optimizer 'adagrad'"),
                                           ("sgd,sgd", "names an optimizer twice")])
def test_compare_optimizers_bad_names(cli, text, message):
    status, _, err = cli("compare-gd", "--example", "notes-cgpa-resume", "--optimizers", text, "-q")
    assert status == 2 and message in err and err.count("\n") == 1
