"""Models with lookup tables, built by the tests: a TF2 module over a vocabulary file, Keras lookup layers, and
a TF1 SavedModel of feature columns. Each builder writes a SavedModel into a folder and returns the inputs to
compare it on (by signature input key) that hit and miss the vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from optimizer._tf import tensorflow

WORDS = ["apple", "banana", "cherry", "date"]


def _vocab_file(folder: Path, lines: list[str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def text_file_module(folder: Path) -> dict[str, np.ndarray]:
    """A tf.Module: StaticHashTable(TextFileInitializer) string -> line number, default -1."""
    tf = tensorflow()
    vocab = _vocab_file(folder.parent / "vocab_module", WORDS)

    class Module(tf.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            initializer = tf.lookup.TextFileInitializer(
                vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
            )
            self.table = tf.lookup.StaticHashTable(initializer, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, words: Any) -> Any:
            return {"ids": self.table.lookup(words)}

    module = Module()
    tf.saved_model.save(module, str(folder), signatures=module.__call__)
    return {"words": np.array([b"banana", b"zzz", b"apple", b"date"])}


def _keras_export(folder: Path, layer: Any, spec: tuple[tuple[int | None, ...], str], *, tf_save: bool = False) -> None:
    """A Keras model of one layer, written by `model.export` (or `tf.saved_model.save` with `tf_save`)."""
    import keras

    inputs = keras.Input(shape=spec[0][1:], dtype=spec[1], name="tokens")
    model = keras.Model(inputs, layer(inputs))
    if tf_save:
        tensorflow().saved_model.save(model, str(folder))
    else:
        model.export(str(folder), verbose=False)


def string_lookup(folder: Path) -> dict[str, np.ndarray]:
    import keras

    _keras_export(folder, keras.layers.StringLookup(vocabulary=WORDS), ((None, 3), "string"))
    return {"tokens": np.array([[b"banana", b"zzz", b"apple"], [b"date", b"cherry", b""]])}


def string_lookup_tf_save(folder: Path) -> dict[str, np.ndarray]:
    import keras

    _keras_export(folder, keras.layers.StringLookup(vocabulary=WORDS), ((None, 3), "string"), tf_save=True)
    return {"inputs": np.array([[b"cherry", b"apple", b"zzz"]])}  # tf.saved_model.save names the argument


def integer_lookup(folder: Path) -> dict[str, np.ndarray]:
    import keras

    _keras_export(folder, keras.layers.IntegerLookup(vocabulary=[7, 3, 42, 1000]), ((None, 3), "int64"))
    return {"tokens": np.array([[42, 5, 7], [1000, 3, 0]], dtype=np.int64)}


def text_vectorization(folder: Path) -> dict[str, np.ndarray]:
    import keras

    layer = keras.layers.TextVectorization(vocabulary=WORDS, output_sequence_length=5)
    _keras_export(folder, layer, ((None,), "string"))
    return {"tokens": np.array([b"Banana apple zzz", b"date"])}


def feature_columns_tf1(folder: Path) -> dict[str, np.ndarray]:
    """A TF1 SavedModel (Builder, main_op=tables_initializer) of two vocabulary feature columns."""
    tf = tensorflow()
    v1 = tf.compat.v1
    vocab = _vocab_file(folder.parent / "vocab_tf1", ["red", "green", "blue"])
    graph = tf.Graph()
    with graph.as_default():
        fruit = v1.placeholder(tf.string, [None], name="fruit")
        color = v1.placeholder(tf.string, [None], name="color")
        columns = [
            v1.feature_column.indicator_column(
                v1.feature_column.categorical_column_with_vocabulary_list("fruit", WORDS)
            ),
            v1.feature_column.indicator_column(
                v1.feature_column.categorical_column_with_vocabulary_file("color", vocab, vocabulary_size=3)
            ),
        ]
        dense = v1.feature_column.input_layer({"fruit": fruit, "color": color}, columns)
        output = tf.identity(dense, name="dense")
        with v1.Session(graph=graph) as session:
            session.run(v1.tables_initializer())
            builder = v1.saved_model.Builder(str(folder))
            signature = v1.saved_model.predict_signature_def({"fruit": fruit, "color": color}, {"dense": output})
            builder.add_meta_graph_and_variables(
                session,
                ["serve"],
                signature_def_map={"serving_default": signature},
                main_op=v1.tables_initializer(),
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),  # the vocabulary file, under assets/
            )
            builder.save()
    return {"fruit": np.array([b"cherry", b"zzz"]), "color": np.array([b"blue", b"red"])}


BUILDERS: dict[str, Callable[[Path], dict[str, np.ndarray]]] = {
    "text_file_module": text_file_module,
    "string_lookup": string_lookup,
    "string_lookup_tf_save": string_lookup_tf_save,
    "integer_lookup": integer_lookup,
    "text_vectorization": text_vectorization,
    "feature_columns_tf1": feature_columns_tf1,
}
