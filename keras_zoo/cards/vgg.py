"""Cards of the VGG very deep nets (VGG-16, VGG-19) and VGG-Face."""

from keras_zoo.cards.records import FileSpec, ModelCard, WeightSource
from keras_zoo.cards.sources import bgr, ilsvrc, input_spec, matconvnet, trained

VGG_VERY_DEEP = "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"
VGG_VD_MEAN_RGB = (123.68, 116.779, 103.939)  # the VGG team's mean pixel (their gist gives it in BGR)
VGG_FACE_MEAN_RGB = (129.1863, 104.7624, 93.5940)
PAPER_VGG_VD = ("Very Deep Convolutional Networks for Large-Scale Image Recognition, K. Simonyan and "
                "A. Zisserman, arXiv:1409.1556, 2014")
LICENSE_VGG = "CC BY 4.0 (VGG very-deep models, per the VGG site)"


def _vgg_vd(depth, md5, metrics):
    """The VGG team's caffemodel (the default) and MatConvNet's import of it."""
    filename = f"VGG_ILSVRC_{depth}_layers.caffemodel"
    caffe = WeightSource(name="caffe", file=FileSpec(filename, VGG_VERY_DEEP + filename), format="caffemodel",
                         input=input_spec("BGR", bgr(VGG_VD_MEAN_RGB), (224, 224)), classes="imagenet-caffe",
                         default=True, notes="the VGG team's gist publishes no checksum: the download cannot be "
                                             "verified")
    mcn = matconvnet("matconvnet", f"imagenet-vgg-verydeep-{depth}.mat", md5,
                     input_spec("RGB", VGG_VD_MEAN_RGB, (224, 224)), "imagenet-caffe", metrics=metrics,
                     notes="MatConvNet's import of the VGG team's caffemodel (SimpleNN; Caffe's layer names, "
                           "first convolution flipped to RGB, fully connected layers as filter banks)")
    return (caffe, mcn)


VGG16_CARD = ModelCard(
    name="VGG16", aliases=("vgg-16", "vgg-verydeep-16", "imagenet-vgg-verydeep-16", "vgg_ilsvrc_16_layers",
                           "matconvnet-vgg-verydeep-16", "imagenet-matconvnet-vgg-verydeep-16"),
    task="classification", paper=PAPER_VGG_VD, license=LICENSE_VGG,
    weights=(*_vgg_vd(16, "7f0f9f01dfd99c7b7088d1c5a26eb483", ilsvrc(28.5, 9.9, 183.1)),
             trained("imagenet-matconvnet-vgg-verydeep-16.mat", "14ece491f7311f6dc33bc3186729de5b",
                     ilsvrc(28.3, 9.5, 184.5), vgg_vd=True)))

VGG19_CARD = ModelCard(
    name="VGG19", aliases=("vgg-19", "vgg-verydeep-19", "imagenet-vgg-verydeep-19", "vgg_ilsvrc_19_layers"),
    task="classification", paper=PAPER_VGG_VD, license=LICENSE_VGG,
    weights=_vgg_vd(19, "49e623de543b207d57fab0f6eaf79a7e", ilsvrc(28.7, 9.9, 154.5)))

VGGFACE_CARD = ModelCard(
    name="VGGFace", aliases=("vgg-face", "vgg_face", "vggface16"), task="face",
    paper="Deep face recognition, O. M. Parkhi, A. Vedaldi and A. Zisserman, BMVC 2015",
    license="non-commercial research use (VGG-Face site)",
    weights=(
        matconvnet("matconvnet", "vgg-face.mat", "27e94d9979dad2385f901f0c360cf3bc",
                   input_spec("RGB", VGG_FACE_MEAN_RGB, (224, 224), resize=None), "vggface2622", default=True,
                   notes="the VGG team's own MatConvNet release of VGG-Face (no MatConvNet import script makes it), "
                         "re-saved by MatConvNet's utils/tidy_ref_models.m (SimpleNN): layer names "
                         "conv1_1..conv5_3, fc6..fc8 as in VGG_FACE_deploy.prototxt, on which third-party loaders "
                         "that copy its weights by layer name rely; fully connected layers as filter banks"),
        WeightSource(name="caffe", file=FileSpec("VGG_FACE.caffemodel"), format="caffemodel",
                     input=input_spec("BGR", bgr(VGG_FACE_MEAN_RGB), (224, 224), resize=None), classes="vggface2622",
                     notes="ships inside vgg_face_caffe.tar.gz on the VGG site (no checksum): extract "
                           "VGG_FACE.caffemodel into KERAS_ZOO_MIRROR"),
    ))
