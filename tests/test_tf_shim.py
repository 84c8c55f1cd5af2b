"""The ``tensorflow`` stand-in of ``kaffe run``: math/shape ops against NumPy and Keras 3's ops,
``tf.GradientTape`` against torch autograd and, inside a ``train_step``, against Keras 3 (torch
backend) running the same step written with torch; ``tf.data.Dataset``; TensorFlow 1 names."""
import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe.compat import kaffe_as_keras
from kaffe.compat.tensorflow_shim import build_module

tf = build_module()
RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 4)).astype("float32")
B = RNG.normal(size=(3, 4)).astype("float32")


def close(a, b, rtol=1e-5, atol=1e-6):
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,ref", [("reduce_sum", np.sum), ("reduce_mean", np.mean),
                                      ("reduce_max", np.max), ("reduce_min", np.min),
                                      ("reduce_prod", np.prod)])
@pytest.mark.parametrize("axis", [None, 0, -1, [0, 1]])
def test_reductions(name, ref, axis):
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    close(getattr(tf, name)(A, axis=axis), ref(A, axis=np_axis), rtol=1e-5)
    close(getattr(tf.math, name)(A, axis=axis, keepdims=True),
          ref(A, axis=np_axis, keepdims=True), rtol=1e-5)


def test_elementwise_shape_and_construction_ops():
    close(tf.square(A), A ** 2)
    close(tf.exp(A), np.exp(A), rtol=1e-5)
    close(tf.math.log(np.abs(A)), np.log(np.abs(A)), rtol=1e-5)
    close(tf.sqrt(np.abs(A)), np.sqrt(np.abs(A)))
    close(tf.concat([A, B], axis=0), np.concatenate([A, B], 0))
    close(tf.stack([A, B], axis=1), np.stack([A, B], 1))
    close(tf.reshape(A, (2, 6)), A.reshape(2, 6))
    close(tf.reshape(A, torch.tensor([4, -1])), A.reshape(4, -1))
    assert tf.cast(A, tf.int32).dtype == torch.int32
    assert tf.cast(A, "float64").dtype == torch.float64
    assert tf.shape(A) == (3, 4) and tf.shape(A)[0] == 3 and int(tf.rank(A)) == 2
    close(tf.one_hot([0, 2], 3), np.eye(3)[[0, 2]])
    close(tf.one_hot([1], 3, on_value=5.0, off_value=-1.0), [[-1.0, 5.0, -1.0]])
    close(tf.where(A > 0, A, B), np.where(A > 0, A, B))
    close(tf.ones((2, 1)), np.ones((2, 1)))
    close(tf.zeros(tf.shape(A)), np.zeros((3, 4)))
    close(tf.matmul(A, B, transpose_b=True), A @ B.T, rtol=1e-5)
    close(tf.transpose(A), A.T)
    close(tf.expand_dims(A, 0), A[None])
    close(tf.clip_by_value(A, -0.5, 0.5), np.clip(A, -0.5, 0.5))
    close(tf.argmax(A, axis=1), A.argmax(1))
    close(tf.range(5), np.arange(5))
    close(tf.gather(A, [2, 0]), A[[2, 0]])
    close(tf.split(A, [1, 3], axis=1)[1], A[:, 1:])
    close(tf.tile(A, [2, 1]), np.tile(A, (2, 1)))
    close(tf.squared_difference(A, B), (A - B) ** 2)
    close(tf.math.reduce_std(A, axis=0), A.std(0), rtol=1e-5)
    close(tf.linalg.norm(A), np.linalg.norm(A), rtol=1e-5)


def test_nn_ops_against_torch_and_keras():
    labels = (B > 0).astype("float32")
    close(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=A),
          torch.nn.functional.binary_cross_entropy_with_logits(
              torch.tensor(A), torch.tensor(labels), reduction="none"), rtol=1e-5)
    onehot = np.eye(4, dtype="float32")[[0, 3, 1]]
    close(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=A),
          torch.nn.functional.cross_entropy(torch.tensor(A), torch.tensor([0, 3, 1]),
                                            reduction="none"), rtol=1e-5)
    close(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0, 3, 1]), logits=A),
          torch.nn.functional.cross_entropy(torch.tensor(A), torch.tensor([0, 3, 1]),
                                            reduction="none"), rtol=1e-5)
    close(tf.nn.softmax(A, axis=1), keras.ops.softmax(A, axis=1))
    close(tf.nn.l2_normalize(A, axis=1), A / np.linalg.norm(A, axis=1, keepdims=True), rtol=1e-5)
    close(tf.nn.relu(A), np.maximum(A, 0))
    mean, variance = tf.nn.moments(A, axes=[0])
    close(mean, A.mean(0)), close(variance, A.var(0), rtol=1e-5)


def test_random_ops_seeded_and_shaped():
    tf.random.set_seed(1)
    first = tf.random.normal(shape=(torch.tensor(2), 3))
    tf.random.set_seed(1)
    assert torch.equal(first, tf.random.normal((2, 3)))
    u = tf.random.uniform(tf.shape(A), minval=2.0, maxval=3.0)
    assert u.shape == (3, 4) and float(u.min()) >= 2.0 and float(u.max()) < 3.0
    ints = tf.random.uniform((100,), maxval=5, dtype=tf.int32)
    assert ints.dtype == torch.int32 and set(ints.tolist()) <= set(range(5))


def test_ops_on_keras_tensors_record_graph_nodes():
    inp = kaffe.Input(shape=(4,))
    out = tf.reduce_sum(tf.square(inp), axis=1, keepdims=True)
    out = tf.concat([out, tf.nn.softmax(inp)], axis=-1)
    model = kaffe.Model(inp, out)
    assert tf.shape(inp) == (None, 4) and tuple(out.shape) == (None, 5)
    got = model(torch.tensor(A))
    close(got, np.concatenate([(A ** 2).sum(1, keepdims=True),
                               keras.ops.softmax(A, axis=-1)], axis=1), rtol=1e-5)


# -- GradientTape ---------------------------------------------------------------------------------

def test_gradient_tape_matches_autograd():
    w = tf.Variable(np.ones((4, 2), dtype="float32"))
    x = tf.constant(A)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
    dw, dx = tape.gradient(loss, [w, x])
    wt = torch.ones((4, 2), requires_grad=True)
    xt = torch.tensor(A, requires_grad=True)
    ref = (xt @ wt).square().mean()
    ref_dw, ref_dx = torch.autograd.grad(ref, [wt, xt])
    close(dw, ref_dw), close(dx, ref_dx)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(loss, [w])
    unused = tf.Variable(np.zeros(3, dtype="float32"))
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(w * 2.0)
    assert tape.gradient(loss, unused) is None
    close(tape.gradient(loss, unused, unconnected_gradients="zero"), np.zeros(3))
    close(tape.gradient(loss, {"w": w})["w"], np.full((4, 2), 2.0))


def test_variable_assign_and_numpy():
    v = tf.Variable([1.0, 2.0], name="v")
    assert v.trainable and isinstance(v.numpy(), np.ndarray)
    v.assign([3.0, 4.0])
    v.assign_add([1.0, 1.0])
    close(v.numpy(), [4.0, 5.0])
    assert not tf.Variable(3, trainable=True).requires_grad  # integers never require gradients


def _distiller_step(lib, tf_like):
    """keras.io's Distiller.train_step (TensorFlow form) with tf = ``tf_like``; for Keras 3 the
    same step with torch autograd (its torch backend has no GradientTape)."""
    class Distiller(lib.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha,
                    temperature):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha, self.temperature = alpha, temperature

        def call(self, x):  # Keras 3 builds its compiled metrics by calling the model
            return self.student(x)

        def train_step(self, data):
            x, y = data
            teacher_predictions = self.teacher(x, training=False)
            if tf_like is not None:
                with tf_like.GradientTape() as tape:
                    student_predictions = self.student(x, training=True)
                    student_loss = self.student_loss_fn(y, student_predictions)
                    distillation_loss = self.distillation_loss_fn(
                        tf_like.nn.softmax(teacher_predictions / self.temperature, axis=1),
                        tf_like.nn.softmax(student_predictions / self.temperature, axis=1))
                    loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
                trainable_vars = self.student.trainable_variables
                gradients = tape.gradient(loss, trainable_vars)
                self.optimizer.apply_gradients(zip(gradients, trainable_vars))
                self.compiled_metrics.update_state(y, student_predictions)
                results = {m.name: m.result() for m in self.metrics}
            else:
                student_predictions = self.student(x, training=True)
                student_loss = self.student_loss_fn(y, student_predictions)
                distillation_loss = self.distillation_loss_fn(
                    torch.softmax(teacher_predictions / self.temperature, dim=1),
                    torch.softmax(student_predictions / self.temperature, dim=1))
                loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
                trainable_vars = self.student.trainable_weights
                self.zero_grad()
                loss.backward()
                with torch.no_grad():
                    self.optimizer.apply([v.value.grad for v in trainable_vars], trainable_vars)
                for metric in self.metrics:
                    if metric.name != "loss":
                        metric.update_state(y, student_predictions)
                results = {m.name: m.result() for m in self.metrics if m.name != "loss"}
            results.update({"student_loss": student_loss, "distillation_loss": distillation_loss})
            return results

    teacher = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(8, activation="relu"),
                              lib.layers.Dense(3)])
    student = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(3)])
    model = Distiller(student=student, teacher=teacher)
    model.compile(optimizer=lib.optimizers.Adam(learning_rate=0.01),
                  metrics=[lib.metrics.SparseCategoricalAccuracy()],
                  student_loss_fn=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
                  distillation_loss_fn=lib.losses.KLDivergence(), alpha=0.1, temperature=10)
    return model, teacher, student


def test_keras_io_distiller_with_gradient_tape_matches_keras():
    x = RNG.normal(size=(48, 6)).astype("float32")
    y = RNG.integers(0, 3, size=(48,))
    keras.utils.set_random_seed(0)
    k_model, k_teacher, k_student = _distiller_step(keras, None)
    with kaffe_as_keras():
        import tensorflow as served_tf
        f_model, f_teacher, f_student = _distiller_step(kaffe, served_tf)
        for src, dst in ((k_teacher, f_teacher), (k_student, f_student)):
            dst.set_weights([np.asarray(w) for w in src.get_weights()])
        f_hist = f_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    k_hist = k_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    for key in ("sparse_categorical_accuracy", "student_loss", "distillation_loss"):
        close(f_hist[key], k_hist[key], rtol=1e-4, atol=1e-5)
    for kw, fw in zip(k_student.get_weights(), f_student.get_weights()):
        close(fw, kw, rtol=1e-4, atol=1e-5)


# -- tf.data --------------------------------------------------------------------------------------

def test_dataset_pipeline_feeds_fit():
    x = RNG.normal(size=(50, 3)).astype("float32")
    y = (x.sum(1, keepdims=True) > 0).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1024).batch(16).prefetch(32)
    assert len(ds) == 4
    batches = list(ds)
    assert [tuple(b[0].shape) for b in batches] == [(16, 3)] * 3 + [(2, 3)]
    assert sorted(torch.cat([b[0] for b in batches])[:, 0].tolist()) == sorted(x[:, 0].tolist())
    model = kaffe.Sequential([kaffe.Input(shape=(3,)), kaffe.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0).history
    assert len(history["loss"]) == 2
    only_x = tf.data.Dataset.from_tensor_slices(x).batch(10).map(lambda t: t * 2)
    close(next(iter(only_x)), x[:10] * 2)
    assert len(list(tf.data.Dataset.from_tensor_slices(x).batch(10).repeat(2))) == 10


# -- TensorFlow 1 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Session", "placeholder", "global_variables_initializer"])
def test_tf1_names_say_no_sessions(name):
    with pytest.raises(RuntimeError, match="TensorFlow 1.*no sessions.*Instead"):
        getattr(tf, name)()


def test_tf_compat_v1_names_the_line():
    with pytest.raises(AttributeError, match="tensorflow.compat.v1.*TensorFlow 2 form"):
        tf.compat.v1


def test_tf_argmax_argmin_are_int64_as_tensorflow():
    """TensorFlow's tf.argmax/argmin return int64 (output_type picks another); Keras's
    ops.argmax gives int32, so the shim must not pass that through."""
    x = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 4.0]], np.float32)
    assert tf.argmax(x, axis=1).dtype == torch.int64
    assert tf.argmin(x, axis=0).dtype == torch.int64
    assert tf.argmax(x, axis=1, output_type=tf.int32).dtype == torch.int32
    np.testing.assert_array_equal(np.asarray(tf.argmax(x, axis=1)), [1, 0])
    np.testing.assert_array_equal(np.asarray(tf.argmin(x)), [0, 1, 0])


def test_dataset_of_nested_dicts_feeds_a_multi_io_model():
    # keras.io "Training & evaluation with the built-in methods": a Dataset of
    # ({input name: array}, {output name: array}) trains a two-input two-output model
    rng = np.random.RandomState(0)
    img, ts = rng.rand(20, 4).astype("float32"), rng.rand(20, 3).astype("float32")
    score, cls = rng.rand(20, 1).astype("float32"), rng.randint(0, 2, (20, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"img_input": img, "ts_input": ts}, {"score_output": score, "class_output": cls}))
    first_x, first_y = next(iter(dataset))
    assert torch.equal(first_x["ts_input"], torch.from_numpy(ts[0]))
    assert torch.equal(first_y["class_output"], torch.from_numpy(cls[0]))
    batches = list(dataset.shuffle(32, seed=1).batch(8))
    assert len(batches) == len(dataset.batch(8)) == 3
    assert sorted(torch.cat([b[1]["score_output"] for b in batches]).flatten().tolist()) == \
        sorted(score.flatten().tolist())  # every row once, inputs and targets kept together
    x_in, t_in = kaffe.Input((4,), name="img_input"), kaffe.Input((3,), name="ts_input")
    h = kaffe.layers.concatenate([x_in, t_in])
    model = kaffe.Model([x_in, t_in], [kaffe.layers.Dense(1, name="score_output")(h),
                                       kaffe.layers.Dense(1, activation="sigmoid",
                                                          name="class_output")(h)])
    model.compile("rmsprop", {"score_output": "mse", "class_output": "binary_crossentropy"})
    history = model.fit(dataset.batch(8), epochs=2, verbose=0)
    assert set(history.history) >= {"loss", "score_output_loss", "class_output_loss"}
