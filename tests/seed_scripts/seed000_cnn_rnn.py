"""Seed 000, chapter 2: the VGG-like convnet and the Embedding + LSTM classifier
(images 100x100 -> 16x16, 100 samples -> 32, epochs 10 -> 1; the seed's undefined
``max_features``, ``x_train`` and ``y_train`` of the LSTM block are made here)."""
import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Dense, Dropout, Flatten
from keras.layers import Conv2D, MaxPooling2D
from keras.optimizers import SGD

x_train = np.random.random((32, 16, 16, 3))
y_train = keras.utils.to_categorical(np.random.randint(10, size=(32, 1)), num_classes=10)
x_test = np.random.random((8, 16, 16, 3))
y_test = keras.utils.to_categorical(np.random.randint(10, size=(8, 1)), num_classes=10)

model = Sequential()
# input: 100x100 images with 3 channels
# this applies 32convolution filters of size 3x3 each.
model.add(Conv2D(32, (3,3), activation='relu', input_shape=(16, 16, 3)))
model.add(Conv2D(32, (3,3), activation='relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.25))

model.add(Conv2D(64, (3,3), activation='relu'))
model.add(Conv2D(64, (3,3), activation='relu'))
model.add(MaxPooling2D(pool_size=(2,2)))
model.add(Dropout(0.25))

model.add(Flatten())
model.add(Dense(256, activation='relu'))
model.add(Dropout(0.5))
model.add(Dense(10, activation='softmax'))

sgd = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
model.compile(loss='categorical_crossentropy', optimizer=sgd, metrics=['accuracy'])

model.fit(x_train, y_train, batch_size=32, epochs=1)
score = model.evaluate(x_test, y_test, batch_size=32)

from keras.models import Sequential
from keras.layers import Dense, Dropout
from keras.layers import Embedding
from keras.layers import LSTM

max_features = 1000
x_train = np.random.randint(1, max_features, size=(64, 20))
y_train = np.random.randint(2, size=(64, 1))

model = Sequential()
model.add(Embedding(max_features, output_dim=256))
model.add(LSTM(128))
model.add(Dropout(0.5))
model.add(Dense(1, activation='sigmoid'))

model.compile(loss='binary_crossentropy', optimizer='rmsprop', metrics=['accuracy'])
model.fit(x_train, y_train, batch_size=16, epochs=1)
score = model.evaluate(x_train, y_train, batch_size=16)

print("SEED000_CNN_RNN_OK", len(score))
