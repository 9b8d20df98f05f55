"""A small writer of neutral :class:`~converters.graph.Graph` objects with Caffe's layer semantics.

The zoo architectures are written with it as plain Python (loops and tables), node by node as the original
deploy prototxts define them, so that layer and blob names equal what the Caffe reader yields. The graphs
carry no weights: the builder creates the variables and the weights are loaded by layer name.
"""

from converters.graph import Graph, Node, pair


class GraphWriter:
    """Appends nodes to a graph over named blobs; each method returns the name of the blob it wrote."""

    def __init__(self, name, input_name="data", input_shape=(3, None, None)):
        self.graph = Graph(name=name, inputs={input_name: tuple(input_shape)}, nodes=[], outputs=[])

    def add(self, name, op, inputs, top=None, source_type="", **attrs):
        """Append one node writing ``top`` (default: a blob named like the layer)."""
        top = top or name
        self.graph.nodes.append(Node(name=name, op=op, inputs=list(inputs), outputs=[top], attrs=attrs,
                                     source_type=source_type))
        return top

    def conv(self, name, bottom, filters, kernel, stride=1, pad=0, groups=1, use_bias=True, top=None):
        """Caffe Convolution: symmetric padding, no dilation."""
        pad_h, pad_w = pair(pad)
        return self.add(name, "conv", [bottom], top, "Convolution", filters=filters, kernel=pair(kernel),
                        strides=pair(stride), pads=(pad_h, pad_h, pad_w, pad_w), dilation=(1, 1),
                        groups=groups, use_bias=use_bias)

    def deconv(self, name, bottom, filters, kernel, stride, use_bias=False):
        """Caffe Deconvolution without padding (the FCN upsampling layers)."""
        return self.add(name, "deconv", [bottom], None, "Deconvolution", filters=filters, kernel=pair(kernel),
                        strides=pair(stride), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                        use_bias=use_bias)

    def pool(self, name, bottom, method, kernel, stride, pad=0):
        """Caffe Pooling: ceil rounding, average over the padded window."""
        pad_h, pad_w = pair(pad)
        return self.add(name, "pool", [bottom], None, "Pooling", method=method, kernel=pair(kernel),
                        strides=pair(stride), pads=(pad_h, pad_h, pad_w, pad_w), rounding="ceil",
                        avg_divisor="padded", **{"global": False})

    def global_pool(self, name, bottom, method):
        """Pooling over the whole feature map (Caffe's global_pooling)."""
        return self.add(name, "pool", [bottom], None, "Pooling", method=method, kernel=(1, 1),
                        strides=(1, 1), pads=(0, 0, 0, 0), rounding="floor", avg_divisor="padded",
                        **{"global": True})

    def lrn(self, name, bottom, size, alpha, beta, k=1.0):
        """Caffe LRN across channels; ``alpha`` as written in the prototxt (per window)."""
        return self.add(name, "lrn", [bottom], None, "LRN", region="across", size=size, alpha=alpha / size,
                        beta=beta, k=k)

    def dense(self, name, bottom, units):
        """Caffe InnerProduct over everything after the batch axis."""
        return self.add(name, "dense", [bottom], None, "InnerProduct", units=units, use_bias=True, axis=1)

    def relu(self, name, blob):
        """In-place ReLU."""
        return self.add(name, "relu", [blob], blob, "ReLU", negative_slope=0.0)

    def dropout(self, name, blob, rate):
        """In-place Dropout (identity at inference)."""
        return self.add(name, "dropout", [blob], blob, "Dropout", rate=rate)

    def softmax(self, name, bottom):
        """Softmax over channels."""
        return self.add(name, "softmax", [bottom], None, "Softmax", axis=1)

    def batchnorm_scale(self, bn_name, scale_name, blob, epsilon=1e-5):
        """In-place BatchNorm (global statistics) followed by an in-place Scale with bias."""
        self.add(bn_name, "batchnorm", [blob], blob, "BatchNorm", stat="variance", epsilon=epsilon,
                 use_global_stats=True)
        return self.add(scale_name, "scale", [blob], blob, "Scale", axis=1, num_axes=1, use_bias=True)

    def eltwise_sum(self, name, bottoms, top=None):
        return self.add(name, "eltwise", bottoms, top, "Eltwise", operation="sum", coeffs=[])

    def concat(self, name, bottoms, top=None):
        return self.add(name, "concat", bottoms, top, "Concat", axis=1)

    def crop(self, name, bottom, reference, offset):
        """Caffe Crop from axis 2 (both spatial axes) by ``offset``."""
        return self.add(name, "crop", [bottom, reference], None, "Crop", axis=2, offsets=[offset, offset])

    def flatten(self, name, bottom):
        return self.add(name, "flatten", [bottom], None, "Flatten", axis=1, end_axis=-1)

    def finish(self, *outputs):
        """The graph, with ``outputs`` as its output blobs."""
        self.graph.outputs = list(outputs)
        return self.graph
