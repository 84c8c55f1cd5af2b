"""Seed 001 (代码清单7-0 函数式API): the notebook's cells as a script, tensorflow.keras imports
and all (typos ``seg model`` / ``x train`` fixed; epochs 10 -> 2). Notebook cells that only
showed a value (``tf.__version__``) are kept as expression statements and printed."""
import tensorflow as tf
tf.__version__
print("tensorflow", tf.__version__)
from tensorflow.keras import Input, layers
input_tensor = Input(shape=(32, ))
dense = layers.Dense(32, activation='relu')
output_tensor = dense(input_tensor)
output_tensor.shape
print(output_tensor.shape)
from tensorflow.keras import Sequential, Model, layers, Input
seq_model = Sequential()
seq_model.add(layers.Dense(32, activation='relu', input_shape=(64, )))
seq_model.add(layers.Dense(32, activation='relu'))
seq_model.add(layers.Dense(10, activation='softmax'))
seq_model.summary()

input_tensor = Input(shape=(64, ))
x = layers.Dense(32, activation='relu')(input_tensor)
x = layers.Dense(32, activation='relu')(x)
output_tensor = layers.Dense(10, activation='softmax')(x)
model = Model(input_tensor, output_tensor)
model.summary()

model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
import numpy as np
x_train = np.random.random((1000,64))
y_train = np.random.random((1000,10))
model.fit(x_train, y_train, epochs=2, batch_size=128)

print("SEED001_OK", seq_model.count_params(), model.count_params())
