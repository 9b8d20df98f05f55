"""The model cards: one place for every fact about the zoo's models and their original weight files.

A card is a dict:

``name``        the builder's display name (``'VGG16'``)
``aliases``     lower-case names that also find it: the builder's name, the seed documents' names
                (``'resnet-50'``, ``'imagenet-vgg-verydeep-16'``, ``'caffe-alex'``, ``'bvlc_googlenet'``...)
``builder``     name of the builder function in :mod:`keras_zoo.models`
``task``        ``'classification'`` | ``'segmentation'`` | ``'face'``
``paper``       title, authors, venue; ``citation``: what to cite; ``license``: of the weights
``metrics``     ``{source name: metrics}`` as reported by the original authors or MatConvNet (derived from
                the sources; see below)
``weights``     list of weight sources (dicts):

    ``name``          ``'caffe'``, ``'matconvnet'``, ``'matconvnet-trained'``, ``'tvg'``...
    ``url``           where the original file lives (None where no direct download exists: put the file in
                      ``KERAS_ZOO_MIRROR`` or the downloads folder)
    ``filename``      the original file name (also its name in a mirror)
    ``format``        ``'caffemodel'`` | ``'mat'``
    ``md5`` / ``sha1`` the published checksum (absent where none is published)
    ``default``       True for the one source ``weights='imagenet'`` means
    ``preprocessing`` ``channel_order`` ('BGR' | 'RGB', what the network expects), ``mean`` (per-channel list
                      in the network's channel order, ``{'file': mean source id}`` (see :data:`MEANS`) for a
                      mean image, or ``'meta'``: the ``meta.normalization.averageImage`` of the .mat itself),
                      ``scale``, ``input_size`` [H, W], ``resize`` (shorter side before the crop, None: warp
                      to the input size), ``crop`` ('center' | 'none'), ``interpolation``
    ``classes``       label-set id (see :data:`LABEL_SETS`): 'imagenet-caffe', 'imagenet-vgg',
                      'ilsvrc13-det', 'voc21', 'vggface2622'
    ``rename``        original layer name -> the builder's layer name, where they differ
    ``unused``        layers of the original file the builder has no counterpart for (not loaded), e.g.
                      the auxiliary classifiers of a training net
    ``batchnorm_scale`` ``[batch-norm prefix, scale prefix]`` where the file merges Caffe's BatchNorm +
                      Scale into one batch norm (MatConvNet's import does): its gamma/beta go to the
                      builder's Scale layer named with the second prefix (``bn2a_branch1`` ->
                      ``scale2a_branch1``); None otherwise
    ``bias_moves``    file layer -> file layer: a bias the builder's layer lacks (FCN's first upsampling in the
                      2015 nets) is added to the bias of the layer whose output is summed with it (exact)
    ``missing_layers`` builder layer -> why the file's network lacks it (e.g. an LRN): built for this source,
                      the builder leaves the layer out (its readers read its input); a model that has the
                      layer refuses the file with a ConversionError naming it
    ``metrics``       what the source's publisher reported (top-1/top-5 error %, images/s, mean IoU...)
    ``notes``         anything a user must know about this file

Label files and mean images are sources too (:data:`LABEL_SETS`, :data:`MEANS`): URL, file name, checksum.
"""

import argparse
import copy
import difflib
import importlib
import sys

MATCONVNET_MODELS = "https://www.vlfeat.org/matconvnet/models/"
BVLC_MODELS = "http://dl.caffe.berkeleyvision.org/"
VGG_VERY_DEEP = "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"
RAW_GITHUB = "https://raw.githubusercontent.com/"
# Caffe's ilsvrc12 auxiliary files (caffe_ilsvrc12.tar.gz), as committed in a Caffe fork
CAFFE_ILSVRC12_AUX = (RAW_GITHUB + "kevinlin311tw/Caffe-DeepBinaryCode/9eaa7662be47d49f475ecbeea2bd51be105270d2/"
                      "data/ilsvrc12/")

# ---------------------------------------------------------------------------------------------------------
# label sets and mean images (fetched and cached like weights)
# ---------------------------------------------------------------------------------------------------------
# format: 'synset_words' ("wnid description" lines), 'lines' (one name a line), 'indexed' ("index name" lines)
LABEL_SETS = {
    "imagenet-caffe": {
        "name": "imagenet-caffe", "url": CAFFE_ILSVRC12_AUX + "synset_words.txt",
        "filename": "synset_words.txt", "md5": "4d234b5833aca44928065a180db3016a", "format": "synset_words",
        "count": 1000, "notes": "ILSVRC-2012 classes in Caffe's order (sorted by WordNet id)",
    },
    "imagenet-vgg": {
        "name": "imagenet-vgg",
        "url": RAW_GITHUB + "vlfeat/matconvnet/1e5ae7b70fc1074bf8a2a5617e698e54072fbb2c/utils/proto/"
               "vgg_synset_words.txt",
        "filename": "vgg_synset_words.txt", "md5": "7315c2c8bffdb680cf8c5d2a7c45c363", "format": "synset_words",
        "count": 1000,
        "notes": "ILSVRC-2012 classes in the devkit's order (the VGG 'Return of the Devil' models and the "
                 "networks MatConvNet trained itself)",
    },
    "ilsvrc13-det": {
        "name": "ilsvrc13-det", "url": CAFFE_ILSVRC12_AUX + "det_synset_words.txt",
        "filename": "det_synset_words.txt", "md5": "fe0fe33bc8cb071f8ca73073d97973c6",
        "format": "synset_words", "count": 200, "notes": "ILSVRC-2013 detection classes",
    },
    "voc21": {
        "name": "voc21",
        "url": RAW_GITHUB + "shelhamer/fcn.berkeleyvision.org/1305c7378a9f0ab44b2c936f4d60e4687e3d8743/data/"
               "pascal/classes.txt",
        "filename": "pascal_classes.txt", "md5": "33b40a9eaf41e7fac04e78221252f26d", "format": "lines",
        "count": 21, "notes": "PASCAL VOC: background + 20 classes",
    },
    "vggface2622": {
        "name": "vggface2622",
        "url": RAW_GITHUB + "Maupin1991/vgg_face_tensorflow/fcebd0c1df435e940127c687c480eeabb2cf2c34/names.txt",
        "filename": "vgg_face_names.txt", "md5": "af12891c59dce5e3dd34ba77e66219d9", "format": "indexed",
        "count": 2622,
        "notes": "VGG-Face identities (a copy of vgg_face_caffe/names.txt with an index prefix added)",
    },
}

MEANS = {
    "imagenet-mean": {
        "name": "imagenet-mean", "url": CAFFE_ILSVRC12_AUX + "imagenet_mean.binaryproto",
        "filename": "imagenet_mean.binaryproto", "md5": "6df445471f4fa8a98fc19932d21bef77",
        "format": "binaryproto", "notes": "Caffe's ILSVRC-2012 mean image, 3x256x256 BGR",
    },
    "resnet-mean": {
        "name": "resnet-mean", "url": None, "filename": "ResNet_mean.binaryproto", "format": "binaryproto",
        "notes": "ships inside the ResNet models' OneDrive folder only: put it in KERAS_ZOO_MIRROR",
    },
}


# ---------------------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------------------
def _preprocessing(channel_order, mean, input_size, resize=256, crop="center", interpolation="bilinear"):
    return {"channel_order": channel_order, "mean": mean, "scale": 1.0, "input_size": list(input_size),
            "resize": resize, "crop": crop, "interpolation": interpolation}


def _source(name, filename, url, fmt, preprocessing, classes, default=False, metrics=None, notes="",
            rename=None, unused=(), batchnorm_scale=None, bias_moves=None, missing_layers=None, **checksum):
    source = {"name": name, "url": url, "filename": filename, "format": fmt, "default": default,
              "preprocessing": preprocessing, "classes": classes, "rename": dict(rename or {}),
              "unused": list(unused), "batchnorm_scale": list(batchnorm_scale) if batchnorm_scale else None,
              "bias_moves": dict(bias_moves or {}), "missing_layers": dict(missing_layers or {}),
              "metrics": dict(metrics or {}), "notes": notes}
    source.update(checksum)
    return source


def _ilsvrc(top1_err, top5_err, images_per_s=None, by="MatConvNet, ILSVRC-2012 val, single centre crop"):
    metrics = {"top1_err": top1_err, "top5_err": top5_err, "reported_by": by}
    if images_per_s is not None:
        metrics["images_per_s"] = images_per_s
        metrics["reported_by"] += " (images/s: Titan X, MATLAB R2015b, CuDNN v4)"
    return metrics


def _voc(mean_iou, mean_pix_acc, pix_acc, test_data):
    return {"mean_iou": mean_iou, "mean_pix_acc": mean_pix_acc, "pix_acc": pix_acc, "test_data": test_data,
            "reported_by": "MatConvNet pretrained-models page"}


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


def _matconvnet(name, filename, md5, preprocessing, classes, **kwargs):
    """A MatConvNet .mat source: ``md5`` is the seed's; the later re-export's is accepted too."""
    accepted = [md5, MATCONVNET_REEXPORT_MD5[filename]] if filename in MATCONVNET_REEXPORT_MD5 else md5
    return _source(name, filename, MATCONVNET_MODELS + filename, "mat", preprocessing, classes, md5=accepted,
                   **kwargs)


def _bvlc(dirname, sha1, input_size, top1_acc, top5_acc, classes="imagenet-caffe", mean=None, **kwargs):
    """A BAIR model-zoo caffemodel (URL and SHA1 from its readme.md), Caffe's mean image by default."""
    return _source("caffe", f"{dirname}.caffemodel", f"{BVLC_MODELS}{dirname}.caffemodel", "caffemodel",
                   _preprocessing("BGR", mean or {"file": "imagenet-mean"}, input_size), classes, sha1=sha1,
                   default=True,
                   metrics=_ilsvrc(round(100 - top1_acc, 1), round(100 - top5_acc, 1),
                                   by="BAIR model-zoo readme, ILSVRC-2012 val, single centre crop"),
                   **kwargs)


VGG_VD_MEAN_RGB = [123.68, 116.779, 103.939]  # the VGG team's mean pixel (their gist gives it in BGR)
FCN_MEAN_RGB = [122.67891434, 116.66876762, 104.00698793]
VGG_FACE_MEAN_RGB = [129.1863, 104.7624, 93.5940]
BVLC_LICENSE = "unrestricted (BAIR model license)"
# MatConvNet's examples/imagenet/cnn_imagenet_init.m (beta17) names the layers conv1..conv5 (conv1_1..conv5_3 for
# VGG-VD), fc6..fc8, with the pads of the Caffe releases (its pools' bottom/right pads reproduce Caffe's rounding);
# trained with batch normalization it adds no LRN and no dropout, and cnn_imagenet_deploy.m folds the batch norms
# into the convolutions. So VGG-VD-16 is the builder's network; F, M, S and AlexNet lack the LRN layers.
IMAGENET_TRAINED_NOTE = ("trained by MatConvNet (beta17, examples/imagenet) with batch normalization, deployed with "
                         "the batch norms folded into the convolutions (SimpleNN); classes in the devkit order")
IMAGENET_TRAINED_NO_LRN = {layer: "MatConvNet trained it with batch normalization, and its cnn_imagenet_init.m "
                                  "adds LRN layers only without" for layer in ("norm1", "norm2")}


def _trained(filename, md5, metrics, vgg_vd=False, input_size=(224, 224)):
    """A network MatConvNet trained itself: the builder's layer names; without LRN unless it is VGG-VD."""
    note = IMAGENET_TRAINED_NOTE + ("; the same network as the builder's" if vgg_vd else
                                    "; it has no LRN layers: built for this source, the builder leaves out "
                                    "norm1 and norm2")
    return _matconvnet("matconvnet-trained", filename, md5, _preprocessing("RGB", "meta", input_size),
                       "imagenet-vgg", metrics=metrics, notes=note,
                       missing_layers=None if vgg_vd else IMAGENET_TRAINED_NO_LRN)


def _bgr(rgb):
    return list(reversed(rgb))


def _vgg_vd(depth, md5, metrics):
    caffe = _source("caffe", f"VGG_ILSVRC_{depth}_layers.caffemodel",
                    f"{VGG_VERY_DEEP}VGG_ILSVRC_{depth}_layers.caffemodel", "caffemodel",
                    _preprocessing("BGR", _bgr(VGG_VD_MEAN_RGB), (224, 224)), "imagenet-caffe", default=True,
                    notes="the VGG team's gist publishes no checksum: the download cannot be verified")
    mcn = _matconvnet("matconvnet", f"imagenet-vgg-verydeep-{depth}.mat", md5,
                      _preprocessing("RGB", VGG_VD_MEAN_RGB, (224, 224)), "imagenet-caffe", metrics=metrics,
                      notes="MatConvNet's import of the VGG team's caffemodel (SimpleNN; Caffe's layer names, "
                            "first convolution flipped to RGB, fully connected layers as filter banks)")
    return [caffe, mcn]


def _vgg_devil(suffix, md5, metrics, classes="imagenet-vgg", trained=None):
    """A 'Return of the Devil' model: only MatConvNet's import is readable (the originals use a Caffe fork)."""
    sources = [_matconvnet("matconvnet", f"imagenet-vgg-{suffix}.mat", md5,
                           _preprocessing("RGB", "meta", (224, 224)), classes, default=True, metrics=metrics,
                           notes="MatConvNet's import of the VGG team's deepeval model (the original files use "
                                 "the VGG Caffe fork's format, already RGB: imported with --color-format=rgb). "
                                 "MatConvNet's utils/import-caffe.py keeps the param.prototxt's layer names (only "
                                 "'-' becomes '_') and its LRN k (the VGG fork's LRN has a k, default 1); that "
                                 "prototxt could not be read, so the names conv1..conv5, fc6..fc8 and the LRN "
                                 "constants of the Caffe releases of VGG_CNN_* are assumed, not established. "
                                 "Loading checks them: another layer name, other convolution pads or strides or "
                                 "other LRN constants are refused, naming the layer")]
    if trained:
        md5_trained, metrics_trained = trained
        sources.append(_trained(f"imagenet-matconvnet-vgg-{suffix}.mat", md5_trained, metrics_trained))
    return sources


def _resnet(depth, md5, top1, top5, metrics):
    caffe = _source("caffe", f"ResNet-{depth}-model.caffemodel", None, "caffemodel",
                    _preprocessing("BGR", {"file": "resnet-mean"}, (224, 224)), "imagenet-caffe",
                    metrics=_ilsvrc(top1, top5, by="MSRA README, ILSVRC-2012 val, centre 224 crop of "
                                                   "shorter side 256"),
                    notes="published on OneDrive only (no direct URL, no checksum): put the file and "
                          "ResNet_mean.binaryproto in KERAS_ZOO_MIRROR")
    mcn = _matconvnet("matconvnet", f"imagenet-resnet-{depth}-dag.mat", md5,
                      _preprocessing("RGB", "meta", (224, 224)), "imagenet-caffe", default=True,
                      metrics=metrics, batchnorm_scale=("bn", "scale"),
                      notes="MatConvNet's import of MSRA's caffemodel (DagNN; Caffe's layer names; each "
                            "BatchNorm + Scale pair merged into one batch norm named like the BatchNorm, "
                            "holding mean and sqrt(variance + eps); first convolution flipped to RGB)")
    return [caffe, mcn]


# MatConvNet's utils/import-fcn.sh imported the 2015 fcn-{32,16,8}s-pascal caffemodels with Jonathan Long's deploy
# gists; its import-caffe.py turns '-' into '_' in every name and renames repeated layer names with an 'x' suffix
# ('crop', 'cropx', 'cropxx'; 'fuse', 'fusex'). The gists name the score layers 'score-fr', 'score-pool4',
# 'score-pool3' (score_fr, score_pool4, score_pool3 in the .mat, as the builders) and the upsamplings
# 'score2' (4x4/2, WITH a learned bias, which the 2016 nets' upscore2 lacks), 'score4' (4x4/2, no bias) and
# 'upsample' (the last one; FCN-32s's has a bias frozen at zero by 'blobs_lr: 0'). The importer computes the Crop
# offsets from the layers' receptive fields: 19 (32s); 5, 27 (16s); 5, 9, 31 (8s), the builders' offsets.
FCN_GIST_RENAME = {
    32: {"upsample": "upscore"},
    16: {"score2": "upscore2", "upsample": "upscore16"},
    8: {"score2": "upscore2", "score4": "upscore_pool4", "upsample": "upscore8"},
}
# score2's bias moves into score_pool4's: fuse adds score2 and the cropped score_pool4 per class, so the sum is exact
FCN_GIST_BIAS_MOVES = {32: {}, 16: {"score2": "score_pool4"}, 8: {"score2": "score_pool4"}}
FCN_GIST_NOTES = {
    32: "names from the FCN-32s gist's final layers as quoted in third-party code (score-fr, upsample); its "
        "upsample bias must be zero (frozen at its initial value), any other value is refused",
    16: "score2's bias is moved into score_pool4's (exact: fuse adds the two). The FCN-16s gist text itself could "
        "not be read: its names (score_fr, score2, score_pool4, upsample) follow the FCN-8s and FCN-32s gists and "
        "third-party loaders of this file",
    8: "score2's bias is moved into score_pool4's (exact: fuse adds the two). Names checked against two copies of "
       "the FCN-8s gist (in the DeconvNet and CRF-RNN releases)",
}


def _fcn(stride, md5, voc, tvg=None):
    deploy = _preprocessing("BGR", _bgr(FCN_MEAN_RGB), (500, 500), resize=None, crop="none")
    caffe = _source("caffe", f"fcn{stride}s-heavy-pascal.caffemodel",
                    f"{BVLC_MODELS}fcn{stride}s-heavy-pascal.caffemodel", "caffemodel", deploy, "voc21",
                    default=True, metrics={"mean_iou": {32: 63.6, 16: 65.0, 8: 65.5}[stride],
                                           "test_data": "seg11valid", "reported_by": "FCN README"},
                    notes="the FCN repository publishes no checksum: the download cannot be verified")
    mcn_pre = _preprocessing("RGB", FCN_MEAN_RGB, (500, 500), resize=None, crop="none")
    gist = {"rename": FCN_GIST_RENAME[stride], "bias_moves": FCN_GIST_BIAS_MOVES[stride]}
    sources = [caffe, _matconvnet("matconvnet", f"pascal-fcn{stride}s-dag.mat", md5, mcn_pre, "voc21",
                                  metrics=voc, **gist,
                                  notes=f"MatConvNet's import (utils/import-fcn.sh) of the earlier (non-'heavy') "
                                        f"fcn-{stride}s-pascal.caffemodel with the 2015 deploy gist (DagNN, RGB). "
                                        "Same architecture as the builder (pads, kernels, strides, Crop offsets) "
                                        "with the gist's layer names; " + FCN_GIST_NOTES[stride])]
    if tvg:
        md5_tvg, voc_tvg = tvg
        sources.append(_matconvnet("tvg", "pascal-fcn8s-tvg-dag.mat", md5_tvg,
                                   _preprocessing("RGB", "meta", (500, 500), resize=None, crop="none"), "voc21",
                                   metrics=voc_tvg, **gist,
                                   notes="Torr Vision Group's FCN-8s (the FCN part of CRF-RNN, trained with VOC 2012 "
                                         "and COCO; its CRF layer is not in the file). The FCN-8s layers of CRF-RNN's "
                                         "TVG_CRFRNN_COCO_VOC.prototxt are the FCN-8s gist's (last output 'coarse', "
                                         "as MatConvNet's matconvnet-fcn reads it): the same names and mapping as "
                                         "pascal-fcn8s-dag.mat"))
    return sources


# The Princeton GoogLeNet (train_val_googlenet.prototxt, which MatConvNet's import-googlenet.sh converts) names
# its inception modules icp1..icp9 (= BVLC's 3a..5b) and their convolutions out0 (1x1), reduction1 (3x3
# reduce), out1 (3x3), reduction2 (5x5 reduce), out2 (5x5), out3 (pool projection).
PRINCETON_INCEPTION_BRANCHES = {"out0": "1x1", "reduction1": "3x3_reduce", "out1": "3x3",
                                "reduction2": "5x5_reduce", "out2": "5x5", "out3": "pool_proj"}
PRINCETON_GOOGLENET_RENAME = {
    "conv1": "conv1/7x7_s2", "reduction2": "conv2/3x3_reduce", "conv2": "conv2/3x3", "cls3_fc": "loss3/classifier",
    **{f"icp{index}_{branch}": f"inception_{module}/{bvlc}"
       for index, module in enumerate(("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"), start=1)
       for branch, bvlc in PRINCETON_INCEPTION_BRANCHES.items()},
}
# its auxiliary classifiers, kept by the import (only the losses are removed); bvlc_googlenet's deploy net has none
PRINCETON_GOOGLENET_AUXILIARY = [f"cls{head}_{layer}" for head in (1, 2) for layer in ("reduction", "fc1", "fc2")]


def _card(name, builder, aliases, task, paper, license, weights, citation=None):
    return {"name": name, "aliases": [builder.lower(), *aliases], "builder": builder, "task": task,
            "paper": paper, "citation": citation or paper, "license": license, "weights": weights,
            "metrics": {source["name"]: source["metrics"] for source in weights if source["metrics"]}}


PAPER_VGG_VD = ("Very Deep Convolutional Networks for Large-Scale Image Recognition, K. Simonyan and "
                "A. Zisserman, arXiv:1409.1556, 2014")
PAPER_DEVIL = ("Return of the Devil in the Details: Delving Deep into Convolutional Networks, K. Chatfield, "
               "K. Simonyan, A. Vedaldi and A. Zisserman, BMVC 2014")
PAPER_ALEXNET = ("ImageNet classification with deep convolutional neural networks, A. Krizhevsky, "
                 "I. Sutskever and G. E. Hinton, NIPS 2012")
PAPER_RESNET = ("Deep Residual Learning for Image Recognition, K. He, X. Zhang, S. Ren and J. Sun, "
                "arXiv:1512.03385, 2015")
PAPER_FCN = ("Fully Convolutional Models for Semantic Segmentation, J. Long, E. Shelhamer and T. Darrell, "
             "CVPR 2015")
LICENSE_VGG = "CC BY 4.0 (VGG very-deep models, per the VGG site)"
LICENSE_FCN = "unrestricted (FCN README: models as the Caffe-bundled models); TVG model: see CRF-RNN"


def _devil_card(name, suffix, aliases, md5, metrics, classes="imagenet-vgg", trained=None):
    return _card(name, name, [f"vgg-{suffix}", f"imagenet-vgg-{suffix}", *aliases], "classification",
                 PAPER_DEVIL, "see the VGG site (deep_eval)", _vgg_devil(suffix, md5, metrics, classes, trained))


CARDS = [
    _card("VGG16", "VGG16", ["vgg-16", "vgg-verydeep-16", "imagenet-vgg-verydeep-16", "vgg_ilsvrc_16_layers",
                             "matconvnet-vgg-verydeep-16", "imagenet-matconvnet-vgg-verydeep-16"],
          "classification", PAPER_VGG_VD, LICENSE_VGG,
          _vgg_vd(16, "7f0f9f01dfd99c7b7088d1c5a26eb483", _ilsvrc(28.5, 9.9, 183.1)) + [
              _trained("imagenet-matconvnet-vgg-verydeep-16.mat", "14ece491f7311f6dc33bc3186729de5b",
                       _ilsvrc(28.3, 9.5, 184.5), vgg_vd=True)]),
    _card("VGG19", "VGG19", ["vgg-19", "vgg-verydeep-19", "imagenet-vgg-verydeep-19", "vgg_ilsvrc_19_layers"],
          "classification", PAPER_VGG_VD, LICENSE_VGG,
          _vgg_vd(19, "49e623de543b207d57fab0f6eaf79a7e", _ilsvrc(28.7, 9.9, 154.5))),
    _devil_card("VGGF", "f", ["vgg_cnn_f", "matconvnet-vgg-f", "imagenet-matconvnet-vgg-f"],
                "f666c61dc968c413ef664a7e17b01144", _ilsvrc(41.1, 18.8, 785.7), classes="imagenet-caffe",
                trained=("b359b6ad071155eafa35c84a78f397c7", _ilsvrc(41.4, 19.1, 793.1))),
    _devil_card("VGGM", "m", ["vgg_cnn_m", "matconvnet-vgg-m", "imagenet-matconvnet-vgg-m"],
                "1c164950e882b4ea11623e669a86b1c4", _ilsvrc(37.3, 15.9, 586.9),
                trained=("1bcad2e93b0cc6da3b7d1bf610582279", _ilsvrc(36.9, 15.5, 623.1))),
    _devil_card("VGGS", "s", ["vgg_cnn_s", "matconvnet-vgg-s", "imagenet-matconvnet-vgg-s"],
                "93b683d5420c2eeaf07a6eef492f182b", _ilsvrc(36.7, 15.3, 395.4),
                trained=("314c982669e202e0d419803c54d1fb8f", _ilsvrc(37.0, 15.8, 415.9))),
    _devil_card("VGGM128", "m-128", ["vgg_cnn_m_128"], "779b86f55d0534d9fd322256372007a5",
                _ilsvrc(40.8, 18.4, 588.7)),
    _devil_card("VGGM1024", "m-1024", ["vgg_cnn_m_1024"], "d15f53a30bba3abde4377eced695adab",
                _ilsvrc(37.8, 16.1, 596.8)),
    _devil_card("VGGM2048", "m-2048", ["vgg_cnn_m_2048"], "9d20b7ab01ca47617e808008da6b18cc",
                _ilsvrc(37.1, 15.8, 589.4)),
    _card("VGGFace", "VGGFace", ["vgg-face", "vgg_face", "vggface16"], "face",
          "Deep face recognition, O. M. Parkhi, A. Vedaldi and A. Zisserman, BMVC 2015",
          "non-commercial research use (VGG-Face site)", [
              _matconvnet("matconvnet", "vgg-face.mat", "27e94d9979dad2385f901f0c360cf3bc",
                          _preprocessing("RGB", VGG_FACE_MEAN_RGB, (224, 224), resize=None), "vggface2622",
                          default=True,
                          notes="the VGG team's own MatConvNet release of VGG-Face (no MatConvNet import script "
                                "makes it), re-saved by MatConvNet's utils/tidy_ref_models.m (SimpleNN): layer "
                                "names conv1_1..conv5_3, fc6..fc8 as in VGG_FACE_deploy.prototxt, on which "
                                "third-party loaders that copy its weights by layer name rely; fully connected "
                                "layers as filter banks"),
              _source("caffe", "VGG_FACE.caffemodel", None, "caffemodel",
                      _preprocessing("BGR", _bgr(VGG_FACE_MEAN_RGB), (224, 224), resize=None), "vggface2622",
                      notes="ships inside vgg_face_caffe.tar.gz on the VGG site (no checksum): extract "
                            "VGG_FACE.caffemodel into KERAS_ZOO_MIRROR"),
          ]),
    _card("AlexNet", "AlexNet", ["alexnet", "bvlc_alexnet", "caffe-alex", "imagenet-caffe-alex",
                                 "matconvnet-alex", "imagenet-matconvnet-alex"],
          "classification", PAPER_ALEXNET, BVLC_LICENSE, [
              _bvlc("bvlc_alexnet", "9116a64c0fbe4459d18f4bb6b56d647b63920377", (227, 227), 57.1, 80.2),
              _matconvnet("matconvnet", "imagenet-caffe-alex.mat", "ed49ef44caf18496291ce0c3257b0596",
                          _preprocessing("RGB", "meta", (227, 227), interpolation="bicubic"), "imagenet-caffe",
                          metrics=_ilsvrc(42.6, 19.6, 382.4),
                          notes="MatConvNet's import of Caffe's AlexNet (mean image resized, not cropped)"),
              _trained("imagenet-matconvnet-alex.mat", "55743accfaf47f5c34fa50fa047143fd",
                       _ilsvrc(41.8, 19.2, 760.3), input_size=(227, 227)),
          ]),
    _card("CaffeNet", "CaffeNet", ["bvlc_reference_caffenet", "caffe-ref", "imagenet-caffe-ref",
                                   "caffe-reference"],
          "classification", PAPER_ALEXNET + " (CaffeNet: pooling before normalization)", BVLC_LICENSE, [
              _bvlc("bvlc_reference_caffenet", "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46", (227, 227), 57.4, 80.4),
              _matconvnet("matconvnet", "imagenet-caffe-ref.mat", "6d69dfa6e549012c94546658737c5885",
                          _preprocessing("RGB", "meta", (227, 227), interpolation="bicubic"), "imagenet-caffe",
                          metrics=_ilsvrc(42.4, 19.6, 384.8),
                          notes="MatConvNet's import of Caffe's reference model (mean image resized)"),
          ], citation="Caffe: Convolutional Architecture for Fast Feature Embedding, Y. Jia et al., 2014"),
    _card("RCNNILSVRC13", "RCNNILSVRC13", ["bvlc_reference_rcnn_ilsvrc13", "rcnn-ilsvrc13", "r-cnn"],
          "classification",
          "Rich feature hierarchies for accurate object detection and semantic segmentation, R. Girshick, "
          "J. Donahue, T. Darrell and J. Malik, CVPR 2014", BVLC_LICENSE, [
              _source("caffe", "bvlc_reference_rcnn_ilsvrc13.caffemodel",
                      f"{BVLC_MODELS}bvlc_reference_rcnn_ilsvrc13.caffemodel", "caffemodel",
                      _preprocessing("BGR", {"file": "imagenet-mean"}, (227, 227), resize=None, crop="none"),
                      "ilsvrc13-det", default=True, sha1="bdd8abb885819cba5e2fe1eb36235f2319477e64",
                      notes="scores warped region proposals (R-CNN's SVMs as the fc-rcnn layer)"),
          ]),
    _card("GoogLeNet", "GoogLeNet", ["bvlc_googlenet", "googlenet-dag", "imagenet-googlenet-dag", "inception-v1"],
          "classification",
          "Going Deeper with Convolutions, C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, "
          "D. Erhan, V. Vanhoucke and A. Rabinovich, CVPR 2015", BVLC_LICENSE, [
              _bvlc("bvlc_googlenet", "405fc5acd08a3bb12de8ee5e23a96bec22f08204", (224, 224), 68.7, 88.9,
                    mean=[104.0, 117.0, 123.0]),
              _matconvnet("matconvnet", "imagenet-googlenet-dag.mat", "04cd60e8ea6a0d47742206749f624ec8",
                          _preprocessing("RGB", "meta", (224, 224)), "imagenet-caffe",
                          metrics=_ilsvrc(34.2, 12.9, 501.8), rename=PRINCETON_GOOGLENET_RENAME,
                          unused=PRINCETON_GOOGLENET_AUXILIARY,
                          notes="the Princeton GoogLeNet (other weights and layer names than BVLC's; same "
                                "architecture; its two auxiliary classifiers are not loaded)"),
          ]),
    _card("ResNet50", "ResNet50", ["resnet-50", "resnet50", "resnet-50-dag", "imagenet-resnet-50-dag"],
          "classification", PAPER_RESNET, "MIT (deep-residual-networks repository)",
          _resnet(50, "73a3e51b75230d431c88bb795e14e91d", 24.7, 7.8, _ilsvrc(24.6, 7.7, 315.3))),
    _card("ResNet101", "ResNet101", ["resnet-101", "resnet-101-dag", "imagenet-resnet-101-dag"],
          "classification", PAPER_RESNET, "MIT (deep-residual-networks repository)",
          _resnet(101, "be19a35a2b4f4c46ed61df684d08b900", 23.6, 7.1, _ilsvrc(23.4, 7.0, 212.7))),
    _card("ResNet152", "ResNet152", ["resnet-152", "resnet-152-dag", "imagenet-resnet-152-dag"],
          "classification", PAPER_RESNET, "MIT (deep-residual-networks repository)",
          _resnet(152, "4461d3640d55aa2f58d990f7c92ff28c", 23.0, 6.7, _ilsvrc(23.0, 6.7, 156.6))),
    _card("FCN32s", "FCN32s", ["fcn-32s", "voc-fcn32s", "pascal-fcn32s-dag"], "segmentation", PAPER_FCN,
          LICENSE_FCN, _fcn(32, "bf3ca0a59d1525f63e7c28d526ee0656", _voc(59.43, 89.12, 73.28, "RV-VOC11"))),
    _card("FCN16s", "FCN16s", ["fcn-16s", "voc-fcn16s", "pascal-fcn16s-dag"], "segmentation", PAPER_FCN,
          LICENSE_FCN, _fcn(16, "48ccac8fb5c4961815705f1f84581ec3", _voc(62.35, 90.02, 75.74, "RV-VOC11"))),
    _card("FCN8s", "FCN8s", ["fcn-8s", "voc-fcn8s", "pascal-fcn8s-dag", "pascal-fcn8s-tvg-dag", "fcn-8s-tvg"],
          "segmentation", PAPER_FCN, LICENSE_FCN,
          _fcn(8, "54b7ce1265a6cdd114d39d05515c73c4", _voc(62.69, 90.33, 75.86, "RV-VOC11"),
               tvg=("2a42dd1d2987983dacffc436cca5dabf", _voc(69.85, 92.94, 78.80, "RV-VOC12")))),
]


# ---------------------------------------------------------------------------------------------------------
# look-ups
# ---------------------------------------------------------------------------------------------------------
def _index():
    names = {}
    for card in CARDS:
        for key in [card["name"], *card["aliases"]]:
            names[key.lower()] = card
    return names


def list_models():
    """One card (a deep copy) per model of the zoo."""
    return copy.deepcopy(CARDS)


def get_card(name_or_alias):
    """The card (a deep copy) of a model by name or alias, case-insensitive; ValueError names close ones."""
    index = _index()
    card = index.get(str(name_or_alias).lower())
    if card is None:
        close = difflib.get_close_matches(str(name_or_alias).lower(), list(index), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name_or_alias!r}{hint} (models: {', '.join(c['name'] for c in CARDS)})")
    return copy.deepcopy(card)


def get_source(card, weights="imagenet"):
    """The weight source of ``card`` that ``weights`` names ('imagenet' = the default one, or a source name)."""
    if weights == "imagenet":
        return next(source for source in card["weights"] if source["default"])
    for source in card["weights"]:
        if source["name"] == weights:
            return source
    names = ", ".join(["imagenet", *(source["name"] for source in card["weights"])])
    raise ValueError(f"{card['name']}: no weight source {weights!r} (sources: {names}; or a path to a "
                     ".caffemodel, .mat, .weights.h5 or .keras file)")


def get_model(name_or_alias, **kwargs):
    """Build a zoo model by name or alias: ``get_model('resnet-50', weights=None)``."""
    card = get_card(name_or_alias)
    models = importlib.import_module("keras_zoo.models")
    return getattr(models, card["builder"])(**kwargs)


def _format_metrics(card):
    """The reported numbers of the default source, else of the first source that has some."""
    ordered = sorted(card["weights"], key=lambda source: not source["default"])
    source = next((source for source in ordered if source["metrics"]), None)
    if source is None:
        return ""
    metrics, by = source["metrics"], f" [{source['name']}]"
    if "top1_err" in metrics:
        return f"top-1/5 err {metrics['top1_err']}/{metrics['top5_err']}{by}"
    return f"mean IoU {metrics['mean_iou']} ({metrics['test_data']}){by}"


def main(argv=None):
    """``python -m keras_zoo list``: print the table of model cards."""
    parser = argparse.ArgumentParser(prog="python -m keras_zoo list", description="List the zoo's models.")
    parser.add_argument("--sources", action="store_true", help="also list every weight source with its URL")
    options = parser.parse_args(argv)
    rows = [("model", "task", "default weights", "classes", "reported", "aliases")]
    for card in CARDS:
        default = get_source(card)
        rows.append((card["name"], card["task"], f"{default['name']} ({default['filename']})", default["classes"],
                     _format_metrics(card), ", ".join(card["aliases"][1:4])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if options.sources and row is not rows[0]:
            for source in get_card(row[0])["weights"]:
                checksum = next((f"{k} {' or '.join(_values(source[k]))}" for k in ("md5", "sha1", "sha256")
                                 if source.get(k)), "no checksum")
                print(f"    {source['name']:<19} {source['url'] or '(no direct URL)'}  [{checksum}]")
    return 0


def _values(checksum):
    return [checksum] if isinstance(checksum, str) else list(checksum)


if __name__ == "__main__":
    sys.exit(main())
