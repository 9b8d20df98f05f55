"""Cards of the VGG "Return of the Devil in the Details" nets: CNN-F, CNN-M (and M-128/1024/2048), CNN-S."""

from keras_zoo.cards.records import ModelCard
from keras_zoo.cards.sources import ilsvrc, input_spec, matconvnet, trained

PAPER_DEVIL = ("Return of the Devil in the Details: Delving Deep into Convolutional Networks, K. Chatfield, "
               "K. Simonyan, A. Vedaldi and A. Zisserman, BMVC 2014")
DEVIL_NOTE = ("MatConvNet's import of the VGG team's deepeval model (the original files use the VGG Caffe fork's "
              "format, already RGB: imported with --color-format=rgb). MatConvNet's utils/import-caffe.py keeps the "
              "param.prototxt's layer names (only '-' becomes '_') and its LRN k (the VGG fork's LRN has a k, "
              "default 1); that prototxt could not be read, so the names conv1..conv5, fc6..fc8 and the LRN "
              "constants of the Caffe releases of VGG_CNN_* are assumed, not established. Loading checks them: "
              "another layer name, other convolution pads or strides or other LRN constants are refused, naming "
              "the layer")


def _devil_card(name, suffix, aliases, md5, metrics, classes="imagenet-vgg", trained_file=None):
    """A 'Return of the Devil' model: only MatConvNet's import is readable (the originals use a Caffe fork);
    ``trained_file`` (md5, metrics): the network MatConvNet trained itself, where there is one."""
    sources = [matconvnet("matconvnet", f"imagenet-vgg-{suffix}.mat", md5, input_spec("RGB", "meta", (224, 224)),
                          classes, default=True, metrics=metrics, notes=DEVIL_NOTE)]
    if trained_file:
        md5_trained, metrics_trained = trained_file
        sources.append(trained(f"imagenet-matconvnet-vgg-{suffix}.mat", md5_trained, metrics_trained))
    return ModelCard(name=name, aliases=(f"vgg-{suffix}", f"imagenet-vgg-{suffix}", *aliases), task="classification",
                     paper=PAPER_DEVIL, license="see the VGG site (deep_eval)", weights=tuple(sources))


VGGF_CARD = _devil_card("VGGF", "f", ("vgg_cnn_f", "matconvnet-vgg-f", "imagenet-matconvnet-vgg-f"),
                        "f666c61dc968c413ef664a7e17b01144", ilsvrc(41.1, 18.8, 785.7), classes="imagenet-caffe",
                        trained_file=("b359b6ad071155eafa35c84a78f397c7", ilsvrc(41.4, 19.1, 793.1)))
VGGM_CARD = _devil_card("VGGM", "m", ("vgg_cnn_m", "matconvnet-vgg-m", "imagenet-matconvnet-vgg-m"),
                        "1c164950e882b4ea11623e669a86b1c4", ilsvrc(37.3, 15.9, 586.9),
                        trained_file=("1bcad2e93b0cc6da3b7d1bf610582279", ilsvrc(36.9, 15.5, 623.1)))
VGGS_CARD = _devil_card("VGGS", "s", ("vgg_cnn_s", "matconvnet-vgg-s", "imagenet-matconvnet-vgg-s"),
                        "93b683d5420c2eeaf07a6eef492f182b", ilsvrc(36.7, 15.3, 395.4),
                        trained_file=("314c982669e202e0d419803c54d1fb8f", ilsvrc(37.0, 15.8, 415.9)))
VGGM128_CARD = _devil_card("VGGM128", "m-128", ("vgg_cnn_m_128",), "779b86f55d0534d9fd322256372007a5",
                           ilsvrc(40.8, 18.4, 588.7))
VGGM1024_CARD = _devil_card("VGGM1024", "m-1024", ("vgg_cnn_m_1024",), "d15f53a30bba3abde4377eced695adab",
                            ilsvrc(37.8, 16.1, 596.8))
VGGM2048_CARD = _devil_card("VGGM2048", "m-2048", ("vgg_cnn_m_2048",), "9d20b7ab01ca47617e808008da6b18cc",
                            ilsvrc(37.1, 15.8, 589.4))
