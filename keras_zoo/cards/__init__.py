"""The model cards: one place for every fact about the zoo's models and their original files.

Typed, immutable records (:mod:`keras_zoo.cards.records`) of plain data, one module per model family, plus the
label sets and mean images (:mod:`keras_zoo.cards.aux_files`). Nothing here imports more than the standard
library, so listing the zoo needs no Keras.

    >>> card = get_card("resnet-50")
    >>> card.name, card.source().file.filename, card.source("caffe").input.mean
"""

import difflib

from keras_zoo.cards import alexnet, fcn, googlenet, resnet, vgg, vgg_cnn
from keras_zoo.cards.aux_files import LABEL_SETS, MEANS
from keras_zoo.cards.records import (FileSpec, InputSpec, LabelSet, MeanFile, MeanRef, ModelCard, PortRules,
                                     WeightSource)

CARDS = (
    vgg.VGG16_CARD, vgg.VGG19_CARD, vgg_cnn.VGGF_CARD, vgg_cnn.VGGM_CARD, vgg_cnn.VGGS_CARD, vgg_cnn.VGGM128_CARD,
    vgg_cnn.VGGM1024_CARD, vgg_cnn.VGGM2048_CARD, vgg.VGGFACE_CARD, alexnet.ALEXNET_CARD, alexnet.CAFFENET_CARD,
    alexnet.RCNN_CARD, googlenet.GOOGLENET_CARD, resnet.RESNET50_CARD, resnet.RESNET101_CARD,
    resnet.RESNET152_CARD, fcn.FCN32S_CARD, fcn.FCN16S_CARD, fcn.FCN8S_CARD,
)
_BY_NAME = {key.lower(): card for card in CARDS for key in (card.name, *card.aliases)}


def list_models():
    """One card per model of the zoo, in the zoo's order (the cards are immutable)."""
    return CARDS


def get_card(name_or_alias):
    """The card of a model by name or alias, case-insensitive; ValueError naming close ones otherwise."""
    card = _BY_NAME.get(str(name_or_alias).lower())
    if card is None:
        close = difflib.get_close_matches(str(name_or_alias).lower(), list(_BY_NAME), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name_or_alias!r}{hint} (models: {', '.join(c.name for c in CARDS)})")
    return card


__all__ = ["CARDS", "LABEL_SETS", "MEANS", "list_models", "get_card", "FileSpec", "InputSpec", "LabelSet",
           "MeanFile", "MeanRef", "ModelCard", "PortRules", "WeightSource"]
