"""Cards of AlexNet and its Caffe variants: CaffeNet and the R-CNN ILSVRC-13 detector."""

from keras_zoo.cards.records import FileSpec, MeanRef, ModelCard, WeightSource
from keras_zoo.cards.sources import BVLC_LICENSE, BVLC_MODELS, bvlc, ilsvrc, input_spec, matconvnet, trained

PAPER_ALEXNET = ("ImageNet classification with deep convolutional neural networks, A. Krizhevsky, "
                 "I. Sutskever and G. E. Hinton, NIPS 2012")

# "alexnet" twice: the aliases begin with the lower-case name, then the list the cards have always had (its
# first three after the name are what `python -m keras_zoo list` shows)
ALEXNET_CARD = ModelCard(
    name="AlexNet", aliases=("alexnet", "alexnet", "bvlc_alexnet", "caffe-alex", "imagenet-caffe-alex",
                             "matconvnet-alex", "imagenet-matconvnet-alex"),
    task="classification", paper=PAPER_ALEXNET, license=BVLC_LICENSE,
    weights=(
        bvlc("bvlc_alexnet", "9116a64c0fbe4459d18f4bb6b56d647b63920377", (227, 227), 57.1, 80.2),
        matconvnet("matconvnet", "imagenet-caffe-alex.mat", "ed49ef44caf18496291ce0c3257b0596",
                   input_spec("RGB", "meta", (227, 227), interpolation="bicubic"), "imagenet-caffe",
                   metrics=ilsvrc(42.6, 19.6, 382.4),
                   notes="MatConvNet's import of Caffe's AlexNet (mean image resized, not cropped)"),
        trained("imagenet-matconvnet-alex.mat", "55743accfaf47f5c34fa50fa047143fd", ilsvrc(41.8, 19.2, 760.3),
                input_size=(227, 227)),
    ))

CAFFENET_CARD = ModelCard(
    name="CaffeNet", aliases=("bvlc_reference_caffenet", "caffe-ref", "imagenet-caffe-ref", "caffe-reference"),
    task="classification", paper=PAPER_ALEXNET + " (CaffeNet: pooling before normalization)",
    citation="Caffe: Convolutional Architecture for Fast Feature Embedding, Y. Jia et al., 2014",
    license=BVLC_LICENSE,
    weights=(
        bvlc("bvlc_reference_caffenet", "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46", (227, 227), 57.4, 80.4),
        matconvnet("matconvnet", "imagenet-caffe-ref.mat", "6d69dfa6e549012c94546658737c5885",
                   input_spec("RGB", "meta", (227, 227), interpolation="bicubic"), "imagenet-caffe",
                   metrics=ilsvrc(42.4, 19.6, 384.8),
                   notes="MatConvNet's import of Caffe's reference model (mean image resized)"),
    ))

RCNN_CARD = ModelCard(
    name="RCNNILSVRC13", aliases=("bvlc_reference_rcnn_ilsvrc13", "rcnn-ilsvrc13", "r-cnn"), task="classification",
    paper="Rich feature hierarchies for accurate object detection and semantic segmentation, R. Girshick, "
          "J. Donahue, T. Darrell and J. Malik, CVPR 2014",
    license=BVLC_LICENSE,
    weights=(
        WeightSource(name="caffe",
                     file=FileSpec("bvlc_reference_rcnn_ilsvrc13.caffemodel",
                                   f"{BVLC_MODELS}bvlc_reference_rcnn_ilsvrc13.caffemodel",
                                   sha1=("bdd8abb885819cba5e2fe1eb36235f2319477e64",)),
                     format="caffemodel",
                     input=input_spec("BGR", MeanRef("imagenet-mean"), (227, 227), resize=None, crop="none"),
                     classes="ilsvrc13-det", default=True,
                     notes="scores warped region proposals (R-CNN's SVMs as the fc-rcnn layer)"),
    ))
