"""Seed 004 (Keras学习之:如何写多模型神经网络): three CNNs averaged by ``Lambda(mean,
output_shape=(10,))``, on random (28, 28, 1) data (``Conv2D`` and ``import keras`` added to the
seed's imports; 1000s of MNIST images -> 64 random ones; epochs 10 -> 1)."""
import numpy as np
import keras
from keras.layers import Input,MaxPooling2D,Lambda,Dropout,Flatten,Dense,Activation,Conv2D
from keras.models import Model,Sequential

x_train = np.random.random((64, 28, 28, 1))
y_train = keras.utils.to_categorical(np.random.randint(10, size=(64, 1)), num_classes=10)

def cnn(input_shape,classes):
    model = Sequential()
    model.add(Conv2D(input_shape=input_shape,filters=25,kernel_size=(3,3),padding='same',activation='relu'))
    model.add(MaxPooling2D())
    model.add(Dropout(rate=0.3,name='student_feature1'))
    model.add(Flatten())
    model.add(Dense(32,activation='relu',name='student_feature2'))
    model.add((Dense(classes,activation='softmax')))
    return model

cnn1 = cnn((28,28,1),10)
cnn2 = cnn((28,28,1),10)
cnn3 = cnn((28,28,1),10)

def mean(data):
    return (data[0] + data[1] + data[2])/3

def multi_model_net():
    inputs = Input((28,28,1))

    result1 = cnn1(inputs)
    result2 = cnn2(inputs)
    result3 = cnn3(inputs)

    outputs = Lambda(mean,output_shape=(10,))([result1,result2,result3])
    model = Model(inputs,outputs)
    return model


mod = multi_model_net()
print(mod.summary())

cnn1.compile(loss=keras.losses.categorical_crossentropy,optimizer=keras.optimizers.Adam(0.001),metrics=['accuracy'])
history = cnn1.fit(x_train,y_train,batch_size=64,epochs=1,shuffle=True)

def mean(data):
    return (data[0] + data[1])/2

def multi_model_net():
    inputs = Input((28,28,1))

    result1 = cnn1(inputs)
    result2 = cnn2(inputs)
    result3 = cnn3(inputs)

    outputs = Lambda(mean,output_shape=(10,))([result1,result2])
    model = Model(inputs,[outputs,result3])
    return model

mod = multi_model_net()
print(mod.summary())
mod.compile(loss=keras.losses.categorical_crossentropy,optimizer=keras.optimizers.Adam(0.001),metrics=['accuracy'])
history = mod.fit(x_train,[y_train,y_train],batch_size=64,epochs=1,shuffle=True)

def mean(data):
    return (data[0] + data[1] + data[2])/3

def multi_model_net():
    input1 = Input((28,28,1))
    input2 = Input((28,28,1))

    result1 = cnn1(input1)
    result2 = cnn2(input1)
    result3 = cnn3(input2)

    outputs = Lambda(mean,output_shape=(10,))([result1,result2,result3])
    model = Model([input1,input2],outputs)
    return model

mod = multi_model_net()
print(mod.summary())
mod.compile(loss=keras.losses.categorical_crossentropy,optimizer=keras.optimizers.Adam(0.001),metrics=['accuracy'])
history = mod.fit([x_train,x_train],y_train,batch_size=64,epochs=1,shuffle=True)

print("SEED004_OK", len(mod.layers))
