"""Custom train_step / test_step / predict_step / compute_loss against Keras 3 (torch backend):
the same subclass code, run with ``keras`` and with ``kaffe`` as the library, from the same
initial weights, must give the same logs and the same weights."""
import keras
import numpy as np
import pytest
import torch

import kaffe

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 6)).astype("float32")
Y = (X @ RNG.normal(size=(6, 1))).astype("float32")
LABELS = RNG.integers(0, 3, size=(64,))


def copy_weights(src, dst):
    dst.set_weights([np.asarray(w) for w in src.get_weights()])


def both(build):
    keras.utils.set_random_seed(0)
    k_model = build(keras)
    kaffe.backend.clear_session()
    f_model = build(kaffe)
    copy_weights(k_model, f_model)
    return k_model, f_model


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol)


# -- the keras.io "customizing fit() with PyTorch" model ----------------------------------------

def torch_guide_model(lib):
    class CustomModel(lib.Model):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            loss.backward()
            trainable_weights = [v for v in self.trainable_weights]
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    inputs = lib.Input(shape=(6,))
    hidden = lib.layers.Dense(8, activation="relu")(inputs)
    outputs = lib.layers.Dense(1)(hidden)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=lib.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def test_torch_guide_train_step_matches_keras():
    k_model, f_model = both(torch_guide_model)
    assert isinstance(f_model, kaffe.Model) and f_model.layers  # a functional subclass
    k_hist = k_model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    f_hist = f_model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    assert set(f_hist) == {"loss", "mae"} and set(k_hist) >= {"loss", "mae"}
    for key in ("loss", "mae"):
        close(f_hist[key], k_hist[key])
    for kw, fw in zip(k_model.get_weights(), f_model.get_weights()):
        close(fw, kw)
    # evaluate and predict use the default test/predict steps
    close(f_model.evaluate(X, Y, verbose=0), k_model.evaluate(X, Y, verbose=0))
    close(f_model.predict(X, verbose=0), k_model.predict(X, verbose=0))


# -- knowledge distillation: compute_loss override, compile with the subclass's arguments --------

def distiller(lib):
    class Distiller(lib.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1,
                    temperature=3):
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha = alpha
            self.temperature = temperature

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                         allow_empty=False):
            teacher_pred = self.teacher(x, training=False)
            student_loss = self.student_loss_fn(y, y_pred)
            t = self.temperature
            distillation_loss = self.distillation_loss_fn(
                torch.softmax(teacher_pred / t, dim=1), torch.softmax(y_pred / t, dim=1)) * t ** 2
            return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

        def call(self, x):
            return self.student(x)

    teacher = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(16, activation="relu"),
                              lib.layers.Dense(3)])
    student = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(4, activation="relu"),
                              lib.layers.Dense(3)])
    model = Distiller(student=student, teacher=teacher)
    model.compile(optimizer=lib.optimizers.Adam(learning_rate=0.01),
                  metrics=[lib.metrics.SparseCategoricalAccuracy()],
                  student_loss_fn=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
                  distillation_loss_fn=lib.losses.KLDivergence(), alpha=0.1, temperature=10)
    return model, teacher, student


def test_distiller_compute_loss_override_matches_keras():
    keras.utils.set_random_seed(0)
    k_model, k_teacher, k_student = distiller(keras)
    kaffe.backend.clear_session()
    f_model, f_teacher, f_student = distiller(kaffe)
    copy_weights(k_teacher, f_teacher)
    copy_weights(k_student, f_student)
    k_hist = k_model.fit(X, LABELS, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    f_hist = f_model.fit(X, LABELS, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    for key in ("loss", "sparse_categorical_accuracy"):
        close(f_hist[key], k_hist[key], rtol=1e-4)
    for kw, fw in zip(k_student.get_weights(), f_student.get_weights()):
        close(fw, kw, rtol=1e-4, atol=1e-5)
    close(f_model.evaluate(X, LABELS, verbose=0), k_model.evaluate(X, LABELS, verbose=0),
          rtol=1e-4)


# -- two optimizers, metric trackers, no call(): the GAN shape --------------------------------

def two_player(lib):
    class TwoPlayer(lib.Model):
        def __init__(self, critic, maker):
            super().__init__()
            self.critic = critic
            self.maker = maker

        def compile(self, c_optimizer, m_optimizer, loss_fn):
            super().compile()
            self.c_optimizer = c_optimizer
            self.m_optimizer = m_optimizer
            self.loss_fn = loss_fn
            self.c_loss_metric = lib.metrics.Mean(name="c_loss")
            self.m_loss_metric = lib.metrics.Mean(name="m_loss")

        @property
        def metrics(self):
            return [self.c_loss_metric, self.m_loss_metric]

        def train_step(self, data):
            real = data
            n = real.shape[0]
            made = self.maker(real * 0.5)
            both_ = torch.cat([made, real], dim=0)
            labels = torch.cat([torch.ones((n, 1)), torch.zeros((n, 1))], dim=0)
            self.zero_grad()
            c_loss = self.loss_fn(labels, self.critic(both_))
            c_loss.backward()
            weights = self.critic.trainable_weights
            with torch.no_grad():
                self.c_optimizer.apply([w.value.grad for w in weights], weights)
            self.zero_grad()
            m_loss = self.loss_fn(torch.zeros((n, 1)), self.critic(self.maker(real * 0.5)))
            m_loss.backward()
            weights = self.maker.trainable_weights
            with torch.no_grad():
                self.m_optimizer.apply([w.value.grad for w in weights], weights)
            self.c_loss_metric.update_state(c_loss)
            self.m_loss_metric.update_state(m_loss)
            return {"c_loss": self.c_loss_metric.result(), "m_loss": self.m_loss_metric.result()}

    critic = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(5, activation="relu"),
                             lib.layers.Dense(1)])
    maker = lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(6, activation="tanh")])
    model = TwoPlayer(critic, maker)
    model.compile(c_optimizer=lib.optimizers.Adam(learning_rate=0.01),
                  m_optimizer=lib.optimizers.SGD(learning_rate=0.1),
                  loss_fn=lib.losses.BinaryCrossentropy(from_logits=True))
    return model, critic, maker


def test_two_optimizers_matches_keras():
    keras.utils.set_random_seed(0)
    k_model, k_critic, k_maker = two_player(keras)
    kaffe.backend.clear_session()
    f_model, f_critic, f_maker = two_player(kaffe)
    copy_weights(k_critic, f_critic)
    copy_weights(k_maker, f_maker)
    k_model.built = True  # Keras 3 would try to build a model without call() from a batch
    k_hist = k_model.fit(X, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    f_hist = f_model.fit(X, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    assert set(f_hist) == {"c_loss", "m_loss"}
    for key in ("c_loss", "m_loss"):
        close(f_hist[key], k_hist[key], rtol=1e-4)
    for k_part, f_part in ((k_critic, f_critic), (k_maker, f_maker)):
        for kw, fw in zip(k_part.get_weights(), f_part.get_weights()):
            close(fw, kw, rtol=1e-4, atol=1e-5)


# -- test_step and predict_step ----------------------------------------------------------------

def stepped_model(lib):
    class Stepped(lib.Model):
        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def predict_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            return self(x, training=False) * 2.0

    inputs = lib.Input(shape=(6,))
    outputs = lib.layers.Dense(1)(inputs)
    model = Stepped(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


def test_test_step_and_predict_step_match_keras():
    k_model, f_model = both(stepped_model)
    k_logs = k_model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
    f_logs = f_model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
    assert set(f_logs) == {"loss", "mae"}
    for key in f_logs:
        close(f_logs[key], k_logs[key])
    close(f_model.predict(X, batch_size=16, verbose=0), k_model.predict(X, batch_size=16, verbose=0))


def test_train_on_batch_uses_custom_step():
    k_model, f_model = both(torch_guide_model)
    # Keras 3's train_on_batch hands train_step (x, y, None), which this step cannot unpack:
    # its fit on the same one batch is the reference.
    k_logs = {k: v[0] for k, v in k_model.fit(X[:16], Y[:16], batch_size=16, verbose=0).history.items()}
    f_logs = f_model.train_on_batch(X[:16], Y[:16], return_dict=True)
    for key in ("loss", "mae"):
        close(f_logs[key], k_logs[key])


def test_metric_attributes_are_tracked_and_reset():
    class Tracked(kaffe.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = kaffe.metrics.Sum(name="seen")

        def train_step(self, data):
            x, y = data
            self.seen.update_state(torch.ones(()) * x.shape[0])
            return {"seen": self.seen.result()}

    inputs = kaffe.Input(shape=(6,))
    model = Tracked(inputs, kaffe.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    assert "seen" in [m.name for m in model.metrics]
    history = model.fit(X, Y, batch_size=16, epochs=2, verbose=0).history
    assert history["seen"] == [64.0, 64.0]  # reset at each epoch start


def test_compile_without_loss_fails_at_fit_naming_the_fix():
    inputs = kaffe.Input(shape=(6,))
    model = kaffe.Model(inputs, kaffe.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        model.fit(X, Y, verbose=0)


def test_compiled_loss_and_metrics_spelling_of_tf_keras_2():
    """tf.keras 2's ``self.compiled_loss`` / ``self.compiled_metrics`` inside ``train_step`` give
    the same training as the default fit (checked against Keras 3's default fit)."""
    class Legacy(kaffe.Model):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)
            loss.backward()
            self.optimizer.apply_gradients(
                zip([v.grad for v in self.trainable_variables], self.trainable_variables))
            self.compiled_metrics.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    keras.utils.set_random_seed(0)
    k_in = keras.Input(shape=(6,))
    k_model = keras.Model(k_in, keras.layers.Dense(1)(k_in))
    k_model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    f_in = kaffe.Input(shape=(6,))
    f_model = Legacy(f_in, kaffe.layers.Dense(1)(f_in))
    f_model.compile(optimizer=kaffe.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    copy_weights(k_model, f_model)
    k_hist = k_model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    f_hist = f_model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    for key in ("loss", "mae"):
        close(f_hist[key], k_hist[key])
