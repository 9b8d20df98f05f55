"""Custom Keras layers with the exact semantics of Caffe and MatConvNet (keras.ops only, serializable)."""
