"""The seed's denoising convolutional autoencoder: MNIST digits plus Gaussian noise
(``noise_factor = 0.5``, clipped to [0, 1]) in, clean digits out; the seed's conv architecture,
``adadelta``, batch 128, validation on noisy test digits, TensorBoard logs (open them with
``tensorboard --logdir runs/autoencoder_denoising_tb``). The figure shows noisy test digits,
the network's reconstructions and the clean originals. Quick by default (2 epochs on 6,000
images); ``--full``: the seed's 10 epochs on all 60,000.
"""
import os
import time

import numpy as np
from _autoencoder_common import load_mnist, parser, save_rows, settings
from autoencoder_conv import build

from kaffe.callbacks import TensorBoard


def main(argv=None):
    p = parser(__doc__, epochs=2, samples=6000, full_epochs=10)
    p.add_argument("--log-dir", default=None,
                   help="TensorBoard folder (default: <out-dir>/autoencoder_denoising_tb)")
    args = p.parse_args(argv)
    epochs, samples, test_samples = settings(args)
    log_dir = args.log_dir or os.path.join(args.out_dir, "autoencoder_denoising_tb")
    x_train, x_test = load_mnist(samples, test_samples, images=True)

    noise_factor = 0.5
    rng = np.random.default_rng(0)
    x_train_noisy = x_train + noise_factor * rng.normal(loc=0.0, scale=1.0, size=x_train.shape)
    x_test_noisy = x_test + noise_factor * rng.normal(loc=0.0, scale=1.0, size=x_test.shape)
    x_train_noisy = np.clip(x_train_noisy, 0., 1.).astype("float32")
    x_test_noisy = np.clip(x_test_noisy, 0., 1.).astype("float32")

    autoencoder, _ = build()
    start = time.perf_counter()
    history = autoencoder.fit(x_train_noisy, x_train, epochs=epochs, batch_size=128, shuffle=True,
                              validation_data=(x_test_noisy, x_test), verbose=args.verbose,
                              callbacks=[TensorBoard(log_dir=log_dir, histogram_freq=0,
                                                     write_graph=False)])
    print(f"trained in {time.perf_counter() - start:.1f} s; "
          f"validation loss {history.history['val_loss'][-1]:.4f}; TensorBoard logs: {log_dir}")
    decoded_imgs = autoencoder.predict(x_test_noisy, verbose=0)
    save_rows(os.path.join(args.out_dir, "autoencoder_denoising.png"),
              [x_test_noisy, decoded_imgs, x_test])
    return history, autoencoder, log_dir


if __name__ == "__main__":
    main()
