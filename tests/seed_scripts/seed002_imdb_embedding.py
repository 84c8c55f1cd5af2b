"""Seed 002 (词向量实践 - 基于Keras): IMDB-style sequences padded with ``keras.preprocessing``,
an Embedding + Flatten + Dense classifier (``metrics=['acc']``, ``validation_split``) and an
Embedding + SimpleRNN one. kaffe's ``imdb.load_data`` serves local movie-review sentences
(kaffe never downloads). Shrunk: 512 samples, epochs 10 -> 1. The seed's own
``plot_history(history, 'emb_dense')`` helper is not shown in the seed; the curves are drawn
here with matplotlib as it would have."""
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt

from keras.datasets import imdb
from keras import preprocessing
max_features = 10000
maxlen = 20
batch_size = 32
(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
x_train = preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
x_test = preprocessing.sequence.pad_sequences(x_test, maxlen=maxlen)
print(x_train[0])
x_train, y_train = x_train[:512], y_train[:512]

from keras.models import Sequential
from keras.layers import Embedding, Flatten, Dense
emb_dense = Sequential()
emb_dense.add(Embedding(10000, 8, input_length=maxlen))
emb_dense.add(Flatten())
emb_dense.add(Dense(1, activation='sigmoid'))
emb_dense.compile(optimizer='rmsprop', loss='binary_crossentropy',
metrics=['acc'])
emb_dense.summary()
print('training emb_dense')
history = emb_dense.fit(x_train, y_train,
                        epochs=1,
                        batch_size=batch_size,
                        validation_split=0.2)
plt.plot(history.history['acc'], 'bo', label='Training acc')
plt.plot(history.history['val_acc'], 'b', label='Validation acc')

from keras.layers import SimpleRNN

emb_rnn = Sequential()
emb_rnn.add(Embedding(max_features, 32))
emb_rnn.add(SimpleRNN(32))
emb_rnn.add(Dense(1, activation='sigmoid'))
emb_rnn.compile(optimizer='rmsprop', loss='binary_crossentropy',
metrics=['acc'])
print('training emb_rnn')
history = emb_rnn.fit(x_train, y_train,
                      epochs=1,
                      batch_size=128,
                      validation_split=0.2)

print("SEED002_OK", sorted(history.history))
