"""The seed's dense autoencoder on MNIST: 784 -> 32 -> 784, ``adadelta``, binary cross-entropy.

Then, as the seed does, the encoder and the decoder are cut out of the trained autoencoder with
``get_layer`` and the test digits go through both; the figure (originals on top,
reconstructions below) is saved as a PNG. Quick by default (5 epochs); ``--full`` runs the
seed's 50 epochs on all 60,000 images with batch 256.

``optimizer='adadelta'`` is Keras 2's Adadelta (learning rate 1.0), which is what the seed
was written for; Keras 3's default of 0.001 barely moves this autoencoder in 50 epochs.
"""
import os
import time

from _autoencoder_common import load_mnist, parser, save_rows, settings

from kaffe.layers import Dense, Input
from kaffe.models import Model


def main(argv=None):
    args = parser(__doc__, epochs=5, samples=0, full_epochs=50).parse_args(argv)
    epochs, samples, test_samples = settings(args)
    x_train, x_test = load_mnist(samples, test_samples)
    print(x_train.shape)
    print(x_test.shape)

    encoding_dim = 32
    input_img = Input(shape=(784,))
    encoded = Dense(encoding_dim, activation="relu", name="encoder")(input_img)
    decoded = Dense(784, activation="sigmoid", name="decoder")(encoded)
    autoencoder = Model(input_img, decoded)
    autoencoder.summary()
    autoencoder.compile(optimizer="adadelta", loss="binary_crossentropy")

    start = time.perf_counter()
    history = autoencoder.fit(x_train, x_train, epochs=epochs, batch_size=256, shuffle=True,
                              validation_data=(x_test, x_test), verbose=args.verbose)
    print(f"trained in {time.perf_counter() - start:.1f} s; "
          f"validation loss {history.history['val_loss'][-1]:.4f}")

    # The seed's cut-outs (it names them dense_1 / dense_2, Keras 2's automatic names).
    ori_input = Input(shape=(784,))
    encoder = Model(ori_input, autoencoder.get_layer("encoder")(ori_input))
    encoded_input = Input(shape=(encoding_dim,))
    decoder = Model(encoded_input, autoencoder.get_layer("decoder")(encoded_input))
    encoded_imgs = encoder.predict(x_test, verbose=0)
    decoded_imgs = decoder.predict(encoded_imgs, verbose=0)
    save_rows(os.path.join(args.out_dir, "autoencoder_dense.png"), [x_test, decoded_imgs])
    return history, encoder, decoder, autoencoder


if __name__ == "__main__":
    main()
