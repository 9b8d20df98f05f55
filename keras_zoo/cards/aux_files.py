"""The weight sources' other files: label sets (:data:`LABEL_SETS`) and mean images (:data:`MEANS`), fetched
and cached like the weights."""

import types

from keras_zoo.cards.records import FileSpec, LabelSet, MeanFile
from keras_zoo.cards.sources import RAW_GITHUB

# Caffe's ilsvrc12 auxiliary files (caffe_ilsvrc12.tar.gz), as committed in a Caffe fork
CAFFE_ILSVRC12_AUX = (RAW_GITHUB + "kevinlin311tw/Caffe-DeepBinaryCode/9eaa7662be47d49f475ecbeea2bd51be105270d2/"
                      "data/ilsvrc12/")


def _by_id(*records):
    return types.MappingProxyType({record.id: record for record in records})


LABEL_SETS = _by_id(
    LabelSet("imagenet-caffe", FileSpec("synset_words.txt", CAFFE_ILSVRC12_AUX + "synset_words.txt",
                                        md5=("4d234b5833aca44928065a180db3016a",)),
             "synset_words", 1000, "ILSVRC-2012 classes in Caffe's order (sorted by WordNet id)"),
    LabelSet("imagenet-vgg",
             FileSpec("vgg_synset_words.txt",
                      RAW_GITHUB + "vlfeat/matconvnet/1e5ae7b70fc1074bf8a2a5617e698e54072fbb2c/utils/proto/"
                      "vgg_synset_words.txt", md5=("7315c2c8bffdb680cf8c5d2a7c45c363",)),
             "synset_words", 1000,
             "ILSVRC-2012 classes in the devkit's order (the VGG 'Return of the Devil' models and the networks "
             "MatConvNet trained itself)"),
    LabelSet("ilsvrc13-det", FileSpec("det_synset_words.txt", CAFFE_ILSVRC12_AUX + "det_synset_words.txt",
                                      md5=("fe0fe33bc8cb071f8ca73073d97973c6",)),
             "synset_words", 200, "ILSVRC-2013 detection classes"),
    LabelSet("voc21",
             FileSpec("pascal_classes.txt",
                      RAW_GITHUB + "shelhamer/fcn.berkeleyvision.org/1305c7378a9f0ab44b2c936f4d60e4687e3d8743/data/"
                      "pascal/classes.txt", md5=("33b40a9eaf41e7fac04e78221252f26d",)),
             "lines", 21, "PASCAL VOC: background + 20 classes"),
    LabelSet("vggface2622",
             FileSpec("vgg_face_names.txt",
                      RAW_GITHUB + "Maupin1991/vgg_face_tensorflow/fcebd0c1df435e940127c687c480eeabb2cf2c34/names.txt",
                      md5=("af12891c59dce5e3dd34ba77e66219d9",)),
             "indexed", 2622, "VGG-Face identities (a copy of vgg_face_caffe/names.txt with an index prefix added)"),
)

MEANS = _by_id(
    MeanFile("imagenet-mean", FileSpec("imagenet_mean.binaryproto", CAFFE_ILSVRC12_AUX + "imagenet_mean.binaryproto",
                                       md5=("6df445471f4fa8a98fc19932d21bef77",)),
             "binaryproto", "Caffe's ILSVRC-2012 mean image, 3x256x256 BGR"),
    MeanFile("resnet-mean", FileSpec("ResNet_mean.binaryproto"), "binaryproto",
             "ships inside the ResNet models' OneDrive folder only: put it in KERAS_ZOO_MIRROR"),
)
