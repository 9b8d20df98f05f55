"""One way from what a command is given to a model: a registry name or a model file, plus weights.

``resolve(spec, weights)`` returns a :class:`Resolved`: the Keras model and what is known of it (its card, the
weight source describing its input and classes, its input size, whether its weights are untrained).

``spec`` is a registry name or alias (``vgg16``, ``resnet-50``...) or a model file: ``.keras`` (loaded),
``.prototxt`` (converted; ``weights`` its ``.caffemodel``), ``.caffemodel`` (the net embedded in it) or
MatConvNet ``.mat``. ``weights`` for a registry name is what the builders take: ``'imagenet'`` (the card's
default source), a source name, a weights file, or None / ``'none'`` (untrained); a model file other than a
``.prototxt`` carries its own weights, so there it may only be None, ``'none'`` or ``'imagenet'``.
"""

import dataclasses
import logging
import pathlib

import keras

from converters.errors import ConversionError
from keras_zoo import cards, labels
from keras_zoo.convert import from_caffe, from_matconvnet
from keras_zoo.downloads import WeightsUnavailable
from keras_zoo.models import get_model
from keras_zoo.models.architecture import resolve_weights
from keras_zoo.weights import load_keras_file, untrained as asks_untrained

log = logging.getLogger(__name__)

MODEL_FILE_SUFFIXES = (".keras", ".prototxt", ".caffemodel", ".mat")
DEFAULT_INPUT_SIZE = (224, 224)  # ImageNet's: for models whose input size nothing fixes
# what every table, caption and report made from untrained weights says
UNTRAINED_NOTE = "UNTRAINED weights (random): the classes and scores mean nothing"


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A model and what is known of it.

    ``name``: the card's name, or the model file's stem. ``card`` / ``source``: the model card and the weight
    source describing the model's input and classes (None for a model file). ``input_size``: (H, W) of its
    image input (see :func:`input_size`). ``untrained``: its weights are not trained ones (asked for, or none
    could be had: then ``unavailable`` says why).
    """

    model: keras.Model
    name: str
    card: cards.ModelCard | None = None
    source: cards.WeightSource | None = None
    input_size: tuple = DEFAULT_INPUT_SIZE
    untrained: bool = False
    unavailable: str | None = None

    @property
    def weights_note(self):
        """:data:`UNTRAINED_NOTE` where the weights are untrained, else None."""
        return UNTRAINED_NOTE if self.untrained else None

    @property
    def classes(self):
        """The label-set id of the model's outputs, or None."""
        return self.source.classes if self.source else None

    def label_names(self):
        """The class names of the model's outputs in order, or None where it has no label set or its file
        cannot be had (logged)."""
        if not self.classes:
            return None
        try:
            return labels.get_labels(self.classes)
        except ConversionError as error:
            log.warning("labels %s unavailable (%s); classes are shown by number", self.classes, error)
            return None


def input_size(model, requested=None, source=None):
    """(H, W) of the model's image input: fixed by the model, else ``requested``, else the weight source's,
    else :data:`DEFAULT_INPUT_SIZE`."""
    shape = model.inputs[0].shape
    if shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    if requested:
        return tuple(requested[-2:])
    return tuple(source.input.input_size) if source else DEFAULT_INPUT_SIZE


def resolve(spec, weights="imagenet", *, size=None, untrained_fallback=False):
    """The :class:`Resolved` model of ``spec`` with ``weights`` (see the module notes).

    ``size`` ((H, W), or (C, H, W) for a converted file) sizes a model whose input size is free or asked
    for; a ``.keras`` file keeps its own (``size`` then only fills :attr:`Resolved.input_size`). With
    ``untrained_fallback``, a zoo model whose weights cannot be had (offline, nothing cached) is built
    untrained instead of raising :class:`~keras_zoo.downloads.WeightsUnavailable`.
    """
    if asks_untrained(weights):
        weights = None
    path = pathlib.Path(spec)
    if path.suffix.lower() in MODEL_FILE_SUFFIXES:
        return _from_file(path, weights, size)
    card = cards.get_card(spec)
    source, _ = resolve_weights(card, weights)  # the source the builder describes the model's input by
    shape = {} if size is None else {"input_shape": (*size[-2:], size[0] if len(size) == 3 else 3)}
    unavailable = None
    try:
        model = get_model(card.name, weights=weights, **shape)
    except WeightsUnavailable as error:
        if not untrained_fallback:
            raise
        unavailable = str(error)
        model = get_model(card.name, weights=None, **shape)
    return Resolved(model, card.name, card, source, input_size(model, size, source),
                    untrained=weights is None or unavailable is not None, unavailable=unavailable)


def _from_file(path, weights, size):
    """A model file: loaded (``.keras``) or converted; ``weights`` a ``.prototxt``'s caffemodel."""
    if not path.is_file():
        raise ConversionError("no such model file", path=path)
    suffix = path.suffix.lower()
    if suffix == ".prototxt":
        if weights == "imagenet":
            raise ValueError(f"{path}: a .prototxt carries no weights: give its .caffemodel as the weights "
                             "(or none, for untrained weights)")
        model = from_caffe(path, weights, input_shape=size)
        return Resolved(model, path.stem, input_size=input_size(model, size), untrained=weights is None)
    if weights not in (None, "imagenet"):
        raise ValueError(f"{path}: weights {weights!r} do not apply to a {suffix} file (its weights are inside)")
    if suffix == ".keras":
        model = load_keras_file(path)
    elif suffix == ".mat":
        model = from_matconvnet(path, input_shape=size)
    else:
        model = from_caffe(None, path, input_shape=size)
    return Resolved(model, path.stem, input_size=input_size(model, size))
