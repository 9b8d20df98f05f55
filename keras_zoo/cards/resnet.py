"""Cards of the deep residual networks ResNet-50/101/152 (MSRA's Caffe releases and MatConvNet's imports)."""

from keras_zoo.cards.records import FileSpec, MeanRef, ModelCard, PortRules, WeightSource
from keras_zoo.cards.sources import ilsvrc, input_spec, matconvnet

PAPER_RESNET = ("Deep Residual Learning for Image Recognition, K. He, X. Zhang, S. Ren and J. Sun, "
                "arXiv:1512.03385, 2015")


def _resnet_card(depth, md5, top1, top5, metrics, aliases):
    """ResNet-``depth``: MSRA's caffemodel (``top1``/``top5``: their README's errors) and MatConvNet's import
    (the default)."""
    caffe = WeightSource(name="caffe", file=FileSpec(f"ResNet-{depth}-model.caffemodel"), format="caffemodel",
                         input=input_spec("BGR", MeanRef("resnet-mean"), (224, 224)), classes="imagenet-caffe",
                         metrics=ilsvrc(top1, top5, by="MSRA README, ILSVRC-2012 val, centre 224 crop of shorter "
                                                       "side 256"),
                         notes="published on OneDrive only (no direct URL, no checksum): put the file and "
                               "ResNet_mean.binaryproto in KERAS_ZOO_MIRROR")
    mcn = matconvnet("matconvnet", f"imagenet-resnet-{depth}-dag.mat", md5, input_spec("RGB", "meta", (224, 224)),
                     "imagenet-caffe", default=True, metrics=metrics, port=PortRules(batchnorm_scale=("bn", "scale")),
                     notes="MatConvNet's import of MSRA's caffemodel (DagNN; Caffe's layer names; each BatchNorm + "
                           "Scale pair merged into one batch norm named like the BatchNorm, holding mean and "
                           "sqrt(variance + eps); first convolution flipped to RGB)")
    return ModelCard(name=f"ResNet{depth}", aliases=aliases, task="classification", paper=PAPER_RESNET,
                     license="MIT (deep-residual-networks repository)", weights=(caffe, mcn))


RESNET50_CARD = _resnet_card(50, "73a3e51b75230d431c88bb795e14e91d", 24.7, 7.8, ilsvrc(24.6, 7.7, 315.3),
                             ("resnet-50", "resnet50", "resnet-50-dag", "imagenet-resnet-50-dag"))
RESNET101_CARD = _resnet_card(101, "be19a35a2b4f4c46ed61df684d08b900", 23.6, 7.1, ilsvrc(23.4, 7.0, 212.7),
                              ("resnet-101", "resnet-101-dag", "imagenet-resnet-101-dag"))
RESNET152_CARD = _resnet_card(152, "4461d3640d55aa2f58d990f7c92ff28c", 23.0, 6.7, ilsvrc(23.0, 6.7, 156.6),
                              ("resnet-152", "resnet-152-dag", "imagenet-resnet-152-dag"))
