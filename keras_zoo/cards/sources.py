"""What the weight sources of several families share: the hosts, MatConvNet's re-export checksums, the
reported-metric shapes and one maker per publisher (MatConvNet's model page, the BAIR model zoo, the networks
MatConvNet trained itself)."""

from keras_zoo.cards.records import FileSpec, InputSpec, MeanRef, PortRules, WeightSource

MATCONVNET_MODELS = "https://www.vlfeat.org/matconvnet/models/"
BVLC_MODELS = "http://dl.caffe.berkeleyvision.org/"
RAW_GITHUB = "https://raw.githubusercontent.com/"
BVLC_LICENSE = "unrestricted (BAIR model license)"

# MatConvNet re-exported its models in September 2016; its later pretrained-models page lists these MD5s, which
# are accepted besides the seed's (the files served now may be either export).
MATCONVNET_REEXPORT_MD5 = {
    "imagenet-caffe-alex.mat": "b5152a54bf61100a8ed61827c76e7d08",
    "imagenet-caffe-ref.mat": "675dd47906d34f4d9a70fc44210d3804",
    "imagenet-googlenet-dag.mat": "97f4e1aa9ad6ed33fd325835710c5092",
    "imagenet-matconvnet-alex.mat": "0998b7f66bd8dcbb78a3e75aaa6127f3",
    "imagenet-matconvnet-vgg-f.mat": "790e116ec817a58960b103514891fdbf",
    "imagenet-matconvnet-vgg-m.mat": "7e07705fc60c178ee3d2c09dab33acf3",
    "imagenet-matconvnet-vgg-s.mat": "82d5705d292714d0d6581a834485705b",
    "imagenet-matconvnet-vgg-verydeep-16.mat": "89a117515f66c3d7b0eb9d0516c65141",
    "imagenet-resnet-101-dag.mat": "16ff04c36c7bd33510e4a81db6dc764b",
    "imagenet-resnet-152-dag.mat": "f399bef82f5bcaf290d07ccc818833d7",
    "imagenet-resnet-50-dag.mat": "d72aa76a8ddf8bd96e405ac0ba827724",
    "imagenet-vgg-f.mat": "3513562d28089bd965cc050cbf8597a6",
    "imagenet-vgg-m-1024.mat": "1410d01878346f911e991dd0c1bb983b",
    "imagenet-vgg-m-128.mat": "3a8dc312a44a99d21ad43e8d96a8590f",
    "imagenet-vgg-m-2048.mat": "087ec812e0a09980bd934e2e7ba157f6",
    "imagenet-vgg-m.mat": "29294d5f62578c96a3533859514235f2",
    "imagenet-vgg-s.mat": "dbe23da22e82078debda75842b16d5fa",
    "imagenet-vgg-verydeep-16.mat": "f72d927587ca4c97fbd165ec9cb9997f",
    "imagenet-vgg-verydeep-19.mat": "106118b7cf60435e6d8e04f6a6dc3657",
    "pascal-fcn16s-dag.mat": "2e49dd427829cdbc08a0154f994687d7",
    "pascal-fcn32s-dag.mat": "a1331885ec72a0721e51ac9d16262a48",
    "pascal-fcn8s-dag.mat": "0eeb6a4bc819616ea66f88a3db878983",
    "pascal-fcn8s-tvg-dag.mat": "b0f7bd5833b555c6241dd0c05897ca41",
    "vgg-face.mat": "3d6cd504bf9c98af4a561aad059565d1",
}

# MatConvNet's examples/imagenet/cnn_imagenet_init.m (beta17) names the layers conv1..conv5 (conv1_1..conv5_3 for
# VGG-VD), fc6..fc8, with the pads of the Caffe releases (its pools' bottom/right pads reproduce Caffe's rounding);
# trained with batch normalization it adds no LRN and no dropout, and cnn_imagenet_deploy.m folds the batch norms
# into the convolutions. So VGG-VD-16 is the builder's network; F, M, S and AlexNet lack the LRN layers.
IMAGENET_TRAINED_NOTE = ("trained by MatConvNet (beta17, examples/imagenet) with batch normalization, deployed with "
                         "the batch norms folded into the convolutions (SimpleNN); classes in the devkit order")
IMAGENET_TRAINED_NO_LRN = {layer: "MatConvNet trained it with batch normalization, and its cnn_imagenet_init.m "
                                  "adds LRN layers only without" for layer in ("norm1", "norm2")}


def input_spec(channel_order, mean, input_size, resize=256, crop="center", interpolation="bilinear"):
    """An :class:`InputSpec` (scale 1) with the usual evaluation: shorter side 256, centre crop."""
    return InputSpec(channel_order=channel_order, mean=mean, scale=1.0, input_size=tuple(input_size),
                     resize=resize, crop=crop, interpolation=interpolation)


def bgr(rgb):
    """A mean pixel in the other channel order."""
    return tuple(reversed(rgb))


def ilsvrc(top1_err, top5_err, images_per_s=None, by="MatConvNet, ILSVRC-2012 val, single centre crop"):
    """ILSVRC-2012 validation errors (%) as a publisher reported them (and MatConvNet's speed)."""
    metrics = {"top1_err": top1_err, "top5_err": top5_err, "reported_by": by}
    if images_per_s is not None:
        metrics["images_per_s"] = images_per_s
        metrics["reported_by"] += " (images/s: Titan X, MATLAB R2015b, CuDNN v4)"
    return metrics


def voc(mean_iou, mean_pix_acc, pix_acc, test_data):
    """PASCAL VOC segmentation scores as MatConvNet's pretrained-models page reports them."""
    return {"mean_iou": mean_iou, "mean_pix_acc": mean_pix_acc, "pix_acc": pix_acc, "test_data": test_data,
            "reported_by": "MatConvNet pretrained-models page"}


def matconvnet(name, filename, md5, input, classes, **fields):
    """A .mat of MatConvNet's model page: ``md5`` is the seed's; the later re-export's is accepted too.
    ``fields``: the other :class:`WeightSource` fields (default, port, metrics, notes)."""
    accepted = (md5, MATCONVNET_REEXPORT_MD5[filename]) if filename in MATCONVNET_REEXPORT_MD5 else (md5,)
    return WeightSource(name=name, file=FileSpec(filename, MATCONVNET_MODELS + filename, md5=accepted),
                        format="mat", input=input, classes=classes, **fields)


def bvlc(dirname, sha1, input_size, top1_acc, top5_acc, classes="imagenet-caffe", mean=None, **fields):
    """A BAIR model-zoo caffemodel (URL and SHA1 from its readme.md), Caffe's mean image by default; the
    default source of its card."""
    return WeightSource(name="caffe", file=FileSpec(f"{dirname}.caffemodel", f"{BVLC_MODELS}{dirname}.caffemodel",
                                                    sha1=(sha1,)),
                        format="caffemodel", input=input_spec("BGR", mean or MeanRef("imagenet-mean"), input_size),
                        classes=classes, default=True,
                        metrics=ilsvrc(round(100 - top1_acc, 1), round(100 - top5_acc, 1),
                                       by="BAIR model-zoo readme, ILSVRC-2012 val, single centre crop"),
                        **fields)


def trained(filename, md5, metrics, vgg_vd=False, input_size=(224, 224)):
    """A network MatConvNet trained itself: the builder's layer names; without LRN unless it is VGG-VD."""
    note = IMAGENET_TRAINED_NOTE + ("; the same network as the builder's" if vgg_vd else
                                    "; it has no LRN layers: built for this source, the builder leaves out "
                                    "norm1 and norm2")
    return matconvnet("matconvnet-trained", filename, md5, input_spec("RGB", "meta", input_size), "imagenet-vgg",
                      metrics=metrics, notes=note,
                      port=PortRules(missing_layers={} if vgg_vd else IMAGENET_TRAINED_NO_LRN))
