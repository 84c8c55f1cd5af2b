"""The seed's MLP on MNIST (784-64-64-10 with dropout), trained with kaffe's Keras API.

Reads the real MNIST IDX files (``../shared/data/mnist`` or ``$KAFFE_DATA_HOME/mnist``); with
neither present it falls back to the small sample bundled with kaffe. Prints test accuracy.
"""
import argparse
import time

import numpy as np

import kaffe
from kaffe.datasets import mnist
from kaffe.layers import Dense, Dropout
from kaffe.optimizers import SGD
from kaffe.utils import to_categorical


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255.0
    x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255.0
    y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)
    print(f"MNIST: {len(x_train)} training and {len(x_test)} test images")

    model = kaffe.Sequential()
    model.add(Dense(64, activation="relu", input_dim=784))
    model.add(Dropout(0.1))
    model.add(Dense(64, activation="relu"))
    model.add(Dropout(0.1))
    model.add(Dense(10, activation="softmax"))
    model.summary()

    sgd = SGD(lr=0.05, decay=1e-6, momentum=0.9, nesterov=True)
    model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_split=0.1, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    print(f"trained in {seconds:.1f} s; test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
