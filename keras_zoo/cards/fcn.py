"""Cards of the fully convolutional networks FCN-32s, FCN-16s and FCN-8s for PASCAL VOC."""

from keras_zoo.cards.records import FileSpec, ModelCard, PortRules, WeightSource
from keras_zoo.cards.sources import BVLC_MODELS, bgr, input_spec, matconvnet, voc

FCN_MEAN_RGB = (122.67891434, 116.66876762, 104.00698793)
PAPER_FCN = ("Fully Convolutional Models for Semantic Segmentation, J. Long, E. Shelhamer and T. Darrell, "
             "CVPR 2015")
LICENSE_FCN = "unrestricted (FCN README: models as the Caffe-bundled models); TVG model: see CRF-RNN"

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
TVG_NOTE = ("Torr Vision Group's FCN-8s (the FCN part of CRF-RNN, trained with VOC 2012 and COCO; its CRF layer is not "
            "in the file). The FCN-8s layers of CRF-RNN's TVG_CRFRNN_COCO_VOC.prototxt are the FCN-8s gist's (last "
            "output 'coarse', as MatConvNet's matconvnet-fcn reads it): the same names and mapping as "
            "pascal-fcn8s-dag.mat")


def _fcn_card(stride, md5, metrics, aliases, tvg=None):
    """FCN-``stride``s: the FCN repository's 'heavy' caffemodel (the default), MatConvNet's import of the
    earlier one with the 2015 gist's names, and ``tvg`` (md5, metrics): the TVG FCN-8s, where given."""
    filename = f"fcn{stride}s-heavy-pascal.caffemodel"
    caffe = WeightSource(name="caffe", file=FileSpec(filename, BVLC_MODELS + filename), format="caffemodel",
                         input=input_spec("BGR", bgr(FCN_MEAN_RGB), (500, 500), resize=None, crop="none"),
                         classes="voc21", default=True,
                         metrics={"mean_iou": {32: 63.6, 16: 65.0, 8: 65.5}[stride], "test_data": "seg11valid",
                                  "reported_by": "FCN README"},
                         notes="the FCN repository publishes no checksum: the download cannot be verified")
    gist = PortRules(rename=FCN_GIST_RENAME[stride], bias_moves=FCN_GIST_BIAS_MOVES[stride])
    sources = [caffe, matconvnet("matconvnet", f"pascal-fcn{stride}s-dag.mat", md5,
                                 input_spec("RGB", FCN_MEAN_RGB, (500, 500), resize=None, crop="none"), "voc21",
                                 metrics=metrics, port=gist,
                                 notes=f"MatConvNet's import (utils/import-fcn.sh) of the earlier (non-'heavy') "
                                       f"fcn-{stride}s-pascal.caffemodel with the 2015 deploy gist (DagNN, RGB). "
                                       "Same architecture as the builder (pads, kernels, strides, Crop offsets) "
                                       "with the gist's layer names; " + FCN_GIST_NOTES[stride])]
    if tvg:
        md5_tvg, metrics_tvg = tvg
        sources.append(matconvnet("tvg", "pascal-fcn8s-tvg-dag.mat", md5_tvg,
                                  input_spec("RGB", "meta", (500, 500), resize=None, crop="none"), "voc21",
                                  metrics=metrics_tvg, port=gist, notes=TVG_NOTE))
    return ModelCard(name=f"FCN{stride}s", aliases=aliases, task="segmentation", paper=PAPER_FCN,
                     license=LICENSE_FCN, weights=tuple(sources))


FCN32S_CARD = _fcn_card(32, "bf3ca0a59d1525f63e7c28d526ee0656", voc(59.43, 89.12, 73.28, "RV-VOC11"),
                        ("fcn-32s", "voc-fcn32s", "pascal-fcn32s-dag"))
FCN16S_CARD = _fcn_card(16, "48ccac8fb5c4961815705f1f84581ec3", voc(62.35, 90.02, 75.74, "RV-VOC11"),
                        ("fcn-16s", "voc-fcn16s", "pascal-fcn16s-dag"))
FCN8S_CARD = _fcn_card(8, "54b7ce1265a6cdd114d39d05515c73c4", voc(62.69, 90.33, 75.86, "RV-VOC11"),
                       ("fcn-8s", "voc-fcn8s", "pascal-fcn8s-dag", "pascal-fcn8s-tvg-dag", "fcn-8s-tvg"),
                       tvg=("2a42dd1d2987983dacffc436cca5dabf", voc(69.85, 92.94, 78.80, "RV-VOC12")))
