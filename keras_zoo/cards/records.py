"""The record types of the model cards: frozen dataclasses of plain data (standard library only).

A :class:`ModelCard` holds every fact about one zoo model; each of its :class:`WeightSource` names an original
file (:class:`FileSpec`), what the network expects of its input (:class:`InputSpec`), how the file's layers map
onto the builder's (:class:`PortRules`), its class list (a :class:`LabelSet` id) and what its publisher
reported. Records are immutable all the way down: lists given to them become tuples and dicts read-only
mappings. ``to_dict()`` gives any record as plain dicts and lists (for JSON).
"""

import dataclasses
import types

CHECKSUMS = ("sha256", "sha1", "md5")
WEIGHTS_FILE_HINT = "a path to a .caffemodel, .mat, .weights.h5 or .keras file"


def _plain(value):
    """``value`` as dicts, lists and scalars."""
    if dataclasses.is_dataclass(value):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, (dict, types.MappingProxyType)):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _Record:
    """Freezes the record's lists and dicts; ``to_dict()``."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, dict):
                object.__setattr__(self, field.name, types.MappingProxyType(dict(value)))
            elif isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))

    def to_dict(self):
        """The record as plain dicts, lists and scalars."""
        return _plain(self)


@dataclasses.dataclass(frozen=True)
class FileSpec(_Record):
    """An original file: its name (also its name in a mirror), where it lives (None: no direct download) and
    the published checksums, each a tuple of accepted values (empty: none published)."""

    filename: str
    url: str | None = None
    md5: tuple = ()
    sha1: tuple = ()
    sha256: tuple = ()

    def checksums(self):
        """``{kind: (accepted values, lower case)}`` of the published checksums, strongest first."""
        return {kind: tuple(value.lower() for value in getattr(self, kind)) for kind in CHECKSUMS
                if getattr(self, kind)}


@dataclasses.dataclass(frozen=True)
class MeanRef(_Record):
    """The mean image file ``MEANS[id]`` (see :mod:`keras_zoo.cards.aux_files`)."""

    id: str


@dataclasses.dataclass(frozen=True)
class InputSpec(_Record):
    """What a network expects of its input.

    ``channel_order`` 'BGR' | 'RGB'; ``mean``: a per-channel tuple in the network's channel order, a
    :class:`MeanRef` (a mean image), ``'meta'`` (the ``meta.normalization.averageImage`` of the .mat itself) or
    None; ``y = (x - mean) * scale``. Evaluation: ``resize`` the shorter side to an int, or warp to an (H, W),
    or None: warp to ``input_size``; then ``crop`` 'center' (to ``input_size``) or 'none'; ``interpolation``
    'bilinear' | 'bicubic' | 'nearest'.
    """

    channel_order: str = "RGB"
    mean: object = None
    scale: float = 1.0
    input_size: tuple = (224, 224)
    resize: object = 256
    crop: str = "center"
    interpolation: str = "bilinear"


@dataclasses.dataclass(frozen=True)
class PortRules(_Record):
    """How a file's layers map onto the builder's (see :func:`keras_zoo.porting.adapt_graph`).

    ``rename``: file layer -> builder layer, where they differ. ``unused``: file layers the builder has no
    counterpart for (not loaded, e.g. auxiliary classifiers). ``batchnorm_scale``: (batch-norm prefix, scale
    prefix) where the file merges Caffe's BatchNorm + Scale into one batch norm (its gamma/beta go to the
    builder's Scale layer named with the second prefix), else None. ``bias_moves``: file layer -> file layer,
    a bias the builder's layer lacks added to the bias of the layer whose output is summed with it (exact).
    ``missing_layers``: builder layer -> why the file's network lacks it; built for this source, the builder
    leaves the layer out, and a model that has it refuses the file.
    """

    rename: dict = dataclasses.field(default_factory=dict)
    unused: tuple = ()
    batchnorm_scale: tuple | None = None
    bias_moves: dict = dataclasses.field(default_factory=dict)
    missing_layers: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class WeightSource(_Record):
    """One original weights file of a model.

    ``name`` 'caffe', 'matconvnet', 'matconvnet-trained', 'tvg'...; ``format`` 'caffemodel' | 'mat';
    ``classes`` a label-set id (:data:`keras_zoo.cards.LABEL_SETS`); ``default``: the one source
    ``weights='imagenet'`` means; ``metrics``: what its publisher reported (top-1/top-5 error %, images/s,
    mean IoU...); ``notes``: what a user must know about the file.
    """

    name: str
    file: FileSpec
    format: str
    input: InputSpec = dataclasses.field(default_factory=InputSpec)
    classes: str | None = None
    default: bool = False
    port: PortRules = dataclasses.field(default_factory=PortRules)
    metrics: dict = dataclasses.field(default_factory=dict)
    notes: str = ""


@dataclasses.dataclass(frozen=True)
class ModelCard(_Record):
    """One zoo model: ``name`` is its builder's name (``'VGG16'``); ``aliases`` (lower case) also find it and
    always begin with the lower-case name; ``task`` 'classification' | 'segmentation' | 'face'; ``paper``,
    ``citation`` (default: the paper), ``license`` of the weights; ``weights``: its weight sources."""

    name: str
    aliases: tuple = ()
    task: str = "classification"
    paper: str = ""
    citation: str = ""
    license: str = ""
    weights: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        if self.aliases[:1] != (self.name.lower(),):
            object.__setattr__(self, "aliases", (self.name.lower(), *self.aliases))
        if not self.citation:
            object.__setattr__(self, "citation", self.paper)

    @property
    def metrics(self):
        """``{source name: metrics}`` of the sources that report some."""
        return {source.name: source.metrics for source in self.weights if source.metrics}

    def source(self, weights="imagenet"):
        """The weight source ``weights`` names: 'imagenet' (the default one) or a source name; ValueError
        listing the sources otherwise."""
        for source in self.weights:
            if source.name == weights or (weights == "imagenet" and source.default):
                return source
        names = ", ".join(["imagenet", *(source.name for source in self.weights)])
        raise ValueError(f"{self.name}: no weight source {weights!r} (sources: {names}; or {WEIGHTS_FILE_HINT})")

    def to_dict(self):
        return {**_plain(self), "metrics": _plain(self.metrics)}


@dataclasses.dataclass(frozen=True)
class LabelSet(_Record):
    """The class names of a weight source's outputs, in its order. ``format``: 'synset_words' ("wnid
    description" lines), 'lines' (one name a line) or 'indexed' ("index name" lines)."""

    id: str
    file: FileSpec
    format: str
    count: int
    notes: str = ""


@dataclasses.dataclass(frozen=True)
class MeanFile(_Record):
    """A mean image a weight source subtracts; ``format`` 'binaryproto'."""

    id: str
    file: FileSpec
    format: str
    notes: str = ""
