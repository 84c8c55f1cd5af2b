"""The seed's convolutional autoencoder on MNIST (28x28x1 -> 7x7x32 -> 28x28x1: two
Conv2D(32, 3x3, same) + MaxPooling2D, then two Conv2D + UpSampling2D and a sigmoid Conv2D(1)),
``adadelta``, binary cross-entropy, batch 128, trained to reconstruct clean digits. Saves test
digits and reconstructions as a PNG. Quick by default (2 epochs on 6,000 images; about a minute
on a 2-core CPU); ``--full``: 50 epochs on all 60,000.
"""
import os
import time

from _autoencoder_common import load_mnist, parser, save_rows, settings

from kaffe.layers import Conv2D, Input, MaxPooling2D, UpSampling2D
from kaffe.models import Model


def build():
    """The seed's architecture, exactly."""
    input_img = Input(shape=(28, 28, 1))
    x = Conv2D(32, (3, 3), activation="relu", padding="same")(input_img)
    x = MaxPooling2D((2, 2), padding="same")(x)
    x = Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    encoded = MaxPooling2D((2, 2), padding="same")(x)
    # at this point the representation is (7, 7, 32)
    x = Conv2D(32, (3, 3), activation="relu", padding="same")(encoded)
    x = UpSampling2D((2, 2))(x)
    x = Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = UpSampling2D((2, 2))(x)
    decoded = Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    autoencoder = Model(input_img, decoded)
    autoencoder.compile(optimizer="adadelta", loss="binary_crossentropy")
    return autoencoder, Model(input_img, encoded)


def main(argv=None):
    args = parser(__doc__, epochs=2, samples=6000, full_epochs=50).parse_args(argv)
    epochs, samples, test_samples = settings(args)
    x_train, x_test = load_mnist(samples, test_samples, images=True)
    autoencoder, encoder = build()
    autoencoder.summary()
    start = time.perf_counter()
    history = autoencoder.fit(x_train, x_train, epochs=epochs, batch_size=128, shuffle=True,
                              validation_data=(x_test, x_test), verbose=args.verbose)
    print(f"trained in {time.perf_counter() - start:.1f} s; "
          f"validation loss {history.history['val_loss'][-1]:.4f}")
    print("code shape:", encoder.predict(x_test[:1], verbose=0).shape)
    decoded_imgs = autoencoder.predict(x_test, verbose=0)
    save_rows(os.path.join(args.out_dir, "autoencoder_conv.png"), [x_test, decoded_imgs])
    return history, autoencoder


if __name__ == "__main__":
    main()
