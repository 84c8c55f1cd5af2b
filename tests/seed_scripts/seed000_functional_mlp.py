"""Seed 000, chapter 2, "函数式模型": the functional MLP, then the model called on a new Input
(the seed's ``data``/``labels`` are made here; epochs: Keras's default 1)."""
import numpy as np
import keras

data = np.random.random((256, 784))
labels = keras.utils.to_categorical(np.random.randint(10, size=(256, 1)), num_classes=10)

from keras.layers import Input, Dense
from keras.models import Model

inputs = Input(shape=(784,))
x = Dense(64, activation='relu')(inputs)
x = Dense(64, activation='relu')(x)
predictions = Dense(10, activation='softmax')(x)

model = Model(inputs=inputs, outputs=predictions)
model.compile(optimizer='rmsprop',
             loss='categorical_crossentropy',
             metrics=['accuracy'])
model.fit(data, labels)

x = Input(shape=(784,))
# 给一个x，就会复用上面的模型，得到y
y = model(x)

print("SEED000_FUNCTIONAL_OK", y.shape)
