"""``kaffe run script.py``: unedited Keras (and gensim word2vec) scripts on kaffe.

The seeds' Keras scripts (tests/seed_scripts, sizes shrunk, imports exactly as the seeds write
them) run in a subprocess as a user would run them; the import hook's behaviour (names kaffe
lacks, the tensorflow stand-in, leaving no trace) is checked in-process, where it is cheap.
"""
import concurrent.futures
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import kaffe
from kaffe.cli.main import main
from kaffe.compat import MissingAPIError, MissingAPIImportError, kaffe_as_keras

SEED_DIR = Path(__file__).parent / "seed_scripts"

#: script -> the line it prints last when it got to the end.
SEEDS = {
    "seed000_sequential_mlp.py": "SEED000_MLP_OK 2",
    "seed000_custom_metric.py": "SEED000_METRIC_OK ['accuracy', 'loss', 'mean_pred']",
    "seed000_functional_mlp.py": "SEED000_FUNCTIONAL_OK (None, 10)",
    "seed000_cnn_rnn.py": "SEED000_CNN_RNN_OK 2",
    "seed001_tf_keras_summary.py": "SEED001_OK 3466 3466",
    "seed002_imdb_embedding.py": "SEED002_OK ['acc', 'loss', 'val_acc', 'val_loss']",
    "seed003_two_inputs_two_outputs.py": "SEED003_OK ['aux_output_loss', 'loss', 'main_output_loss']",
    "seed004_cnn_ensemble.py": "SEED004_OK 6",
}


def kaffe_run(path, *args, cwd=None):
    """``kaffe run path args`` in a fresh interpreter, as a user runs it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "kaffe.cli.main", "run", str(path), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def seed_runs():
    """All seed scripts, run side by side (each subprocess mostly waits on start-up)."""
    workers = max(2, min(len(SEEDS), os.cpu_count() or 2))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(kaffe_run, SEED_DIR / name) for name in SEEDS}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("script", sorted(SEEDS))
def test_seed_script_runs_unedited(script, seed_runs):
    result = seed_runs[script]
    assert result.returncode == 0, result.stderr[-3000:]
    assert SEEDS[script] in result.stdout.splitlines()[-1], result.stdout[-2000:]


def test_seed_scripts_keep_the_seeds_imports():
    """The point of the scripts: their import lines are the seeds', not kaffe's."""
    sources = {name: (SEED_DIR / name).read_text(encoding="utf-8") for name in SEEDS}
    assert not any("import kaffe" in source or "from kaffe" in source for source in sources.values())
    assert "import keras.backend as K" in sources["seed000_custom_metric.py"]
    assert "SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)" in sources["seed000_sequential_mlp.py"]
    seed001 = sources["seed001_tf_keras_summary.py"]
    assert "import tensorflow as tf\ntf.__version__\n" in seed001
    assert "from tensorflow.keras import Sequential, Model, layers, Input" in seed001
    assert "Lambda(mean,output_shape=(10,))" in sources["seed004_cnn_ensemble.py"]


def test_seed001_prints_the_tensorflow_version_and_keras_summaries(seed_runs):
    out = seed_runs["seed001_tf_keras_summary.py"].stdout
    assert "tensorflow 2.15.0+kaffe" in out
    assert "Total params: 3,466" in out and "(None, 32)" in out


def test_missing_layer_fails_naming_the_name_and_the_line(tmp_path):
    script = tmp_path / "uses_missing.py"
    script.write_text("import keras\nfrom keras.layers import Dense\n\nx = Dense(3)\n"
                      "y = keras.layers.DoesNotExist(4)\n")
    result = kaffe_run(script)
    assert result.returncode != 0
    assert "kaffe has no keras.layers.DoesNotExist" in result.stderr
    assert f"(used at {script}:5)" in result.stderr
    assert "kaffe does not provide it" in result.stderr
    # The traceback starts in the script, as `python script.py` would show it.
    assert f'File "{script}", line 5' in result.stderr and "runpy" not in result.stderr


def run_in_process(tmp_path, source, *args, name="script.py"):
    script = tmp_path / name
    script.write_text(source)
    return script, main(["run", str(script), *args])


def test_from_import_of_a_missing_name_is_an_import_error_naming_the_line(tmp_path, capsys):
    script, code = run_in_process(tmp_path, "import numpy\nfrom keras.layers import Dense, DoesNotExist\n")
    err = capsys.readouterr().err
    assert code == 1
    assert "MissingAPIImportError: kaffe has no keras.layers.DoesNotExist" in err
    assert f"(used at {script}:2)" in err


def test_tf_nonexistent_fails_naming_the_name_and_the_line(tmp_path, capsys):
    script, code = run_in_process(tmp_path, "import tensorflow as tf\nprint(tf.__version__)\n"
                                            "tf.nonexistent(3)\n")
    captured = capsys.readouterr()
    assert code == 1 and "2.15.0+kaffe" in captured.out
    assert f"kaffe has no tensorflow.nonexistent (used at {script}:3)" in captured.err
    assert "kaffe does not provide it" in captured.err and "tf.keras" in captured.err


def test_missing_keras_module(tmp_path, capsys):
    script, code = run_in_process(tmp_path, "import keras\n\nfrom keras.quantizers import AbsMaxQuantizer\n")
    assert code == 1
    assert f"kaffe has no keras.quantizers (used at {script}:3)" in capsys.readouterr().err


def test_argv_name_path_and_exit_code(tmp_path, capsys):
    source = ("import sys, os\n"
              "print('argv', sys.argv)\n"
              "print('name', __name__)\n"
              "print('dir first', sys.path[0] == os.path.dirname(os.path.abspath(__file__)))\n"
              "import helper_module\n"
              "sys.exit(int(sys.argv[2]))\n")
    (tmp_path / "helper_module.py").write_text("VALUE = 1\n")
    argv_before, path_before = sys.argv[:], sys.path[:]
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(tmp_path, source, "--epochs", "3", "-v")
    out = capsys.readouterr().out
    assert exit_info.value.code == 3
    assert f"argv ['{tmp_path / 'script.py'}', '--epochs', '3', '-v']" in out
    assert "name __main__" in out and "dir first True" in out
    assert sys.argv == argv_before and sys.path == path_before
    sys.modules.pop("helper_module", None)


def test_argv_reaches_the_script_in_a_subprocess(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text("import sys\nprint('ARGS', sys.argv[1:])\n")
    result = kaffe_run(script, "a b", "--flag", "-h")
    assert result.returncode == 0, result.stderr
    assert "ARGS ['a b', '--flag', '-h']" in result.stdout


def _served():
    return {name: module for name, module in sys.modules.items()
            if name.partition(".")[0] in ("keras", "tensorflow", "gensim")}


def test_the_hook_leaves_no_trace(tmp_path, capsys, monkeypatch):
    """Modules named keras/tensorflow before the run (here stand-ins for a real Keras) are
    back afterwards; the finder and every alias module are gone, after success and failure."""
    before_keras = types.ModuleType("keras")
    monkeypatch.setitem(sys.modules, "keras", before_keras)
    meta_path, served = list(sys.meta_path), _served()
    source = ("import kaffe, keras, keras.layers.core, tensorflow as tf\n"
              "from keras.datasets import mnist\n"
              "from keras.utils.vis_utils import plot_model\n"
              "from tensorflow.keras.layers import Dense\n"
              "assert keras.Sequential is kaffe.Sequential and tf.keras.Model is kaffe.Model\n"
              "assert keras.layers.core.Dense is Dense is kaffe.layers.Dense\n"
              "assert plot_model is kaffe.utils.plot_model\n"
              "print('INSIDE', type(keras).__name__)\n")
    _, code = run_in_process(tmp_path, source)
    assert code == 0 and "INSIDE CompatModule" in capsys.readouterr().out
    assert sys.meta_path == meta_path and _served() == served
    assert sys.modules["keras"] is before_keras
    _, code = run_in_process(tmp_path, "import keras.layers\nraise ValueError('boom')\n")
    assert code == 1 and "ValueError: boom" in capsys.readouterr().err
    assert sys.meta_path == meta_path and _served() == served


def test_keras_names_map_to_kaffe():
    with kaffe_as_keras():
        import keras
        import keras.backend as K
        from keras import callbacks, datasets, initializers, losses, metrics, models, optimizers
        from keras.datasets import mnist
        from keras.engine.topology import Input, Layer
        from keras.layers.convolutional import Conv2D
        from keras.layers.embeddings import Embedding
        from keras.layers.recurrent import LSTM
        from keras.preprocessing.sequence import pad_sequences
        from keras.preprocessing.text import Tokenizer
        from keras.utils.np_utils import to_categorical
        from tensorflow.keras.optimizers.legacy import Adam
        assert keras.__version__ == "2.15.0+kaffe"
        assert K.mean is kaffe.backend.mean and mnist.load_data is kaffe.datasets.mnist.load_data
        assert (Conv2D, Embedding, LSTM, Input, Layer) == (
            kaffe.layers.Conv2D, kaffe.layers.Embedding, kaffe.layers.LSTM, kaffe.Input,
            kaffe.layers.Layer)
        assert models.Sequential is kaffe.Sequential and optimizers.SGD is kaffe.optimizers.SGD
        assert losses.mse is kaffe.losses.mse and Adam is kaffe.optimizers.Adam
        assert to_categorical is kaffe.utils.to_categorical
        assert pad_sequences is kaffe.preprocessing.sequence.pad_sequences
        assert Tokenizer is kaffe.preprocessing.text.Tokenizer
        assert callbacks.History is kaffe.callbacks.History
        assert initializers.GlorotUniform is kaffe.initializers.GlorotUniform
        assert metrics is sys.modules["keras.metrics"] and datasets.mnist is mnist
        assert "Dense" in dir(keras.layers) and "layers" in dir(keras)
        namespace = {}
        exec("from keras.layers import *", namespace)
        assert namespace["Dense"] is kaffe.layers.Dense


def test_missing_names_are_attribute_and_import_errors_naming_this_line():
    with kaffe_as_keras():
        import keras
        import tensorflow as tf
        assert not hasattr(keras.layers, "SomethingKaffeLacks") and not hasattr(tf, "sparse")
        line = sys._getframe().f_lineno + 2
        with pytest.raises(MissingAPIError) as info:
            keras.layers.SomethingKaffeLacks
        assert str(info.value).startswith(
            f"kaffe has no keras.layers.SomethingKaffeLacks (used at {__file__}:{line})")
        assert isinstance(info.value, AttributeError)
        with pytest.raises(ImportError, match="kaffe has no keras.src"):
            import keras.src  # noqa: F401
        with pytest.raises(MissingAPIImportError, match=r"kaffe has no keras.layers.Nope \(used at"):
            from keras.layers import Nope  # noqa: F401
        with pytest.raises(MissingAPIError,
                           match=r"kaffe has no tensorflow.random.stateless_normal"):
            tf.random.stateless_normal((2, 2), seed=(1, 2))


def test_tensorflow_stand_in():
    with kaffe_as_keras():
        import tensorflow as tf
        from tensorflow import keras
        assert tf.__version__ == tf.version.VERSION == "2.15.0+kaffe"
        assert keras is tf.keras is sys.modules["tensorflow.keras"]
        assert tf.keras.layers.Dense is kaffe.layers.Dense
        gpus = tf.config.list_physical_devices("GPU")
        assert len(gpus) == torch.cuda.device_count()
        assert all(d.device_type == "GPU" and d.name.startswith("/physical_device:GPU:") for d in gpus)
        assert tf.config.list_physical_devices()[0].name == "/physical_device:CPU:0"
        for gpu in tf.config.experimental.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        t = tf.constant([[1.0, 2.0], [3.0, 4.0]])
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (2, 2)
        assert torch.equal(tf.constant(7, shape=(2, 3)), torch.full((2, 3), 7))
        assert tf.constant([1, 2, 3, 4], dtype=tf.float32, shape=[2, 2]).tolist() == [[1, 2], [3, 4]]
        assert tf.convert_to_tensor(np.arange(3.0)).dtype == torch.float64
        assert tf.convert_to_tensor(np.arange(3), dtype="float32").dtype == torch.float32
        tf.random.set_seed(5)
        a = torch.rand(3)
        tf.random.set_seed(5)
        assert torch.equal(a, torch.rand(3))


def test_keras_mixed_precision_and_distribution_resolve_to_kaffe(tmp_path, capsys):
    """Keras 3 scripts spell these ``keras.mixed_precision`` and ``keras.distribution``."""
    source = ("import keras\nfrom keras import mixed_precision\n"
              "from keras.distribution import DataParallel\n"
              "mixed_precision.set_global_policy('mixed_bfloat16')\n"
              "print(keras.mixed_precision.global_policy().name, DataParallel.__module__)\n"
              "mixed_precision.set_global_policy('float32')\n")
    _, code = run_in_process(tmp_path, source)
    out = capsys.readouterr().out
    assert code == 0
    assert "mixed_bfloat16 kaffe." in out


#: seed 002's gensim lines, unedited but for sizes (a tiny text8-style corpus, ``size=20``,
#: ``iter=3``, ``min_count=1``), plus the binary word2vec file round trip.
SEED002_GENSIM = """\
from gensim.models import word2vec
sentences = word2vec.Text8Corpus('text8')
model = word2vec.Word2Vec(sentences, size=20, iter=3, min_count=1, window=2, seed=1)
model.save('text8.model')
model = word2vec.Word2Vec.load('text8.model')
most_similar = model.most_similar(positive=['woman', 'king'], negative=['man'],
topn=1)
print(most_similar)
model.wv.save_word2vec_format('vectors.bin', binary=True)
from gensim.models import KeyedVectors
import numpy as np
wv_path = './vectors.bin'
model = KeyedVectors.load_word2vec_format(wv_path, binary=True)
w1 = model['cat']
w2 = model['dog']
dist = np.linalg.norm(w1-w2)
print('dist(cat,dog) is ' + str(dist))
import gensim, gensim.models.keyedvectors
print('MODULES', type(model).__module__, type(sentences).__module__,
      type(word2vec.Word2Vec.load('text8.model')).__module__, gensim.__version__,
      gensim.models.Word2Vec is word2vec.Word2Vec,
      gensim.models.keyedvectors.KeyedVectors is KeyedVectors)
"""


def tiny_text8(path, repeats=60):
    """A text8-style file (one line of space-separated words) with seed 002's words in it."""
    phrases = ["the king is a man", "the queen is a woman", "a cat and a dog",
               "the man and the woman", "the king and the queen", "a dog is not a car"]
    path.write_text(" ".join(phrases * repeats))


def test_seed002_gensim_lines_run_on_kaffe_text(tmp_path, capsys, monkeypatch):
    """Under ``kaffe run`` gensim is kaffe.text, though the real gensim is installed; the
    vectors file it writes reads back in the real gensim (the oracle) to the same answers."""
    gensim = pytest.importorskip("gensim")  # the oracle; also shows it is installed
    from gensim.models import KeyedVectors as GensimKeyedVectors
    monkeypatch.chdir(tmp_path)
    tiny_text8(tmp_path / "text8")
    meta_path, served = list(sys.meta_path), _served()
    _, code = run_in_process(tmp_path, SEED002_GENSIM)
    out = capsys.readouterr().out
    assert code == 0, out
    modules = out.splitlines()[-1].split()
    assert modules[0] == "MODULES" and all(m.startswith("kaffe.") for m in modules[1:4]), out
    assert modules[4:] == ["4.4.0+kaffe", "True", "True"]
    # the real gensim is back afterwards, and reads what kaffe wrote
    assert sys.meta_path == meta_path and _served() == served
    assert sys.modules["gensim"] is gensim
    oracle = GensimKeyedVectors.load_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    [(word, similarity)] = oracle.most_similar(positive=["woman", "king"], negative=["man"],
                                               topn=1)
    printed = out.splitlines()
    assert printed[0].startswith(f"[('{word}', ")
    assert float(printed[0].split(", ")[1].rstrip(")]")) == pytest.approx(similarity, abs=1e-5)
    dist = float(np.linalg.norm(oracle["cat"] - oracle["dog"]))
    assert float(printed[1].removeprefix("dist(cat,dog) is ")) == pytest.approx(dist, rel=1e-5)


def test_missing_gensim_names_fail_naming_the_name_and_the_line(tmp_path, capsys):
    script, code = run_in_process(tmp_path, "from gensim.models import word2vec\n\n"
                                            "model = word2vec.Doc2Vec([['a']])\n")
    err = capsys.readouterr().err
    assert code == 1
    assert ("MissingAPIError: kaffe has no gensim.models.word2vec.Doc2Vec "
            f"(used at {script}:3)") in err
    assert "kaffe covers gensim's word2vec" in err
    script, code = run_in_process(tmp_path, "import gensim\nfrom gensim.models import FastText\n")
    err = capsys.readouterr().err
    assert code == 1
    assert f"MissingAPIImportError: kaffe has no gensim.models.FastText (used at {script}:2)" in err
    script, code = run_in_process(tmp_path, "import numpy\nimport gensim.corpora\n")
    assert code == 1
    assert f"kaffe has no gensim.corpora (used at {script}:2)" in capsys.readouterr().err


def test_gensim_names_map_to_kaffe_text():
    with kaffe_as_keras():
        import gensim
        from gensim.models import KeyedVectors, Word2Vec, keyedvectors, word2vec
        from gensim.models.word2vec import LineSentence, PathLineSentences, Text8Corpus
        assert (Word2Vec, KeyedVectors) == (kaffe.text.Word2Vec, kaffe.text.KeyedVectors)
        assert word2vec.Word2Vec is Word2Vec and keyedvectors.KeyedVectors is KeyedVectors
        assert (LineSentence, PathLineSentences, Text8Corpus) == (
            kaffe.text.LineSentence, kaffe.text.PathLineSentences, kaffe.text.Text8Corpus)
        assert gensim.models.word2vec is word2vec and "word2vec" in dir(gensim.models)
        # kaffe's own modules are not served under gensim names, nor kaffe.text under gensim
        with pytest.raises(MissingAPIError, match="kaffe has no gensim.models.kernels"):
            gensim.models.kernels
        with pytest.raises(MissingAPIError, match="kaffe has no gensim.Word2Vec"):
            gensim.Word2Vec
