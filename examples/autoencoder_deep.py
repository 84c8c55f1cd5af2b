"""The seed's deep autoencoder on MNIST: 784-128-64-32-64-128-784 (ReLU, sigmoid output),
``adadelta``, binary cross-entropy. The 32-unit code is cut out as an encoder, the last three
layers as a decoder; the figure shows test digits and their reconstructions. Quick by default
(10 epochs on 20,000 images); ``--full``: 100 epochs on all 60,000, batch 256.
"""
import os
import time

from _autoencoder_common import load_mnist, parser, save_rows, settings

from kaffe.layers import Dense, Input
from kaffe.models import Model


def main(argv=None):
    args = parser(__doc__, epochs=10, samples=20000, full_epochs=100).parse_args(argv)
    epochs, samples, test_samples = settings(args)
    x_train, x_test = load_mnist(samples, test_samples)

    input_img = Input(shape=(784,))
    encoded = Dense(128, activation="relu")(input_img)
    encoded = Dense(64, activation="relu")(encoded)
    encoded = Dense(32, activation="relu", name="code")(encoded)

    decoded = Dense(64, activation="relu", name="decoder_1")(encoded)
    decoded = Dense(128, activation="relu", name="decoder_2")(decoded)
    decoded = Dense(784, activation="sigmoid", name="decoder_3")(decoded)
    autoencoder = Model(input_img, decoded)
    autoencoder.summary()
    autoencoder.compile(optimizer="adadelta", loss="binary_crossentropy")

    start = time.perf_counter()
    history = autoencoder.fit(x_train, x_train, epochs=epochs, batch_size=256, shuffle=True,
                              validation_data=(x_test, x_test), verbose=args.verbose)
    print(f"trained in {time.perf_counter() - start:.1f} s; "
          f"validation loss {history.history['val_loss'][-1]:.4f}")

    encoder = Model(input_img, encoded)
    code = Input(shape=(32,))
    x = code
    for name in ("decoder_1", "decoder_2", "decoder_3"):
        x = autoencoder.get_layer(name)(x)
    decoder = Model(code, x)
    decoded_imgs = decoder.predict(encoder.predict(x_test, verbose=0), verbose=0)
    save_rows(os.path.join(args.out_dir, "autoencoder_deep.png"), [x_test, decoded_imgs])
    return history, encoder, decoder, autoencoder


if __name__ == "__main__":
    main()
