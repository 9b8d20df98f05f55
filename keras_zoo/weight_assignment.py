"""Giving a Graph's weights to the Keras layers of their names: layouts, checks, and lean assignment.

Weights are copied from a memory-mapped file's pages as they lie and transposed by the backend; the pages are
released once copied. :class:`InitialWeights` gives the variables of a model being built their values at creation
(no zeros first; each weight once as it lies in the file, then once transposed: the variable's value), refusing
what cannot fit in memory (:class:`MemoryBudget`) before it is allocated; :func:`port_weights` assigns the weights of
a graph to an existing model, large ones in slices along their last axis (:data:`CHUNK_BYTES` each), so that it
holds no second full-size copy.
"""

import logging
import math
import mmap
import os

import keras
import numpy as np
from keras import ops

from keras_zoo.layer_makers import CONFIGURATION_CHECKS, affine_nchw_shape, keras_name, nchw_shape, node_error

log = logging.getLogger(__name__)

# Weights larger than this are assigned in slices along their last axis, to keep conversion memory lean.
CHUNK_BYTES = 64 << 20
# Transposed arrays from this size on reach TensorFlow through an aligned copy of theirs (:class:`_Staging`).
ALIGNED_COPY_BYTES = 1 << 20


def _unchanged(tensor):
    return tensor


def _dense_rows_order(layer):
    """(H, W, C) of the NHWC tensor flattened before ``layer`` (a Dense after a Keras Flatten), else None."""
    try:
        source = layer.input._keras_history.operation
    except (AttributeError, ValueError):
        return None
    if isinstance(source, keras.layers.Flatten):
        shape = source.input.shape
        if len(shape) >= 3:
            return tuple(shape[1:])
    return None


def dense_kernel_transform(kernel_shape, spatial_shape):
    """The transform of a dense kernel (a numpy array or view) into a view with its rows in Keras's flatten order,
    for an input flattened from NHWC ``spatial_shape`` (H, W, C...) (None: a flat input); its slices along ``out``
    are reshaped to the kernel's 2-D shape as they are copied, so the rows' permutation costs no extra pass.

    2-D (in, out) kernels have rows in (C, H, W) order: the view is (H, W, C..., out); a 4-D (kh, kw, C, out)
    whole-input filter bank is in (H, W, C) order already. ValueError where such a bank does not cover the input.
    """
    if len(kernel_shape) == 4:
        bank = tuple(kernel_shape[:3])
        if bank != (spatial_shape or (1, 1, bank[2])):
            where = f"the input of shape {spatial_shape} (H, W, C)" if spatial_shape else "a flat input"
            raise ValueError(f"the dense filter bank {tuple(kernel_shape)} (kh, kw, C, out) does not cover {where}")
        return _unchanged
    if spatial_shape is None:
        return _unchanged
    channels_first = (spatial_shape[-1], *spatial_shape[:-1])
    order = (*range(1, len(channels_first)), 0, len(channels_first))

    def transform(array):
        array = np.asarray(array)
        return array.reshape(*channels_first, array.shape[-1]).transpose(order)  # splits an axis: a view
    return transform


def _layer_arrays(node, layer):
    """``{variable name: (array, transform of the array into a view of the variable's layout)}`` for one node's
    weights."""
    weights = dict(node.weights)
    transforms = {}
    if node.op == "dense" and isinstance(layer, keras.layers.Dense):
        transforms["kernel"] = dense_kernel_transform(np.shape(weights.get("kernel")), _dense_rows_order(layer))
    elif node.op == "batchnorm" and not node.attrs.get("use_global_stats", True):
        for statistic in ("mean", "variance", "std"):
            weights.pop(statistic, None)  # Caffe keeps them, but batch statistics are used
    elif node.op == "parameter":  # (C, H, W...) -> channels-last
        weights = {key: np.moveaxis(np.asarray(value), 0, -1) if np.ndim(value) > 1 else value
                   for key, value in weights.items()}
    elif node.op in ("scale", "bias"):
        shape = affine_nchw_shape(node, nchw_shape(layer.input))
        for key, value in weights.items():
            value = np.asarray(value).reshape(shape)
            weights[key] = np.moveaxis(value, 0, -1) if value.ndim > 1 else value
    return {key: (value, transforms.get(key, _unchanged)) for key, value in weights.items()}


def _as_tensor(array, staging=None):
    """A float32 backend tensor of ``array``, which may be a transposed (memory-mapped) view.

    The view's contiguous base is copied as it lies (on TensorFlow into ``staging``, a :class:`_Staging`) and
    transposed by the backend (multithreaded), much faster than numpy's strided copy of a large transposed array.
    """
    array = np.asarray(array)
    if array.ndim < 2 or array.flags.c_contiguous:
        return ops.convert_to_tensor(array, dtype="float32")
    order = tuple(int(axis) for axis in np.argsort(array.strides, kind="stable")[::-1])
    contiguous = array.transpose(order)
    if not contiguous.flags.c_contiguous:
        return ops.convert_to_tensor(np.ascontiguousarray(array), dtype="float32")
    inverse = tuple(int(a) for a in np.argsort(order))
    if keras.backend.backend() != "tensorflow" or contiguous.nbytes < ALIGNED_COPY_BYTES:
        return ops.transpose(ops.convert_to_tensor(contiguous, dtype="float32"), inverse)
    return ops.transpose((staging or _Staging()).tensor(contiguous), inverse)


class _Staging:
    """A 64-byte aligned float32 buffer that TensorFlow reads a contiguous array from (DLPack, no copy of its own),
    reused for the slices of one weight: TensorFlow's own conversion copies twice (to numpy, then aligned), and
    fresh memory costs more than a copy. A tensor of it must be consumed (transposed) before the next."""

    def __init__(self):
        self.memory = None

    def tensor(self, array):
        import tensorflow as tf  # only with the TensorFlow backend (_as_tensor)

        if self.memory is None or self.memory.size < array.size + 16:
            self.memory = np.empty(array.size + 16, np.float32)
        skip = (-self.memory.ctypes.data % 64) // 4
        aligned = self.memory[skip:skip + array.size].reshape(array.shape)
        np.copyto(aligned, array, casting="same_kind")
        return tf.experimental.dlpack.from_dlpack(aligned.__dlpack__())


class NonFinite:
    """NaN and Inf counts per layer of the weights given to one model (counted on the slices as they are copied,
    no extra pass over a file); :meth:`warn` logs one warning naming every layer that had any."""

    def __init__(self, graph):
        self.graph = graph
        self.counts = {}  # layer name -> [NaN, Inf]

    def count(self, layer, block):
        if bool(ops.isfinite(ops.sum(block))):  # every value finite (a NaN or Inf makes the sum non-finite)
            return
        nan, inf = int(ops.sum(ops.isnan(block))), int(ops.sum(ops.isinf(block)))
        if nan or inf:
            counts = self.counts.setdefault(layer, [0, 0])
            counts[0] += nan
            counts[1] += inf

    def warn(self):
        if not self.counts:
            return
        layers = "; ".join(f"{layer}: " + ", ".join(f"{n} {kind}" for n, kind in zip(counts, ("NaN", "Inf")) if n)
                           for layer, counts in self.counts.items())
        where = self.graph.meta.get("caffemodel") or self.graph.source or self.graph.name  # the weights' file
        log.warning("%s: non-finite weights in %d layer(s) (its outputs may be NaN or Inf): %s", where,
                    len(self.counts), layers)


def _blocks(array, transform, shape, tally=None, chunk_bytes=CHUNK_BYTES):
    """``(start, stop, block)``: ``transform(array)`` shaped as ``shape``, in slices along the last axis of about
    ``chunk_bytes`` each (None: one); then the file pages behind a memory-mapped ``array`` are released.
    ``tally``: ``(NonFinite, layer name)`` counting NaN and Inf."""
    columns = shape[-1] if shape else 1
    step = columns if chunk_bytes is None else max(1, columns * chunk_bytes // max(int(np.prod(shape)) * 4, 1))
    view, staging = transform(array), _Staging()
    for start in range(0, columns, step):
        stop = min(start + step, columns)
        block = _as_tensor(view[..., start:stop] if shape else view, staging)
        if tally is not None:
            tally[0].count(tally[1], block)
        yield start, stop, ops.reshape(block, (*shape[:-1], stop - start) if shape else ())
    _release_pages(array)


def _materialise(array, transform, shape, tally=None):
    """``transform(array)`` as a float32 numpy array of ``shape``, built slice by slice."""
    value = np.empty(shape, np.float32)
    for start, stop, block in _blocks(array, transform, shape, tally):
        if shape:
            value[..., start:stop] = ops.convert_to_numpy(block)
        else:
            value[...] = ops.convert_to_numpy(block)
    return value


def _initial_value(array, transform, shape, dtype, tally=None):
    """``transform(array)`` as one backend tensor of ``shape``, which the variable being created takes as its value:
    the file's bytes copied once as they lie, then transposed once (slices joined would cost one more pass)."""
    ((_, _, value),) = _blocks(array, transform, shape, tally, chunk_bytes=None)
    return value if keras.backend.standardize_dtype(dtype or "float32") == "float32" else ops.cast(value, dtype)


def _assign(variable, array, transform, tally=None):
    """Assign ``transform(array)`` to ``variable``; on TensorFlow, large ones slice by slice in place."""
    shape = tuple(variable.shape)
    if int(np.prod(shape)) * 4 <= CHUNK_BYTES or len(shape) < 2 or keras.backend.backend() != "tensorflow":
        variable.assign(_materialise(array, transform, shape, tally))
        return
    import tensorflow as tf  # only with the TensorFlow backend (the others need no TensorFlow)

    handle = variable.value.handle
    for start, stop, block in _blocks(array, transform, shape, tally):
        tf.raw_ops.ResourceStridedSliceAssign(ref=handle, begin=[0] * (len(shape) - 1) + [start],
                                              end=[*shape[:-1], stop], strides=[1] * len(shape), value=block)


def _release_pages(array):
    """Let the OS drop the file pages behind a memory-mapped weight once it has been copied (lower RSS)."""
    base = array
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)
    if base is not None and hasattr(base._mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        base._mmap.madvise(mmap.MADV_DONTNEED)


def _check_shape(graph, node, key, array, expected, layer_name):
    """ConversionError unless ``array`` fits a variable of shape ``expected`` (exactly, for kernels)."""
    shape = compared = tuple(np.shape(array))
    if node.op == "dense" and len(shape) == 4 and len(expected) == 2:
        compared = (int(np.prod(shape[:-1])), shape[-1])  # a whole-input filter bank; its H, W are checked apart
    exact = node.op in ("conv", "deconv", "dense")
    if (compared != tuple(expected)) if exact else (int(np.prod(shape)) != int(np.prod(expected))):
        raise node_error(graph, node, f"weight '{key}' has shape {shape}, the Keras layer '{layer_name}' "
                                      f"expects {tuple(expected)}")


def _meminfo_bytes(field, path="/proc/meminfo"):
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room():
    """Bytes the cgroup (v2) still lets this process have, or None without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        with open("/sys/fs/cgroup/memory.current") as handle:
            used = int(handle.read().strip())
        return None if limit == "max" else max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory():
    """Bytes this process can still allocate: ``MemAvailable`` of /proc/meminfo (the cgroup's room if less);
    where that is unreadable, the free physical pages (else all of them); None when nothing says."""
    available = _meminfo_bytes("MemAvailable")
    if available is None:
        for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
            try:
                available = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
                break
            except (AttributeError, ValueError, OSError):
                continue
    room = _cgroup_room()
    if room is not None:
        available = room if available is None else min(available, room)
    return available if available and available > 0 else None


def _size(nbytes):
    """``'2,304,000,000,000 bytes (2.1 TiB)'``."""
    unit = max(0, min(int(math.log(max(nbytes, 1), 1024)), 4))
    return f"{nbytes:,} bytes ({nbytes / 1024 ** unit:.1f} {('B', 'KiB', 'MiB', 'GiB', 'TiB')[unit]})"


class MemoryBudget:
    """What a model being built from ``graph`` may take: its parameters, and one sample's activations at one
    layer (the layer's inputs and outputs), against ``available`` bytes (None: :func:`available_memory`, no limit
    where that is unknown). Each check runs before the memory is allocated and raises :class:`ConversionError`
    naming the layer, the count and the bytes needed."""

    def __init__(self, graph, available=None):
        self.graph = graph
        self.available = available_memory() if available is None else available
        self.parameters = 0  # bytes of the variables created so far

    def _refuse(self, node, what, nbytes, needed, rest):
        raise node_error(self.graph, node, f"{what} need {_size(nbytes)}; {rest} the model needs {_size(needed)}, "
                                           f"more than the {_size(self.available)} of memory available")

    def reserve(self, node, key, shape, dtype="float32"):
        """Count the variable ``key`` of ``shape`` of ``node``'s layer, or refuse it if it cannot fit."""
        count = math.prod(int(size) for size in shape)
        dtype = keras.backend.standardize_dtype(dtype or "float32")
        nbytes = count * np.dtype(dtype).itemsize
        needed = self.parameters + nbytes
        if self.available is not None and needed > self.available:
            shown = tuple(int(size) for size in shape)
            self._refuse(node, f"the {count:,} parameters of weight '{key}' {shown} ({dtype})", nbytes, needed,
                         "with the parameters before them")
        self.parameters = needed

    def check_activations(self, node, tensors, what="the layer's inputs and outputs"):
        """Refuse ``node`` when one sample's ``tensors`` (``what``: by default its layer's inputs and outputs,
        Keras tensors) and the parameters so far cannot fit; tensors of unknown size are not counted."""
        count = nbytes = 0
        for tensor in {id(tensor): tensor for tensor in tensors}.values():  # in-place layers: counted once
            sizes = tuple(tensor.shape)[1:]
            if any(size is None for size in sizes):
                continue
            values = math.prod(sizes)
            count += values
            nbytes += values * np.dtype(keras.backend.standardize_dtype(tensor.dtype)).itemsize
        if self.available is not None and self.parameters + nbytes > self.available:
            self._refuse(node, f"the {count:,} values of one sample ({what})", nbytes, self.parameters + nbytes,
                         "with the parameters")


class CheckedZeros(keras.initializers.Zeros):
    """Zeros, after the variable's size is checked against the memory budget."""

    def __init__(self, budget=None, node=None, key=None):
        self.budget, self.node, self.key = budget, node, key

    def __call__(self, shape, dtype=None):
        if self.budget is not None:
            self.budget.reserve(self.node, self.key, shape, dtype)
        return super().__call__(shape, dtype)

    def get_config(self):
        return {}


class ConvertedWeight(keras.initializers.Initializer):
    """An initializer giving a variable its converted weight directly: a backend tensor that the variable takes as
    its value (no zeros first, no numpy copy)."""

    def __init__(self, initial_weights, node, key, transform):
        self.initial_weights, self.node, self.key, self.transform = initial_weights, node, key, transform

    def __call__(self, shape, dtype=None):
        array = self.node.weights[self.key]
        _check_shape(self.initial_weights.graph, self.node, self.key, array, shape, keras_name(self.node.name))
        self.initial_weights.budget.reserve(self.node, self.key, shape, dtype)
        self.initial_weights.assigned.add((self.node.name, self.key))
        return _initial_value(array, self.transform, tuple(shape), dtype,
                              (self.initial_weights.nonfinite, self.node.name))


class InitialWeights:
    """The initializers of one model being built from ``graph``: which weights were given at variable creation
    (``assigned``: ``(node name, weight name)`` pairs), and the :class:`MemoryBudget` every variable is
    checked against before it is allocated (``available``: bytes, default the machine's)."""

    def __init__(self, graph, available=None):
        self.graph = graph
        self.assigned = set()
        self.budget = MemoryBudget(graph, available)
        self.nonfinite = NonFinite(graph)
        self._layers = []

    def initializer_for(self, node):
        """``initializer(key, flattened=None)`` for the makers: the node's weight ``key`` as a
        :class:`ConvertedWeight` (zeros where the node has none); ``flattened``: the (H, W, C) shape a dense
        layer's input is flattened from. Both check the variable against the memory budget first."""
        def initializer(key, flattened=None):
            self._layers.append(keras_name(node.name))
            if key not in node.weights:
                return CheckedZeros(self.budget, node, key)
            transform = (dense_kernel_transform(np.shape(node.weights[key]), flattened)
                         if node.op == "dense" and key == "kernel" else _unchanged)
            return ConvertedWeight(self, node, key, transform)
        return initializer

    def detach(self, model):
        """Replace the initializers in the built layers' configs by 'zeros' (they must not be serialised)."""
        layers = {layer.name: layer for layer in model.layers}
        for name in set(self._layers):
            layer = layers.get(name)
            for attribute in ("kernel_initializer", "bias_initializer"):
                if isinstance(getattr(layer, attribute, None), (ConvertedWeight, CheckedZeros)):
                    setattr(layer, attribute, keras.initializers.get("zeros"))


def _check_configuration(graph, node, layer):
    """ConversionError where ``node`` (a convolution or LRN) computes another function than the Keras ``layer``
    it maps to: the file's network differs from the model's (e.g. other LRN constants or pads). A node the file
    does not describe (``attrs['described'] is False``: a weights-only caffemodel) is not checked."""
    make, keys = CONFIGURATION_CHECKS.get(node.op, (None, ()))
    if make is None or node.attrs.get("described") is False:
        return
    expected = make(node, layer.name)
    if type(expected) is not type(layer):
        return  # e.g. a fully connected layer stored as a convolution: its weights' shapes are checked
    ours, theirs = layer.get_config(), expected.get_config()
    differ = [key for key in keys if not (np.allclose(ours[key], theirs[key], rtol=1e-6, atol=0)
                                          if isinstance(ours[key], float) else ours[key] == theirs[key])]
    if differ:
        found = ", ".join(f"{key}={theirs[key]!r}" for key in differ)
        wanted = ", ".join(f"{key}={ours[key]!r}" for key in differ)
        raise node_error(graph, node, f"the file's layer has {found} but the Keras layer '{layer.name}' has "
                                      f"{wanted}: the networks differ")


def port_weights(model, graph, *, rename=None, assigned=(), nonfinite=None):
    """Assign every weight-carrying node of ``graph`` to the layer of ``model`` with its (Keras) name.

    ``rename`` maps graph layer names to model layer names (a dict or a function) where they differ;
    ``assigned``: ``(node name, weight name)`` pairs already given (by :class:`InitialWeights`), left alone.
    Shapes are checked, and so are the convolutions' and LRNs' configurations (pads, strides, LRN constants);
    a mismatch raises :class:`ConversionError` naming the file, the layer and both values. NaN and Inf in the
    weights give one warning naming the layers (``nonfinite``: a :class:`NonFinite` counting on for a caller
    that warns itself). Returns ``model``.
    """
    tally = NonFinite(graph) if nonfinite is None else nonfinite
    layers = {layer.name: layer for layer in model.layers}  # get_layer scans every layer on each call
    for node in graph.nodes:
        if not node.weights and node.op not in CONFIGURATION_CHECKS:
            continue
        target = node.name
        if callable(rename):
            target = rename(node.name)
        elif rename:
            target = rename.get(node.name, node.name)
        layer = layers.get(keras_name(target))
        if not node.weights:
            if layer is not None:
                _check_configuration(graph, node, layer)
            continue
        if layer is None:
            raise node_error(graph, node, f"the Keras model has no layer '{keras_name(target)}' for its weights")
        _check_configuration(graph, node, layer)
        variables = {variable.name: variable for variable in layer.weights}
        try:
            arrays = _layer_arrays(node, layer)
        except ValueError as exc:
            raise node_error(graph, node, f"Keras layer '{layer.name}': {exc}") from None
        for key, (array, transform) in arrays.items():
            if (node.name, key) in assigned:
                continue
            variable = variables.get(key)
            if variable is None:
                raise node_error(graph, node, f"weight '{key}' has no counterpart in Keras layer '{layer.name}' "
                                              f"(it has {sorted(variables)})")
            _check_shape(graph, node, key, array, variable.shape, layer.name)
            _assign(variable, array, transform, (tally, node.name))
        unassigned = sorted(set(variables) - set(arrays))
        if unassigned:
            raise node_error(graph, node, f"no weights for {unassigned} of Keras layer '{layer.name}'")
    if nonfinite is None:
        tally.warn()
    return model
