"""The dense network of the method and a fast training loop for it.

Keras's ``model.fit`` spends most of a small network's epoch in per-step
Python dispatch. Here a whole epoch (shuffle and every batch) is one
``tf.function`` call, so an epoch on ~1000 points costs a few milliseconds.
The method is unchanged: Normalization layer adapted on the training inputs,
Dense ReLU layers, a linear output, MSE on the standardised target, a
piecewise-constant learning-rate decay counted in optimizer steps, and early
stopping on the training loss with the best weights restored.

Saved models include the target's scaling (a final Rescaling layer), so
``model.predict`` returns Y in the user's units.
"""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SOLVERS = ("adam", "rmsprop", "sgd", "nesterov")

# Piecewise-constant decay: lr until 40 % of the epoch budget, lr/2 until 70 %, then lr/5.
_DECAY_FRACTIONS = (0.4, 0.7)
_DECAY_FACTORS = (1.0, 0.5, 0.2)


_PENDING_THREADS: int | None = None  # configure_threads' count, waiting for TensorFlow's import (keras_ready)


def configure_threads(n_threads: int) -> None:
    """Limit TensorFlow's thread pools; call before TensorFlow runs any op.

    Importing TensorFlow takes seconds, so when it is not imported yet the count waits for the first function
    here that needs it (:func:`keras_ready`): a command that never trains or predicts (|ΔS_M| of the training
    data) never pays for the import."""
    global _PENDING_THREADS
    n = max(1, int(n_threads))
    if "tensorflow" not in sys.modules:
        _PENDING_THREADS = n
        return
    _PENDING_THREADS = None
    _set_threads(n)


def _set_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1 if n == 1 else 2)
    except RuntimeError:  # already initialised in this process: keep what it has
        pass


def keras_ready():
    """Keras, after the thread count :func:`configure_threads` deferred is applied (before any op runs)."""
    global _PENDING_THREADS
    import keras

    if _PENDING_THREADS is not None:
        n, _PENDING_THREADS = _PENDING_THREADS, None
        _set_threads(n)
    return keras


# How the network sees X2 (beyond the paper, whose networks see it linearly). Near T_C, M(H) is
# strongly non-linear at low field (M ∝ H^{1/3} at T_C in mean field) and lab field layouts are
# often logarithmic, so on a linear scale a wide low-field gap is a few per cent of the input
# range and the networks carry the lowest field's sharp transition across it.
X2_TRANSFORMS = ("linear", "asinh", "cbrt")
DEFAULT_X2_TRANSFORM = "asinh"


def x2_transform_scale(kind: str, x2: np.ndarray) -> float:
    """The transform's scale from the training X2 values.

    asinh: the lowest non-zero |X2| (but at least 1/1000 of the X2 range, so a
    remanent few-Oe field does not stretch the low end), so asinh(X2/scale)
    is linear below the lowest measured field and logarithmic above it;
    cbrt: the largest |X2| (only a normalisation); linear: 1.
    """
    if kind not in X2_TRANSFORMS:
        raise ValueError(f"unknown X2 transform {kind!r}; choose one of {', '.join(X2_TRANSFORMS)}")
    a = np.abs(np.asarray(x2, dtype="float64").ravel())
    a = a[np.isfinite(a)]
    if kind == "linear" or a.size == 0 or not a.max() > 0:
        return 1.0
    if kind == "cbrt":
        return float(a.max())
    floor = 1e-3 * float(np.ptp(np.asarray(x2, dtype="float64"))) or 1e-3 * float(a.max())
    return float(max(a[a > 0].min(), floor))


def register_layers() -> None:
    """Register the custom layers of a saved model with Keras (call before ``keras.saving.load_model`` on an
    exported ``.keras`` file: the layer class is defined on first use, so Keras loads lazily)."""
    _x2_transform_class()


def x2_transform_layer(kind: str = "linear", scale: float = 1.0, column: int = 1):
    """A fixed (non-trainable) Keras layer mapping (X1, X2) -> (X1, f(X2 / scale)), or with `column` 0
    (X1, X2) -> (f(X1 / scale), X2): the field's column, which is X1 for isotherms. Saved with the model."""
    return _x2_transform_class()(kind=kind, scale=scale, column=column, name="x2_transform")


_X2_CLASS = None


def _x2_transform_class():
    """The serialisable X2Transform layer class (defined on first use so Keras loads lazily)."""
    global _X2_CLASS
    if _X2_CLASS is not None:
        return _X2_CLASS
    keras = keras_ready()

    @keras.saving.register_keras_serializable(package="mat_interp", name="X2Transform")
    class X2Transform(keras.layers.Layer):
        """(X1, X2) -> (X1, f(X2 / scale)) with f = identity, asinh or the signed cube root (`column` 0: X1's)."""

        def __init__(self, kind: str = "linear", scale: float = 1.0, column: int = 1, **kwargs):
            kwargs["trainable"] = False
            super().__init__(**kwargs)
            if kind not in X2_TRANSFORMS:
                raise ValueError(f"unknown X2 transform {kind!r}; choose one of {', '.join(X2_TRANSFORMS)}")
            if column not in (0, 1):
                raise ValueError(f"the transformed column must be 0 (X1) or 1 (X2), not {column!r}")
            self.kind, self.scale, self.column = kind, float(scale), int(column)

        def call(self, x):
            ops = keras.ops
            x1, x2 = x[:, :1], x[:, 1:2]
            field = (x1, x2)[self.column] / self.scale
            if self.kind == "asinh":
                field = ops.arcsinh(field)
            elif self.kind == "cbrt":
                field = ops.sign(field) * ops.power(ops.abs(field), 1.0 / 3.0)
            return ops.concatenate([field, x2] if self.column == 0 else [x1, field], axis=1)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "kind": self.kind, "scale": self.scale, "column": self.column}

    _X2_CLASS = X2Transform
    return X2Transform


def build_model(n_layers: int, n_nodes: int, x_train: np.ndarray, x2_transform: str = "linear", column: int = 1):
    """Field transform -> Normalization (adapted on the transformed ``x_train``) -> n_layers x Dense(n_nodes, relu)
    -> Dense(1). ``x2_transform`` "linear" is the paper's network (no transform layer); `column`: the field's
    input column (1: X2 of M(T) sweeps; 0: X1 of isotherms)."""
    keras = keras_ready()

    x_train = np.asarray(x_train, dtype="float32")
    layers = [keras.Input(shape=(x_train.shape[1],))]
    if x2_transform != "linear":
        transform = x2_transform_layer(x2_transform, x2_transform_scale(x2_transform, x_train[:, column]), column)
        layers.append(transform)
        x_train = np.asarray(transform(x_train))
    norm = keras.layers.Normalization(axis=-1, name="inputs_standardised")
    norm.adapt(x_train)
    layers.append(norm)
    layers += [keras.layers.Dense(int(n_nodes), activation="relu", name=f"dense_{i}") for i in range(int(n_layers))]
    layers.append(keras.layers.Dense(1, name="output"))
    return keras.Sequential(layers, name="mat_interp_net")


def lr_schedule(lr: float, steps_per_epoch: int, epochs: int):
    """The method's piecewise-constant decay, its boundaries in optimizer steps."""
    keras = keras_ready()

    total = steps_per_epoch * epochs
    boundaries = [max(1, int(f * total)) for f in _DECAY_FRACTIONS]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, [float(lr) * f for f in _DECAY_FACTORS])


def make_optimizer(solver: str, lr: float, steps_per_epoch: int, epochs: int):
    """The solver with the method's piecewise-constant decay (boundaries in optimizer steps)."""
    keras = keras_ready()

    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    schedule = lr_schedule(lr, steps_per_epoch, epochs)
    if solver == "adam":
        return keras.optimizers.Adam(schedule)
    if solver == "rmsprop":
        return keras.optimizers.RMSprop(schedule)
    if solver == "sgd":
        return keras.optimizers.SGD(schedule)
    return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)


class FusedAdam:
    """Keras's Adam (its defaults and its update, step for step) applied with one fused kernel per variable.

    Keras's optimizer updates each variable with several small ops through the distribution strategy; on these
    small networks that is a measurable part of a step (bench/search_speed.py --adam prints the ratio). The
    update is TensorFlow's ResourceApplyAdam: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², θ ← θ − α·m/(√v + ε)
    with α = lr·√(1−β2^t)/(1−β1^t), the formula of keras.optimizers.Adam; lr comes from `schedule` at the step.
    """

    BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # keras.optimizers.Adam's defaults

    def __init__(self, schedule) -> None:
        self.schedule = schedule
        self.iterations = None
        self._slots: list = []

    def build(self, variables) -> None:
        import tensorflow as tf

        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._slots = [(tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False),
                        tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)) for v in variables]

    def apply(self, grads, variables) -> None:
        import tensorflow as tf

        lr = tf.cast(self.schedule(self.iterations), tf.float32)
        t = tf.cast(self.iterations + 1, tf.float32)
        b1, b2 = tf.pow(self.BETA_1, t), tf.pow(self.BETA_2, t)
        updates = [tf.raw_ops.ResourceApplyAdam(var=v.handle, m=m.handle, v=s.handle, beta1_power=b1, beta2_power=b2,
                                                lr=lr, beta1=self.BETA_1, beta2=self.BETA_2, epsilon=self.EPSILON,
                                                grad=g)
                   for v, g, (m, s) in zip(variables, grads, self._slots)]
        with tf.control_dependencies(updates):
            self.iterations.assign_add(1)


@dataclass
class FitResult:
    """What one training run produced: per-epoch curves and the restored best epoch."""

    loss: list[float] = field(default_factory=list)  # mean training MSE of the standardised target
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.loss)


class StopTraining(Exception):
    """Raised by an ``on_epoch`` hook to end training at once (not an error)."""


def r2_from_loss(loss: float) -> float:
    """Training R² from the MSE of a target standardised with its population std."""
    return 1.0 - float(loss)


_TRAINED = 0  # networks this process has trained (each leaves a few MB of TensorFlow's traced functions)


def trained_here() -> int:
    """How many networks this process has trained: a fresh process (0) has nothing to release by restarting."""
    return _TRAINED


def fit(model, x: np.ndarray, y_std: np.ndarray, **kwargs) -> FitResult:
    """Train ``model`` on (x, standardised y); restore the weights of the lowest training loss.

    ``on_epoch(epoch, loss)`` is called after every epoch; it may raise (pruning,
    a stop request) and the exception propagates after nothing else is done.
    Keywords as :func:`fit_many`.
    """
    return fit_many([model], x, y_std, **kwargs)[0]


def fit_many(
    models: list,
    x: np.ndarray,
    y_std: np.ndarray,
    *,
    solver: str,
    lr: float,
    batch_size: int,
    epochs: int,
    patience: int = 20,
    seed: int | None = None,
    weights: np.ndarray | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    fused: bool = True,
    max_steps: int | None = None,
) -> list[FitResult]:
    """Train several networks side by side in one graph, each as :func:`fit` would train it alone.

    k networks stepped together cost a little less than k trained one after another (README, speed of the
    default path) and make one job of them (a group of held-out folds). Every network sees the same
    batches; the loss is the sum of their own losses, so each one's gradients, Adam moments and learning-rate
    schedule are its own. ``weights`` (k x n, 0 or 1) trains network i on the rows where weights[i] is 1 (a
    held-out fold is the rows of 0): its loss is the mean over its own rows of each batch. Each network keeps
    the weights of its own lowest epoch loss; training ends when every one has gone ``patience`` epochs without
    improving. ``on_epoch(epoch, loss)`` gets the mean loss of the networks. Adam is applied by
    :class:`FusedAdam` (``fused=False``: Keras's own). ``max_steps``: an epoch is at most this many batches of
    a fresh shuffle, not a whole pass (the search on large data: its budget in optimizer steps, as the
    refinement's); the epoch's loss is then over the rows it saw.
    """
    import tensorflow as tf

    keras = keras_ready()

    global _TRAINED
    _TRAINED += len(models)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    k = len(models)
    n = int(x.shape[0])
    batch_size = int(min(batch_size, n))
    steps = math.ceil(n / batch_size)
    if max_steps is not None:
        steps = max(1, min(steps, int(max_steps)))
    optimizer = (FusedAdam(lr_schedule(lr, steps, epochs)) if solver == "adam" and fused
                 else make_optimizer(solver, lr, steps, epochs))
    per_model = [m.trainable_variables for m in models]
    variables = [v for vs in per_model for v in vs]
    optimizer.build(variables)
    best = [[tf.Variable(v, trainable=False) for v in vs] for vs in per_model]
    x_t = tf.constant(np.asarray(x, dtype="float32"))
    y_t = tf.constant(np.asarray(y_std, dtype="float32").reshape(-1))
    w = np.ones((k, n), dtype="float32") if weights is None else np.asarray(weights, dtype="float32").reshape(k, n)
    if not (w.sum(axis=1) > 0).all():
        raise ValueError("every network needs at least one training row")
    w_t = tf.constant(w)

    @tf.function(autograph=False)
    def run_epoch():
        order = tf.random.shuffle(tf.range(n))
        xs = tf.gather(x_t, order)
        ys = tf.gather(y_t, order)
        ws = tf.gather(w_t, order, axis=1)

        def step(i, total):
            start = i * batch_size
            xb = xs[start : start + batch_size]
            yb = ys[start : start + batch_size]
            wb = ws[:, start : start + batch_size]
            with tf.GradientTape() as tape:
                sq = tf.stack([tf.square(m(xb, training=True)[:, 0] - yb) for m in models])  # k x batch
                sums = tf.reduce_sum(sq * wb, axis=1)
                loss = tf.reduce_sum(sums / tf.maximum(tf.reduce_sum(wb, axis=1), 1.0))
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads, variables)
            return i + 1, total + sums

        _, total = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), tf.zeros(k)))
        return total / tf.maximum(tf.reduce_sum(ws[:, : steps * batch_size], axis=1), 1.0)  # the rows it saw

    @tf.function(autograph=False)
    def keep_best(improved):
        for i, (bs, vs) in enumerate(zip(best, per_model)):
            for b, v in zip(bs, vs):
                b.assign(tf.where(improved[i], v, b))

    results = [FitResult() for _ in models]
    best_loss = np.full(k, math.inf)
    since_best = np.zeros(k, dtype=int)
    for epoch in range(int(epochs)):
        losses = np.asarray(run_epoch(), dtype="float64")
        for r, loss in zip(results, losses):
            r.loss.append(float(loss))
        if not np.isfinite(losses).all():
            break
        improved = losses < best_loss
        best_loss = np.where(improved, losses, best_loss)
        since_best = np.where(improved, 0, since_best + 1)
        for r in np.flatnonzero(improved):
            results[r].best_epoch = epoch
        if improved.any():
            keep_best(tf.constant(improved))
        if on_epoch is not None:
            on_epoch(epoch, float(losses.mean()))
        if (since_best >= patience).all():
            for r in results:
                r.stopped_early = True
            break
    for r, bs, vs in zip(results, best, per_model):
        if r.best_epoch >= 0:
            for b, v in zip(bs, vs):
                v.assign(b)
    return results


def predict_std(model, x: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Predictions of the (standardised-target) model, in chunks, as float64."""
    x = np.asarray(x, dtype="float32")
    out = [np.asarray(model(x[i : i + batch], training=False))[:, 0] for i in range(0, len(x), batch)]
    return np.concatenate(out).astype("float64") if out else np.zeros(0)


def with_target_scaling(model, y_mean: float, y_std: float):
    """A model that returns Y in the user's units: ``model(x) * y_std + y_mean``."""
    keras = keras_ready()

    inputs = keras.Input(shape=(2,), name="x1_x2")
    out = keras.layers.Rescaling(scale=float(y_std), offset=float(y_mean), name="target_units")(model(inputs))
    return keras.Model(inputs, out, name="mat_interp_model")


def standardised_net(model):
    """The network inside a model of :func:`with_target_scaling` (standardised target; trains in place)."""
    keras = keras_ready()

    return next(layer for layer in model.layers if isinstance(layer, keras.Sequential))


def average_models(models: list):
    """One model whose output is the mean of ``models``' outputs (same inputs, same target scaling)."""
    keras = keras_ready()

    if len(models) == 1:
        return models[0]
    inputs = keras.Input(shape=(2,), name="x1_x2")
    for i, m in enumerate(models):
        m.name = f"{m.name}_seed{i}"  # names must be unique inside the model
    out = keras.layers.Average(name="seed_average")([m(inputs) for m in models])
    return keras.Model(inputs, out, name="mat_interp_seed_average")


def model_to_bytes(model) -> bytes:
    """The ``.keras`` file of ``model`` (no optimizer state) as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            return fh.read()


MAX_MODEL_BYTES = 64 * 2**20  # stored or unpacked; the largest network of the default space, 3 seeds averaged, is ~5 MB


class ModelError(ValueError):
    """A stored model that is refused: not a .keras archive, too large, or not loadable in Keras' safe mode."""


_CODE_REFUSED = ("the stored model contains Python code (a Lambda layer), which Keras' safe mode does not run; "
                 "it is not loaded")


def model_from_bytes(data: bytes):
    """Load a model saved by :func:`model_to_bytes`.

    Models come from a shared database, so they are bounded in size (stored and
    unpacked, against zip bombs) and loaded with Keras' ``safe_mode=True``: a model
    that carries Python code (a Lambda layer) is refused, not run.
    """
    keras = keras_ready()

    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"the stored model takes {len(data) / 2**20:.1f} MB, more than the "
                         f"{MAX_MODEL_BYTES / 2**20:.0f} MB a model may take; it is not loaded")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ModelError("the stored model is not a .keras archive")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_MODEL_BYTES:
            raise ModelError(f"the stored model unpacks to {unpacked / 2**20:.1f} MB, more than the "
                             f"{MAX_MODEL_BYTES / 2**20:.0f} MB a model may take; it is not loaded")
        config = archive.read("config.json") if "config.json" in archive.namelist() else b""
    # Keras lets a process-wide enable_unsafe_deserialization() override safe_mode=True: look for code ourselves
    if b'"Lambda"' in config or b"__lambda__" in config:
        raise ModelError(_CODE_REFUSED)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        register_layers()  # before loading (safe_mode stays on)
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except ValueError as err:
            if "safe_mode" not in str(err):
                raise
            raise ModelError(_CODE_REFUSED) from None
